"""Validation only: how the item head's catalogue scores should join the memory candidate stage.

    python scripts/item_head_fusion.py [--users all] [--model DIR] [--cache FILE]

Each sampled user's memory holds their training sequence; the target is their VALIDATION item (no test
target is read). Stage 1 computes, per user, the memory candidate stage's scores (w_co 1, 10-minute short
half-life; consumed items -inf) and the item head's logits over the catalogue, and caches them (npz).
Stage 2 compares ways of fusing the two, each at several weights:

- ``minmax``: min-max of each over the unconsumed items (what ``RetrievalConfig.w_llm`` does today);
- ``prob``: the item head's softmax over the unconsumed items divided by its maximum (memory min-max);
- ``rrf``: reciprocal-rank fusion, 1/(60 + rank) for each side;
- ``zscore``: each side standardised over the unconsumed items.

Rule (stated before the run): the users are split in two halves by their position in the seeded sample
(even / odd). Each (form, weight) is scored by NDCG@10 on the even half; the best is then tested on the odd
half against memory alone and against ``minmax`` at its own even-half best weight (paired bootstrap and
Wilcoxon). A form replaces ``minmax`` only if it wins on the odd half with bootstrap p < 0.05.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402

WEIGHTS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
FORMS = ("minmax", "prob", "rrf", "zscore")


def compute(args: argparse.Namespace) -> dict[str, np.ndarray]:
    from _validation import catalogue_logits, validation_setup


    v = validation_setup(args.users if args.users == "all" else int(args.users), args.seed, engine=False)
    scored = v.base.score_candidates(v.users, v.nows, **v.kw)
    memory = np.stack([s.retrieval for s in scored])
    targets = np.array([v.catalog.index[v.split.val[u].item_id] for u in v.users])
    logits = catalogue_logits(args.model, {it.item_id: it.title for it in v.catalog.items}, v.kw["histories"],
                              [it.item_id for it in v.catalog.items], every=50)[1]
    return {"memory": memory, "logits": logits, "targets": targets, "users": np.array(v.users)}


def _ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    t = scores[np.arange(len(targets)), targets][:, None]
    return 1 + (scores > t).sum(axis=1)


def _ndcg(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    r = _ranks(scores, targets)
    return np.where(r <= 10, 1 / np.log2(r + 1), 0.0)


def _norm(x: np.ndarray, finite: np.ndarray, form: str) -> np.ndarray:
    if form == "minmax":
        lo = np.where(finite, x, np.inf).min(axis=1, keepdims=True)
        hi = np.where(finite, x, -np.inf).max(axis=1, keepdims=True)
        return np.where(finite, (x - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
    if form == "prob":
        z = np.where(finite, x, -np.inf)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e  # divided by its max (= 1 at the max)
    if form == "rrf":
        order = np.argsort(-np.where(finite, x, -np.inf), axis=1, kind="stable")
        ranks = np.empty_like(order)
        ranks[np.arange(len(x))[:, None], order] = np.arange(x.shape[1])[None, :]
        return np.where(finite, 60.0 / (60.0 + ranks + 1), 0.0)  # x60: same scale as the others near the top
    if form == "zscore":
        m = np.where(finite, x, np.nan)
        mu, sd = np.nanmean(m, axis=1, keepdims=True), np.nanstd(m, axis=1, keepdims=True)
        return np.where(finite, (x - mu) / np.where(sd > 0, sd, 1.0), 0.0)
    raise ValueError(form)


def fuse(memory: np.ndarray, logits: np.ndarray, form: str, w: float) -> np.ndarray:
    finite = np.isfinite(memory)
    mem_form = "minmax" if form == "prob" else form
    s = _norm(memory, finite, mem_form) + w * _norm(logits.astype(float), finite, form)
    return np.where(finite, s, -np.inf)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", default="all", help="a seeded sample size or 'all'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", type=Path, default=next((ROOT / "models").glob("*-item-head-*")))
    p.add_argument("--cache", type=Path, default=Path("/tmp/fusion/val.npz"))
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "item-head-fusion.json")
    args = p.parse_args()
    from _validation import cached_arrays

    from eval import paired_test

    d = cached_arrays(args.cache, lambda: compute(args))
    memory, logits, targets = d["memory"], d["logits"], d["targets"]
    n = len(targets)
    even, odd = np.arange(0, n, 2), np.arange(1, n, 2)
    base = _ndcg(memory, targets)
    grid: dict[str, dict[str, float]] = {}
    per: dict[tuple[str, float], np.ndarray] = {}
    for form in FORMS:
        grid[form] = {}
        for w in WEIGHTS:
            nd = _ndcg(fuse(memory, logits, form, w), targets)
            per[(form, w)] = nd
            grid[form][str(w)] = round(float(nd[even].mean()), 4)
    best = {f: max(WEIGHTS, key=lambda w, f=f: grid[f][str(w)]) for f in FORMS}
    winner = max(FORMS, key=lambda f: grid[f][str(best[f])])
    w_win, w_mm = best[winner], best["minmax"]
    report = {
        "users": n, "seed": args.seed, "model": str(args.model), "command": " ".join(sys.argv),
        "memory": {"even": round(float(base[even].mean()), 4), "odd": round(float(base[odd].mean()), 4)},
        "item_head_alone": {"even": round(float(_ndcg(np.where(np.isfinite(memory), logits, -np.inf), targets)[even].mean()), 4)},
        "even_half_grid": grid, "best_weight_per_form": best, "winner": {"form": winner, "weight": w_win},
        "odd_half": {
            f"{winner}@{w_win}": round(float(per[(winner, w_win)][odd].mean()), 4),
            f"minmax@{w_mm}": round(float(per[("minmax", w_mm)][odd].mean()), 4),
            "winner_vs_memory": paired_test(per[(winner, w_win)][odd], base[odd], seed=args.seed).to_dict(),
            "minmax_vs_memory": paired_test(per[("minmax", w_mm)][odd], base[odd], seed=args.seed).to_dict(),
            "winner_vs_minmax": paired_test(per[(winner, w_win)][odd], per[("minmax", w_mm)][odd],
                                            seed=args.seed).to_dict()},
        "all_users_at_even_choice": {f"{f}@{best[f]}": round(float(per[(f, best[f])].mean()), 4) for f in FORMS},
    }
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
