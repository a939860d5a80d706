"""The item head (the LLM's part of each agent prediction) scored in float32 and in bfloat16, side by side.

On validation users only (their training sequence as history, the validation item as target, consumed items
excluded, the whole catalogue ranked by the LLM alone): seconds per user for each dtype, measured in
alternating blocks of 25 users in one process, and the paired NDCG@10 difference bfloat16 - float32 with
its bootstrap CI (the rule in docs/RESULTS.md, 2026-12-03)::

    .venv/bin/python -m bench.itemhead_dtype --users 300 --out docs/results/itemhead-dtype.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench._harness import emit


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--block", type=int, default=25)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    from agent import ItemHeadScorer
    from eval import committed_item_head, leave_one_out, load_ml100k, paired_test, sample_users

    ds = load_ml100k()
    split = leave_one_out(ds)
    users = [u for u in sample_users(split, args.users, args.seed) if u in split.val]
    folder = committed_item_head("ml-100k")
    titles = {i: (f"{it.title} ({it.year})" if it.year else it.title)[:300] for i, it in ds.items.items()}  # the harness's
    scorers = {d: ItemHeadScorer(folder, titles, dtype=d) for d in ("float32", "bfloat16")}
    seconds = {d: 0.0 for d in scorers}
    ndcg = {d: np.zeros(len(users)) for d in scorers}
    for start in range(0, len(users), args.block):
        block = range(start, min(start + args.block, len(users)))
        for d, scorer in scorers.items():
            t = time.perf_counter()
            rows = scorer.scores([split.train[users[i]] for i in block])
            seconds[d] += time.perf_counter() - t
            for r, i in enumerate(block):
                s = rows[r]
                s[[scorer.index[j] for j in split.train[users[i]] if j in scorer.index]] = -np.inf
                rank = 1 + int(np.sum(s > s[scorer.index[split.val[users[i]].item_id]]))
                ndcg[d][i] = 1.0 / np.log2(rank + 1) if rank <= 10 else 0.0
        print(f"{block.stop}/{len(users)} users: float32 {seconds['float32'] / block.stop:.3f} s/user, "
              f"bfloat16 {seconds['bfloat16'] / block.stop:.3f} s/user", file=sys.stderr, flush=True)
    diff = paired_test(ndcg["bfloat16"], ndcg["float32"])
    report = {"users": len(users), "seed": args.seed, "model": folder.name, "command": " ".join(sys.argv),
              "s_per_user": {d: round(seconds[d] / len(users), 4) for d in seconds},
              "speedup": round(seconds["float32"] / seconds["bfloat16"], 3),
              "ndcg@10": {d: round(float(v.mean()), 4) for d, v in ndcg.items()},
              "bf16_minus_fp32": {"mean": diff.mean_diff, "low": diff.low, "high": diff.high,
                                  "p_bootstrap": diff.p_bootstrap, "p_wilcoxon": diff.p_wilcoxon},
              "same_ndcg_share": round(float(np.mean(ndcg["bfloat16"] == ndcg["float32"])), 4)}
    emit(report, args.out, indent=1)


if __name__ == "__main__":
    main()
