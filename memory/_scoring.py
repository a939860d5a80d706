"""Retrieval scoring: pure functions over arrays, with named constants and an explainable breakdown.

The score follows Generative Agents (Park et al. 2023): three components — relevance (cosine similarity),
recency (exponential decay, MemoryBank's ``exp(−t/S)`` written as a half-life) and importance — are each
min-max normalised over the candidate set and combined with weights::

    score = (w_rel·rel' + w_rec·rec' + w_imp·imp') / (w_rel + w_rec + w_imp)        ∈ [0, 1]

Min-max normalisation is a strictly increasing map, so with ``w_rec = w_imp = 0`` the ranking is exactly
the cosine ranking; ties are broken by raw relevance, then newest first, then highest id.

With a query context (``memory._context``) the behavior's context factor is a fourth component, normalised
the same way: ``score = (… + w_ctx·ctx') / (w_rel + w_rec + w_imp + w_ctx)``. Without one the formula above
is computed exactly as written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memory._config import ScoringWeights

__all__ = ["HOURS_PER_DAY", "ScoreBreakdown", "minmax", "rank", "recency_decay", "score"]

HOURS_PER_DAY = 24.0
SECONDS_PER_HOUR = 3600.0
# A component that is the same for every candidate (or a single candidate) carries no ranking information;
# it is set to the top value so a lone good match reads as 1.0 rather than 0.0. Ranking is unaffected.
CONSTANT_NORMALISED = 1.0
# Spans below this are float noise (cosines are float32, ~1e-7 apart at best), i.e. "all equal".
_MIN_SPAN = 1e-12


def recency_decay(age_hours: np.ndarray, half_life_hours: float) -> np.ndarray:
    """Exponential decay ``0.5 ** (age / half_life)``: 1 now, 0.5 one half-life ago.

    Negative ages (a behavior after ``now``, which callers filter out anyway) count as age 0.

    Args:
        age_hours: Ages in hours.
        half_life_hours: Half-life in hours (> 0).

    Returns:
        Decay factors in ``(0, 1]`` as float64.
    """
    age = np.maximum(np.asarray(age_hours, dtype=np.float64), 0.0)
    return np.exp2(-age / float(half_life_hours))


def minmax(values: np.ndarray) -> np.ndarray:
    """Min-max normalise to ``[0, 1]``; a constant input maps to :data:`CONSTANT_NORMALISED`.

    Args:
        values: 1-d array.

    Returns:
        float64 array of the same length.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return x.copy()
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < _MIN_SPAN:
        return np.full_like(x, CONSTANT_NORMALISED)
    return (x - lo) / (hi - lo)


@dataclass(frozen=True)
class ScoreBreakdown:
    """Per-candidate components and the combined score (all float64 arrays of equal length)."""

    relevance: np.ndarray
    recency: np.ndarray
    importance: np.ndarray
    relevance_norm: np.ndarray
    recency_norm: np.ndarray
    importance_norm: np.ndarray
    age_hours: np.ndarray
    score: np.ndarray
    context: np.ndarray | None = None
    context_norm: np.ndarray | None = None


def score(
    relevance: np.ndarray,
    age_hours: np.ndarray,
    importance: np.ndarray,
    weights: ScoringWeights,
    half_life_hours: float,
    context: np.ndarray | None = None,
    context_weight: float = 0.0,
) -> ScoreBreakdown:
    """Combine relevance, recency and importance into one score per candidate.

    Args:
        relevance: Cosine similarity of each candidate to the query.
        age_hours: Age of each candidate at "now", in hours.
        importance: Each candidate's weight (≥ 0).
        weights: Component weights.
        half_life_hours: Recency half-life in hours.
        context: Each candidate's context factor in ``(0, 1]``, or ``None`` (no query context).
        context_weight: Weight of the context component (ignored without ``context``).

    Returns:
        The breakdown, including the combined ``score`` in ``[0, 1]``.
    """
    rel = np.asarray(relevance, dtype=np.float64)
    age = np.asarray(age_hours, dtype=np.float64)
    imp = np.asarray(importance, dtype=np.float64)
    rec = recency_decay(age, half_life_hours)
    # min-max is scale-free: normalise decays relative to the youngest candidate, which cannot underflow
    # (with an old history and a short half-life every absolute decay is 0.0 in float64)
    rec_rel = recency_decay(age - age.min(), half_life_hours) if len(age) else rec
    rel_n, rec_n, imp_n = minmax(rel), minmax(rec_rel), minmax(imp)
    total = weights.relevance + weights.recency + weights.importance
    combined = (weights.relevance * rel_n + weights.recency * rec_n + weights.importance * imp_n) / total
    if context is None:
        return ScoreBreakdown(rel, rec, imp, rel_n, rec_n, imp_n, age, combined)
    ctx = np.asarray(context, dtype=np.float64)
    ctx_n = minmax(ctx)
    combined = (combined * total + float(context_weight) * ctx_n) / (total + float(context_weight))
    return ScoreBreakdown(rel, rec, imp, rel_n, rec_n, imp_n, age, combined, ctx, ctx_n)


def rank(breakdown: ScoreBreakdown, timestamps: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Positions of the top ``k`` candidates: score, then relevance, then newest, then highest id.

    Args:
        breakdown: Output of :func:`score`.
        timestamps: Candidate timestamps (any monotone unit).
        ids: Candidate ids.
        k: How many to return.

    Returns:
        int64 positions into the candidate arrays, best first.
    """
    # np.lexsort sorts by the last key first; negate for descending order.
    order = np.lexsort((-np.asarray(ids), -np.asarray(timestamps), -breakdown.relevance, -breakdown.score))
    return order[: max(k, 0)]
