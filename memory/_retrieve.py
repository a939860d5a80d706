"""The scoring half of ``MemoryStore.retrieve``: one user's state, a query vector and a moment in, results out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from memory._config import MemoryConfig, ScoringWeights
from memory._context import QueryContext, context_factors
from memory._db import Database
from memory._filters import Filters
from memory._query import centroid, similarities
from memory._results import Retrieved, ScoreComponents
from memory._scoring import HOURS_PER_DAY, rank, score
from memory._state import UserState
from memory._time import US_PER_HOUR, to_us


def score_state(db: Database, user_id: str, state: UserState, qvec: np.ndarray | None, now_dt: datetime,
                exclude_recent: int, k: int, filters: Filters, weights: ScoringWeights, config: MemoryConfig,
                context: QueryContext | None, explain: bool) -> list[Retrieved]:
    """Score a user's visible behaviors (``timestamp <= now``) and fetch the top ``k`` rows, best first."""
    now_us = to_us(now_dt)
    visible = state.order_desc[state.ts_us[state.order_desc] <= now_us]
    if len(visible) <= exclude_recent:
        return []
    candidate = np.zeros(len(state), dtype=bool)
    candidate[visible[exclude_recent:]] = True
    if filters.active:
        candidate &= filters.mask(state)
    cpos = np.flatnonzero(candidate)
    if not len(cpos):
        return []
    if qvec is None:
        qvec = centroid(state, visible, config.centroid_window)
    sims = similarities(state, qvec)
    ages = (now_us - state.ts_us[cpos]) / US_PER_HOUR
    half_life = config.recency_half_life_days * HOURS_PER_DAY
    ctx = None
    if context is not None:
        cw = context.weights or config.context
        at = (context.at or now_dt) if context.time else None
        ctx = context_factors(state.ts_us[cpos], state.lat[cpos], state.lon[cpos], at, context.point, cw)
        bd = score(sims[cpos], ages, state.weights[cpos], weights, half_life, ctx.factor, cw.retrieval)
    else:
        bd = score(sims[cpos], ages, state.weights[cpos], weights, half_life)
    top = rank(bd, state.ts_us[cpos], state.ids[cpos], k)
    found = {b.id: b for b in db.fetch(user_id, state.user_key, state.ids[cpos[top]].tolist())}
    out = []
    for j in top:
        behavior = found.get(int(state.ids[cpos[j]]))
        if behavior is None:  # forgotten between the index read and the row fetch
            continue
        components = None
        if explain:
            components = ScoreComponents(
                relevance=float(bd.relevance[j]), recency=float(bd.recency[j]), importance=float(bd.importance[j]),
                relevance_norm=float(bd.relevance_norm[j]), recency_norm=float(bd.recency_norm[j]),
                importance_norm=float(bd.importance_norm[j]), age_hours=float(bd.age_hours[j]),
                **({} if ctx is None else _context_components(ctx, bd, j)),
            )
        out.append(Retrieved(behavior=behavior, score=float(bd.score[j]), components=components))
    return out


def _context_components(ctx: Any, bd: Any, j: int) -> dict[str, float | None]:
    def at(values: np.ndarray | None) -> float | None:
        return None if values is None or np.isnan(values[j]) else float(values[j])

    return {"hour_similarity": at(ctx.hour_similarity), "weekday_similarity": at(ctx.weekday_similarity),
            "distance_km": at(ctx.distance_km), "place_similarity": at(ctx.place_similarity),
            "context": float(ctx.factor[j]), "context_norm": float(bd.context_norm[j])}
