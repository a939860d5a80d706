"""Query context: weigh behaviors by how close their time of day, weekday and place are to the query's.

People want different things on a weekday morning at work and on a Saturday night at home. A query may
carry a context (a moment and a place); each behavior then gets a *context factor*

    factor = exp(−(w_hour·(1 − s_hour) + w_weekday·(1 − s_weekday) + w_place·(1 − s_place)))   ∈ (0, 1]

from three similarities in ``[0, 1]``:

- ``s_hour``: circular similarity of the hour of day, ``(1 + cos(2π·Δh / 24)) / 2`` — 1 at the same hour,
  0.5 six hours apart, 0 twelve hours apart (23:00 and 01:00 are two hours apart, not 22);
- ``s_weekday``: the same on the 7-day circle (Sunday and Monday are neighbours);
- ``s_place``: ``exp(−d / scale_km)`` of the great-circle (haversine) distance ``d``; a behavior without
  coordinates gets :data:`UNKNOWN_PLACE_SIMILARITY`.

A weight of 0 removes its term; with all weights 0 every factor is exactly 1. The profile multiplies each
behavior's decayed mass by its factor; retrieval adds the min-max normalised factor as a fourth component.
Without a context neither is touched: the code paths are the context-free ones. Times are UTC (Tide has no
user time zones), so "morning" means a UTC hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from memory._config import ContextWeights
from memory._errors import InvalidQueryError
from memory._filters import haversine_km
from memory._models import Location
from memory._time import US_PER_HOUR, require_aware, to_us

__all__ = [
    "DAYS_PER_WEEK",
    "UNKNOWN_PLACE_SIMILARITY",
    "ContextBreakdown",
    "QueryContext",
    "circular_similarity",
    "context_factors",
    "place_similarity",
]

HOURS_PER_DAY = 24.0
DAYS_PER_WEEK = 7.0
_US_PER_DAY = 24 * US_PER_HOUR
# 1970-01-01 was a Thursday; Monday = 0 as in datetime.weekday().
_EPOCH_WEEKDAY = 3
# A behavior without coordinates is neither near nor far from the query place: halfway between the
# similarity of a behavior at the place (1) and one infinitely far away (0). Constant over a user whose
# behaviors have no coordinates at all, so it then changes no ranking and no share.
UNKNOWN_PLACE_SIMILARITY = 0.5


class QueryContext(BaseModel):
    """Where and when a query is asked, for context-aware retrieval and profiles.

    Attributes:
        at: The moment whose hour of day and weekday behaviors are compared with (tz-aware); ``None``
            means the call's ``now``.
        place: Where the query is asked; must have coordinates.
        time: Whether to weigh by hour of day and weekday at all (``False``: place only).
        weights: Context weights for this query; ``None`` uses the store's ``MemoryConfig.context``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    at: datetime | None = None
    place: Location | None = None
    time: bool = True
    weights: ContextWeights | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise InvalidQueryError(str(first["msg"]).removeprefix("Value error, "), argument=field) from None
        except InvalidQueryError as exc:  # require_aware inside the validator
            raise exc from None

    @model_validator(mode="after")
    def _check(self) -> QueryContext:
        if self.at is not None:
            object.__setattr__(self, "at", require_aware(self.at, "at"))
        if self.place is not None and not self.place.has_coordinates:
            raise ValueError("a query place needs coordinates (lat, lon); a place name alone cannot be compared")
        if not self.time and self.place is None:
            raise ValueError("an empty context: give a place or keep time=True")
        return self

    @property
    def point(self) -> tuple[float, float] | None:
        """``(lat, lon)`` of the query place, if any."""
        if self.place is None or self.place.lat is None or self.place.lon is None:
            return None
        return float(self.place.lat), float(self.place.lon)

    def describe(self, now: datetime) -> str:
        """A short human-readable form, e.g. ``Tuesday 08:30 UTC near 48.2082,16.3738``."""
        parts = []
        if self.time:
            at = self.at or now
            parts.append(at.strftime("%A %H:%M UTC"))
        if self.point is not None:
            name = f"{self.place.place} " if self.place is not None and self.place.place else ""
            parts.append(f"near {name}({self.point[0]:.4f}, {self.point[1]:.4f})")
        return " ".join(parts)


