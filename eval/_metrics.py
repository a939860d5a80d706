"""Ranking metrics for one relevant item per user (full ranking), plus the sampled-negatives variant.

With a single relevant item at 1-based rank ``r`` (``inf`` when it is not in the list):
HR@K = [r <= K], NDCG@K = [r <= K] / log2(r + 1) (the ideal DCG is 1), MRR@K = [r <= K] / r.
These are hand-rolled because they are one vectorised line each and ``ranx`` needs a numba compile per
process; ``tests/eval/test_metrics.py`` checks them against ``ranx`` on random rankings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "METRICS",
    "metrics_from_ranks",
    "ranking_metrics",
    "sample_negatives",
    "sampled_rank_from_list",
    "sampled_rank_from_scores",
    "target_rank",
]

METRICS = ("hr@1", "hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@10")


def target_rank(ranked: Sequence[str], target: str) -> float:
    """1-based position of ``target`` in ``ranked``; ``inf`` when absent."""
    for position, item in enumerate(ranked, start=1):
        if item == target:
            return float(position)
    return float("inf")


def metrics_from_ranks(ranks: Sequence[float] | np.ndarray, names: Sequence[str] = METRICS) -> dict[str, np.ndarray]:
    """Per-user metric values from target ranks.

    Args:
        ranks: 1-based rank of each user's target (``inf`` = not retrieved).
        names: Metrics as ``"<hr|ndcg|mrr>@K"``.

    Returns:
        Metric name -> float array with one value per user.

    Raises:
        ValueError: On an unknown metric name.
    """
    r = np.asarray(ranks, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for name in names:
        kind, _, k_s = name.partition("@")
        k = int(k_s)
        hit = r <= k
        if kind == "hr":
            out[name] = hit.astype(np.float64)
        elif kind == "ndcg":
            out[name] = np.where(hit, 1.0 / np.log2(np.where(hit, r, 1.0) + 1.0), 0.0)
        elif kind == "mrr":
            out[name] = np.where(hit, 1.0 / np.where(hit, r, 1.0), 0.0)
        else:
            raise ValueError(f"unknown metric {name!r}")
    return out


def ranking_metrics(
    rankings: Sequence[Sequence[str]], targets: Sequence[str], names: Sequence[str] = METRICS
) -> dict[str, np.ndarray]:
    """Per-user metrics from ranked id lists and single targets (full-ranking protocol)."""
    return metrics_from_ranks([target_rank(r, t) for r, t in zip(rankings, targets, strict=True)], names)


def sample_negatives(
    catalogue: Sequence[str],
    excludes: Sequence[frozenset[str] | set[str]],
    targets: Sequence[str],
    n: int = 100,
    seed: int = 0,
) -> list[list[str]]:
    """Draw ``n`` negatives per user uniformly from items neither consumed nor the target.

    One generator seeded once draws for all users in order, so every model is scored against the same
    negatives.
    """
    rng = np.random.default_rng(seed)
    ids = np.asarray(catalogue, dtype=object)
    out = []
    for exclude, target in zip(excludes, targets, strict=True):
        mask = np.fromiter((i not in exclude and i != target for i in catalogue), dtype=bool, count=len(ids))
        pool = ids[mask]
        take = min(n, len(pool))
        out.append([str(i) for i in pool[rng.choice(len(pool), size=take, replace=False)]])
    return out


def sampled_rank_from_scores(scores: np.ndarray, target_col: int, negative_cols: Sequence[int]) -> float:
    """Exact rank of the target among itself and the negatives, from a full score row.

    Ties go to the item earlier in the catalogue, matching the stable order of full rankings.
    """
    neg = np.asarray(negative_cols, dtype=np.int64)
    t = scores[target_col]
    above = (scores[neg] > t) | ((scores[neg] == t) & (neg < target_col))
    return float(1 + int(above.sum()))


def sampled_rank_from_list(ranked: Sequence[str], target: str, negatives: Sequence[str]) -> tuple[float, bool]:
    """Rank of the target among itself and the negatives, from a truncated ranking.

    Returns:
        ``(rank, exact)``. When the target is missing from the list its position relative to the
        negatives that are also missing is unknown; they are counted above it (a pessimistic bound) and
        ``exact`` is False.
    """
    negs = set(negatives)
    above = 0
    for item in ranked:
        if item == target:
            return float(1 + above), True
        if item in negs:
            above += 1
    return float(1 + len(negs)), False
