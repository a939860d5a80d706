"""Interest profiles: time-decayed vectors and attribute shares on two horizons, and the drift between them.

Pure functions of a user's state, ``now`` and the config. Every behavior at or before ``now`` carries a mass
``weight · 0.5 ** (age / half_life)`` on each horizon; the horizon's vector is the normalised mass-weighted
sum of embeddings, and each attribute value (e.g. genre) gets the mass of the behaviors carrying it, split
equally when a behavior carries several. ``drift = 1 − cos(short, long)``.

Given a query context (``memory._context``), each mass is further multiplied by the behavior's context
factor, so both horizons describe what the user wants *at that hour, weekday and place*; without one the
computation is the context-free one, unchanged.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from memory._config import MemoryConfig
from memory._context import QueryContext, context_factors
from memory._results import AttributeChange, AttributeShare, HorizonProfile, PlaceCount, Profile
from memory._scoring import HOURS_PER_DAY, recency_decay
from memory._state import UserState
from memory._time import US_PER_HOUR, from_us, to_us

__all__ = ["build_profile"]

# Coordinates without a place name are grouped on a 0.01° grid (~1 km): one "place" per neighbourhood.
PLACE_GRID_DECIMALS = 2
# Vectors shorter than this have no direction (e.g. all masses zero).
_MIN_NORM = 1e-12


def _masses(state: UserState, pos: np.ndarray, now_us: int, half_life_days: float,
            factor: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Decayed masses relative to the newest behavior's decay, and that decay factor.

    Shares, the vector, the span and the effective count do not depend on a common factor, so they are
    computed on relative masses: with a short half-life and an old history the absolute masses underflow to
    zero (2**-1000 and below), the relative ones never do for the newest behaviors.
    """
    age_hours = (now_us - state.ts_us[pos]) / US_PER_HOUR
    hl_hours = half_life_days * HOURS_PER_DAY
    youngest = float(age_hours.min()) if len(age_hours) else 0.0
    rel = state.weights[pos].astype(np.float64) * recency_decay(age_hours - youngest, hl_hours)
    if factor is not None:
        rel = rel * factor
    return rel, float(recency_decay(np.array([youngest]), hl_hours)[0])


def _tag_mass(state: UserState, pos: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Mass per tag code, each behavior's mass split equally over its tags."""
    out = np.zeros(len(state.tag_names), dtype=np.float64)
    starts, ends = state.tag_indptr[pos], state.tag_indptr[pos + 1]
    counts = ends - starts
    has = counts > 0
    if not has.any() or not len(out):
        return out
    rows = np.repeat(np.arange(len(pos))[has], counts[has])
    codes = np.concatenate([state.tag_codes[s:e] for s, e in zip(starts[has], ends[has], strict=True)])
    np.add.at(out, codes, (mass / np.maximum(counts, 1))[rows])
    return out


def _horizon(
    state: UserState, pos: np.ndarray, now_us: int, half_life_days: float, config: MemoryConfig,
    factor: np.ndarray | None = None,
) -> tuple[HorizonProfile, np.ndarray]:
    """One horizon and its normalised tag shares (by tag code)."""
    mass, scale = _masses(state, pos, now_us, half_life_days, factor)
    total = float(mass.sum())
    tag_mass = _tag_mass(state, pos, mass)
    tag_total = float(tag_mass.sum())
    shares = tag_mass / tag_total if tag_total > 0 else tag_mass
    if total <= 0:
        return HorizonProfile(half_life_days=half_life_days), shares
    vec = (mass[:, None] * state.vectors[pos].astype(np.float64)).sum(axis=0)
    norm = float(np.linalg.norm(vec))
    vector = (vec / norm).astype(np.float32) if norm > _MIN_NORM else None
    # pos is newest first: the span is the newest prefix holding the configured share of the mass.
    cum = np.cumsum(mass)
    cut = int(np.searchsorted(cum, config.profile_mass_fraction * total * (1 - 1e-12)))
    cut = min(cut, len(pos) - 1)
    first_with_mass = int(np.argmax(mass > 0))
    top = np.argsort(-shares, kind="stable")[: config.profile_top_attributes]
    return (
        HorizonProfile(
            half_life_days=half_life_days,
            vector=vector,
            mass=total * scale,
            effective_n=total**2 / max(float((mass**2).sum()), np.finfo(np.float64).tiny),
            span_start=from_us(int(state.ts_us[pos[cut]])),
            span_end=from_us(int(state.ts_us[pos[first_with_mass]])),
            top_attributes=[AttributeShare(name=state.tag_names[c], share=float(shares[c])) for c in top if shares[c] > 0],
        ),
        shares,
    )


def _places(state: UserState, pos: np.ndarray, top: int) -> list[PlaceCount]:
    groups: dict[str, list[tuple[float, float]]] = {}
    for p in pos:
        code = state.place_codes[p]
        lat, lon = float(state.lat[p]), float(state.lon[p])
        if code >= 0:
            key = state.place_names[code]
        elif not np.isnan(lat):
            key = f"{round(lat, PLACE_GRID_DECIMALS):.{PLACE_GRID_DECIMALS}f},{round(lon, PLACE_GRID_DECIMALS):.{PLACE_GRID_DECIMALS}f}"
        else:
            continue
        groups.setdefault(key, []).append((lat, lon))
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:top]
    out = []
    for name, points in ranked:
        coords = [(a, b) for a, b in points if not np.isnan(a)]
        lat = float(np.mean([a for a, _ in coords])) if coords else None
        lon = float(np.mean([b for _, b in coords])) if coords else None
        out.append(PlaceCount(place=name, count=len(points), lat=lat, lon=lon))
    return out