def circular_similarity(values: np.ndarray, query: float, period: float) -> np.ndarray:
    """``(1 + cos(2π·(values − query) / period)) / 2``: 1 at the same phase, 0 half a period away.

    Args:
        values: Positions on the circle (e.g. hours of day).
        query: The query's position.
        period: Length of the circle (24 for hours, 7 for weekdays).

    Returns:
        float64 similarities in ``[0, 1]``.
    """
    delta = np.asarray(values, dtype=np.float64) - float(query)
    return 0.5 * (1.0 + np.cos(2.0 * np.pi * delta / float(period)))


def place_similarity(distance_km: np.ndarray, scale_km: float) -> np.ndarray:
    """``exp(−d / scale_km)``; NaN distances (unknown place) give :data:`UNKNOWN_PLACE_SIMILARITY`."""
    d = np.asarray(distance_km, dtype=np.float64)
    return np.where(np.isnan(d), UNKNOWN_PLACE_SIMILARITY, np.exp(-np.nan_to_num(d, nan=0.0) / float(scale_km)))


@dataclass(frozen=True)
class ContextBreakdown:
    """Per-behavior context similarities and the combined factor (float64 arrays; ``None`` when unused)."""

    hour_similarity: np.ndarray | None
    weekday_similarity: np.ndarray | None
    distance_km: np.ndarray | None
    place_similarity: np.ndarray | None
    factor: np.ndarray


def _hour_of_day(ts_us: np.ndarray | int) -> np.ndarray:
    return (np.asarray(ts_us, dtype=np.int64) % _US_PER_DAY) / US_PER_HOUR


def _weekday(ts_us: np.ndarray | int) -> np.ndarray:
    return ((np.asarray(ts_us, dtype=np.int64) // _US_PER_DAY) + _EPOCH_WEEKDAY) % 7


def context_factors(
    ts_us: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    at: datetime | None,
    point: tuple[float, float] | None,
    weights: ContextWeights,
) -> ContextBreakdown:
    """The context factor of each behavior (see the module docstring).

    Args:
        ts_us: Behavior times, microseconds since the epoch (UTC).
        lat: Behavior latitudes (NaN when unknown).
        lon: Behavior longitudes (NaN when unknown).
        at: The query moment (tz-aware), or ``None`` to ignore time of day and weekday.
        point: The query ``(lat, lon)``, or ``None`` to ignore places.
        weights: The context weights.

    Returns:
        The breakdown; ``factor`` is 1 everywhere when no term is active.
    """
    n = len(ts_us)
    penalty = np.zeros(n, dtype=np.float64)
    s_hour = s_day = dist = s_place = None
    if at is not None:
        at_us = to_us(at)
        s_hour = circular_similarity(_hour_of_day(ts_us), float(_hour_of_day(at_us)), HOURS_PER_DAY)
        s_day = circular_similarity(_weekday(ts_us), float(_weekday(at_us)), DAYS_PER_WEEK)
        penalty += weights.hour * (1.0 - s_hour) + weights.weekday * (1.0 - s_day)
    if point is not None:
        lat_a, lon_a = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        known = ~np.isnan(lat_a)
        dist = np.full(n, np.nan)
        if known.any():
            dist[known] = haversine_km(lat_a[known], lon_a[known], point[0], point[1])
        s_place = place_similarity(dist, weights.place_scale_km)
        penalty += weights.place * (1.0 - s_place)
    return ContextBreakdown(s_hour, s_day, dist, s_place, np.exp(-penalty))
