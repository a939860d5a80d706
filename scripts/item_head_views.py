"""Validation only: does the item head rank better when it reads the history at several lengths?

    python scripts/item_head_views.py [--users 400] [--seed 0] [--model DIR] [--out FILE]
    python scripts/item_head_views.py --rest-of 400 --confirm 50+5   # the users outside that sample

The test-like split (``eval.without_last``: each user's last training item held out as the target, which is
their real VALIDATION item; no test target is read) and the item head tuned on it (the committed
``models/gemma-3-270m-item-head-f0afd07af37c``, the one the main job's test-like validation uses; the runs in
docs/RESULTS.md of 2026-12-03 read its float32 predecessor ``bd69abe48352``, in git history). For each
sampled user the head scores the whole catalogue (consumed items excluded) after the last ``k`` items of the
history, for each ``k`` in ``VIEWS``; a *view set* averages the log-softmax of its views (test-time
augmentation over history lengths: the head was trained on every position of 50-item windows, so it has
read short contexts as well as long ones).

Rule (stated in docs/RESULTS.md before the run): users are split in halves by their position in the seeded
sample (even / odd). Each view set is scored by NDCG@10 on the even half; the best is tested on the odd half
against the single full view (the scorer today) with paired bootstrap and Wilcoxon. It is adopted only if
it wins on the odd half with both p < 0.05.
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

import numpy as np  # noqa: E402

from agent import ItemHeadScorer  # noqa: E402
from eval import leave_one_out, load_ml100k, paired_test, sample_users, without_last  # noqa: E402
from eval._tune import tune_items  # noqa: E402  (scripts may use the harness's parts)

VIEWS = (50, 20, 10, 5)
SETS = ((50,), (50, 20), (50, 10), (50, 5), (50, 20, 10), (50, 20, 10, 5))
DEFAULT_MODEL = ROOT / "models" / "gemma-3-270m-item-head-f0afd07af37c"


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = np.where(np.isfinite(x), x, -np.inf).max(axis=1, keepdims=True)
    z = x - m
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _ndcg10(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    t = scores[np.arange(len(targets)), targets][:, None]
    rank = 1 + (scores > t).sum(axis=1)
    return np.where(rank <= 10, 1.0 / np.log2(rank + 1), 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--rest-of", type=int, default=None, metavar="N",
                    help="score the users OUTSIDE the seeded sample of N instead (a confirmation on new users)")
    ap.add_argument("--confirm", default=None, metavar="SET",
                    help="test this view set (e.g. 50+5) against the single 50-item view on every user")
    args = ap.parse_args()
    views = sorted({int(k) for k in args.confirm.split("+")} | {50}, reverse=True) if args.confirm else VIEWS

    ds = load_ml100k()
    tsplit = leave_one_out(without_last(ds))
    if args.rest_of is not None:
        seen = set(sample_users(tsplit, args.rest_of, args.seed))
        users = [u for u in sorted(tsplit.test) if u not in seen]
    else:
        users = [u for u in sample_users(tsplit, args.users, args.seed) if u in tsplit.test]
    scorer = ItemHeadScorer(args.model, {it.item_id: it.title for it in tune_items(ds)})  # the titles it was tuned on
    n = len(scorer.item_ids)
    logits = {k: np.zeros((len(users), n), dtype=np.float32) for k in views}
    targets = np.zeros(len(users), dtype=np.int64)
    excluded = np.zeros((len(users), n), dtype=bool)
    seconds = dict.fromkeys(views, 0.0)
    t0 = time.perf_counter()
    for r, u in enumerate(users):
        req = tsplit.request(u, "test")
        hist = list(req.history)
        targets[r] = scorer.index[tsplit.test[u].item_id]
        excluded[r, [scorer.index[i] for i in req.exclude if i in scorer.index]] = True
        for k in views:
            t = time.perf_counter()
            logits[k][r] = scorer.scores([hist[-k:]])[0]
            seconds[k] += time.perf_counter() - t
        if r % 50 == 0:
            print(f"{r}/{len(users)} users, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    ls = {k: _log_softmax(np.where(excluded, -np.inf, v)) for k, v in logits.items()}
    sets = (tuple(int(k) for k in args.confirm.split("+")), (50,)) if args.confirm else SETS
    per_set = {}
    for vs in sets:
        s = np.mean([ls[k] for k in vs], axis=0)
        per_set[vs] = _ndcg10(np.where(excluded, -np.inf, s), targets)
    out = {"users": len(users), "seed": args.seed, "model": args.model.name,
           "sample": f"outside the seeded {args.rest_of}" if args.rest_of is not None else f"seeded {args.users}",
           "seconds_per_user": {str(k): seconds[k] / len(users) for k in views}}
    if args.confirm:
        out["ndcg10"] = {"+".join(map(str, v)): float(per_set[v].mean()) for v in sets}
        out[f"{args.confirm}_vs_full_view"] = paired_test(
            per_set[sets[0]], per_set[(50,)], n_resamples=10000, seed=args.seed).to_dict()
        default_name = "item-head-views-confirm.json"
    else:
        idx = np.arange(len(users))
        even, odd = idx % 2 == 0, idx % 2 == 1
        best = max(SETS, key=lambda v: per_set[v][even].mean())
        out["ndcg10"] = {"+".join(map(str, v)): {"all": float(per_set[v].mean()), "even": float(per_set[v][even].mean()),
                                                "odd": float(per_set[v][odd].mean())} for v in SETS}
        out["chosen_on_even"] = "+".join(map(str, best))
        out["odd_half_vs_full_view"] = paired_test(
            per_set[best][odd], per_set[(50,)][odd], n_resamples=10000, seed=args.seed).to_dict()
        default_name = "item-head-views.json"
    args.out = args.out or ROOT / "docs" / "results" / default_name
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
