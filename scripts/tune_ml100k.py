"""Tune the embedded LLM as a re-ranker on ML-100k's training sequences, then measure it on validation.

    python scripts/tune_ml100k.py train [--max-steps N] [--threads 1]   # long; resumable; cached
    python scripts/tune_ml100k.py validate --model DIR [--users all]    # vLLM: base vs tuned vs retrieval

Training sees only the leave-one-out split's training sequences (validation and test targets are passed
as forbidden pairs, which the builder refuses). Validation: every sampled user's validation item, the
example retriever's top 20 after the whole training sequence (users whose target it misses are left out),
the LLM's letter probabilities averaged over two candidate orders (as given and reversed); mean target
rank and NDCG@10 within the candidates, paired against the retrieval order. Never reads test targets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import TuneConfig, TuneDataConfig, build_examples, model_dir, record_metrics, tune_model  # noqa: E402
from eval import leave_one_out, load_ml100k  # noqa: E402
from eval._tune import forbidden_pairs, tune_items  # noqa: E402

#: the configuration of the committed run (docs/results/tune.md); CLI flags override
DATA = TuneDataConfig(positions_per_user=2, history_items=5, seed=0)
TUNE = TuneConfig(rank=16, alpha=32.0, learning_rate=1e-3, batch_size=8, top_layers=6, warmup_steps=10,
                  checkpoint_every=5, seed=0)


def _inputs():
    ds = load_ml100k()
    split = leave_one_out(ds)
    return ds, split, tune_items(ds)


def train(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    _, split, items = _inputs()
    t0 = time.perf_counter()
    examples = build_examples(split.train, items, forbidden_pairs(split), DATA)
    print(f"{len(examples)} examples from {len({e.user_id for e in examples})} users "
          f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    config = TUNE.model_copy(update={"max_steps": args.max_steps})
    log = ROOT / "runs" / "tune" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    folder = tune_model(examples, DATA, config, log_file=log,
                        extra={"dataset": "ml-100k", "split": "loo (training sequences only)"})
    print(folder)


def validate(args: argparse.Namespace) -> None:
    import numpy as np

    from agent import VLLMEngine, ranked_examples
    from eval import sample_users
    from eval._tune import choice_ranks, tune_validation

    _, split, items = _inputs()
    users = sample_users(split, "all" if args.users == "all" else int(args.users), args.seed)
    targets = {u: split.val[u].item_id for u in users if u in split.val}
    examples, looked = ranked_examples(split.train, targets, items, DATA, users=users)
    print(f"{len(examples)} of {looked} validation users have their target in the top 20", file=sys.stderr)
    rankers = {"retrieval": np.asarray([e.target + 1 for e in examples])}
    timing = {}
    for name, path in (("base", model_dir()), ("tuned", Path(args.model))):
        if name == "base" and args.skip_base:
            continue
        t0 = time.perf_counter()
        engine = VLLMEngine.from_model(str(path))
        try:
            rankers[name] = choice_ranks(engine, examples, orders=2)
            rankers[f"{name}-1order"] = choice_ranks(engine, examples, orders=1)
        finally:
            engine.close()
        timing[name] = round(time.perf_counter() - t0, 1)
        print(name, "mean rank", rankers[name].mean(), file=sys.stderr, flush=True)
    report = tune_validation(rankers)
    report.update({"users_looked_at": looked, "recall@20": len(examples) / max(1, looked),
                   "seconds": timing, "model": str(args.model), "data": DATA.model_dump(),
                   "command": " ".join(sys.argv)})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    if "tuned" in rankers:
        m = report["models"]
        record_metrics(Path(args.model), {"validation": {
            k: {"rank": m[k]["rank"]["mean"], "ndcg@10": m[k]["ndcg@10"]["mean"]} for k in m},
            "validation_users": report["n"]})
    print(json.dumps({k: {"rank": v["rank"]["mean"], "ndcg@10": v["ndcg@10"]["mean"]}
                      for k, v in report["models"].items()}, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--threads", type=int, default=1)
    v = sub.add_parser("validate")
    v.add_argument("--model", required=True)
    v.add_argument("--users", default="all")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--skip-base", action="store_true")
    v.add_argument("--out", default=str(ROOT / "docs" / "results" / "tune-validation.json"))
    args = p.parse_args()
    train(args) if args.cmd == "train" else validate(args)


if __name__ == "__main__":
    main()