def build_profile(user_id: str, state: UserState | None, now: datetime, config: MemoryConfig,
                  context: QueryContext | None = None) -> Profile:
    """Compute a user's profile as of ``now`` (behaviors after ``now`` are ignored).

    Args:
        user_id: The user.
        state: The user's state, or ``None`` for an unknown user.
        now: The "as of" moment (tz-aware UTC).
        config: Horizons, top-k sizes, mass fraction, context weights.
        context: Weigh masses by similarity to this context's hour, weekday and place; ``None``: no context.

    Returns:
        The profile; empty (``n_behaviors == 0``) when nothing is visible.
    """
    now_us = to_us(now)
    short_hl, long_hl = config.short_half_life_days, config.long_half_life_days
    if state is None or len(state) == 0:
        pos = np.zeros(0, dtype=np.int64)
    else:
        pos = state.order_desc[state.ts_us[state.order_desc] <= now_us]
    if state is None or not len(pos):
        return Profile(user_id=user_id, as_of=now, n_behaviors=0,
                       short=HorizonProfile(half_life_days=short_hl), long=HorizonProfile(half_life_days=long_hl))
    factor = None
    if context is not None:
        weights = context.weights or config.context
        at = (context.at or now) if context.time else None
        factor = context_factors(state.ts_us[pos], state.lat[pos], state.lon[pos], at, context.point, weights).factor
    short, s_shares = _horizon(state, pos, now_us, short_hl, config, factor)
    long, l_shares = _horizon(state, pos, now_us, long_hl, config, factor)
    drift = None
    if short.vector is not None and long.vector is not None:
        cos = float(np.dot(short.vector.astype(np.float64), long.vector.astype(np.float64)))
        drift = float(min(max(1.0 - cos, 0.0), 2.0))
    delta = s_shares - l_shares
    top = config.profile_top_attributes

    def change(c: int) -> AttributeChange:
        return AttributeChange(name=state.tag_names[c], short_share=float(s_shares[c]),
                               long_share=float(l_shares[c]), delta=float(delta[c]))

    shift = config.profile_min_shift
    rising = [change(c) for c in np.argsort(-delta, kind="stable")[:top] if delta[c] > shift]
    fading = [change(c) for c in np.argsort(delta, kind="stable")[:top] if delta[c] < -shift]
    return Profile(
        user_id=user_id,
        as_of=now,
        n_behaviors=len(pos),
        first_seen=from_us(int(state.ts_us[pos[-1]])),
        last_seen=from_us(int(state.ts_us[pos[0]])),
        short=short,
        long=long,
        drift=drift,
        rising=rising,
        fading=fading,
        hour_of_day=np.bincount(state.hours[pos], minlength=24).astype(int).tolist(),
        day_of_week=np.bincount(state.weekdays[pos], minlength=7).astype(int).tolist(),
        top_places=_places(state, pos, config.profile_top_places) if config.profile_top_places else [],
    )
