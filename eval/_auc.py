"""Per-user AUC of a full ranking: the share of the user's candidates ranked below the target.

With one relevant item at 1-based rank ``r`` among ``n`` candidates (the catalogue minus the items the
user already consumed), AUC = 1 − (r − 1)/(n − 1): 1 when the target is first, 0 when last, 0.5 for a
random order on average. Ties count half, as in the Mann–Whitney statistic. A truncated ranking that
misses the target places it in the middle of the unlisted candidates (they are tied below the list).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["auc_from_list", "auc_from_rank", "auc_from_scores", "per_user_auc"]


def auc_from_rank(rank: float, n_candidates: int) -> float:
    """AUC of a target at 1-based ``rank`` (may be fractional for ties) among ``n_candidates`` items.

    Raises:
        ValueError: ``n_candidates`` < 2 or the rank is outside [1, n_candidates].
    """
    if n_candidates < 2:
        raise ValueError(f"AUC needs at least 2 candidates, got {n_candidates}")
    if not 1 <= rank <= n_candidates:
        raise ValueError(f"rank {rank} is outside 1..{n_candidates}")
    return 1.0 - (rank - 1.0) / (n_candidates - 1.0)


def auc_from_scores(scores: np.ndarray, target_col: int, exclude_cols: Sequence[int] = ()) -> float:
    """AUC of the target from a full score row; excluded columns (consumed items) are not candidates."""
    s = np.asarray(scores, dtype=np.float64)
    keep = np.ones(len(s), dtype=bool)
    keep[list(exclude_cols)] = False
    keep[target_col] = True
    cand = s[keep]
    t = s[target_col]
    above = int((cand > t).sum())
    ties = int((cand == t).sum()) - 1  # the target ties with itself
    return auc_from_rank(1.0 + above + ties / 2.0, int(keep.sum()))


def auc_from_list(ranked: Sequence[str], target: str, n_candidates: int) -> float:
    """AUC from a (possibly truncated) ranking of ``n_candidates`` candidates.

    A target missing from the list gets the mean rank of the unlisted candidates, ``(len + 1 + n) / 2``.
    """
    for position, item in enumerate(ranked, start=1):
        if item == target:
            return auc_from_rank(float(position), n_candidates)
    return auc_from_rank((len(ranked) + 1 + n_candidates) / 2.0, n_candidates)


def per_user_auc(
    predictor: Any, rankings: Sequence[Any], requests: Sequence[Any], targets: Sequence[str], item_ids: Sequence[str]
) -> np.ndarray:
    """One AUC per request: exact from ``score_all`` when the predictor has it, else from its ranking.

    Candidates are the catalogue minus the request's consumed items (the target always counts).
    """
    col = {item: i for i, item in enumerate(item_ids)}
    n_items = len(item_ids)
    scores = predictor.score_all(requests) if callable(getattr(predictor, "score_all", None)) else None
    out = np.empty(len(requests))
    for row, (request, target) in enumerate(zip(requests, targets, strict=True)):
        excluded = [col[i] for i in request.exclude if i in col and i != target]
        if scores is not None:
            out[row] = auc_from_scores(scores[row], col[target], excluded)
        else:
            out[row] = auc_from_list(rankings[row].item_ids, target, n_items - len(excluded))
    return out
