"""Time-window, time-of-day, weekday and distance filters over a user's behavior arrays."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from memory._errors import InvalidQueryError
from memory._state import UserState
from memory._time import require_aware, to_us

__all__ = ["EARTH_RADIUS_KM", "Filters", "haversine_km", "make_filters"]

# Mean Earth radius (IUGG); haversine on a sphere is accurate to ~0.5 %, plenty for "near a place".
EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: np.ndarray | float, lon1: np.ndarray | float, lat2: float, lon2: float) -> np.ndarray:
    """Great-circle distance in km between points (arrays allowed for the first point)."""
    p1, p2 = np.radians(lat1), math.radians(lat2)
    dphi = p2 - p1
    dl = math.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * math.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass(frozen=True)
class Filters:
    """Validated filters; ``None`` fields do not filter."""

    since_us: int | None = None
    until_us: int | None = None
    hours: frozenset[int] | None = None
    weekdays: frozenset[int] | None = None
    near: tuple[float, float, float] | None = None

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any(v is not None for v in (self.since_us, self.until_us, self.hours, self.weekdays, self.near))

    def mask(self, state: UserState) -> np.ndarray:
        """Boolean mask over the state's behaviors that pass every filter."""
        keep = np.ones(len(state), dtype=bool)
        if self.since_us is not None:
            keep &= state.ts_us >= self.since_us
        if self.until_us is not None:
            keep &= state.ts_us < self.until_us
        if self.hours is not None:
            keep &= np.isin(state.hours, list(self.hours))
        if self.weekdays is not None:
            keep &= np.isin(state.weekdays, list(self.weekdays))
        if self.near is not None:
            lat, lon, radius = self.near
            has = ~np.isnan(state.lat)
            dist = np.full(len(state), np.inf)
            dist[has] = haversine_km(state.lat[has], state.lon[has], lat, lon)
            keep &= dist <= radius
        return keep


def _int_set(values: Iterable[int] | None, low: int, high: int, argument: str) -> frozenset[int] | None:
    if values is None:
        return None
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidQueryError(f"expected a set of integers {low}–{high}", argument=argument)
    out = frozenset(values)
    if not out or any(isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high for v in out):
        raise InvalidQueryError(f"expected a non-empty set of integers {low}–{high}, got {sorted(out, key=str)}",
                                argument=argument)
    return out


def make_filters(
    since: datetime | None = None,
    until: datetime | None = None,
    hours_of_day: Iterable[int] | None = None,
    days_of_week: Iterable[int] | None = None,
    near: tuple[float, float, float] | None = None,
) -> Filters:
    """Validate filter arguments.

    Args:
        since: Keep behaviors at or after this time.
        until: Keep behaviors strictly before this time.
        hours_of_day: Keep behaviors whose UTC hour is in this set (0–23).
        days_of_week: Keep behaviors whose UTC weekday is in this set (Monday = 0 … Sunday = 6).
        near: ``(lat, lon, radius_km)``: keep behaviors with coordinates within the radius.

    Raises:
        InvalidQueryError: An argument is malformed.
    """
    since_us = None if since is None else to_us(require_aware(since, "since"))
    until_us = None if until is None else to_us(require_aware(until, "until"))
    if since_us is not None and until_us is not None and until_us <= since_us:
        raise InvalidQueryError("must be later than since", argument="until")
    near_t = None
    if near is not None:
        try:
            lat, lon, radius = (float(v) for v in near)
        except (TypeError, ValueError):
            raise InvalidQueryError("expected (lat, lon, radius_km)", argument="near") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and math.isfinite(radius) and radius >= 0):
            raise InvalidQueryError(f"out of range: {near!r}", argument="near")
        near_t = (lat, lon, radius)
    return Filters(since_us, until_us, _int_set(hours_of_day, 0, 23, "hours_of_day"),
                   _int_set(days_of_week, 0, 6, "days_of_week"), near_t)
