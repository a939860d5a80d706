"""Planted spatio-temporal habits for the synthetic generator: who wants what, when and where.

A habit user has three places in one city (home, work, and an "out" place for weekends) and three habit
categories, each tied to a time slot and a place::

    work      Monday–Friday 08:00–13:00 UTC, at work        e.g. news
    evening   every day     19:00–24:00 UTC, at home        e.g. films
    weekend   Saturday–Sunday 10:00–18:00 UTC, out          e.g. sports

Outside the slots the user is at home (weekday afternoons: at work) and follows the base interest (the
long-term category, then the drift category). Activity concentrates in the slots (people read on the way to
work and watch at night): an off-slot event survives with probability ``offslot_activity``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

__all__ = ["HABIT_SLOTS", "Habit", "Place", "habit_of", "place_of", "sample_places"]

# Kilometres per degree of latitude (mean); longitude degrees shrink with cos(latitude).
_KM_PER_DEGREE = 111.195
# Home and work closer than this would be one place to a 1 km-scale context kernel.
MIN_PLACE_SEPARATION_KM = 2.0


@dataclass(frozen=True, slots=True)
class Place:
    """A named point."""

    name: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Habit:
    """One slot of the week tied to a place and a category.

    Attributes:
        slot: ``work``, ``evening`` or ``weekend``.
        category: The category the user wants in that slot.
        place: Where the user is in that slot.
    """

    slot: str
    category: str
    place: Place


#: slot -> (weekdays (Monday = 0), start hour, end hour (exclusive), place name)
HABIT_SLOTS: dict[str, tuple[frozenset[int], int, int, str]] = {
    "work": (frozenset(range(5)), 8, 13, "work"),
    "evening": (frozenset(range(7)), 19, 24, "home"),
    "weekend": (frozenset({5, 6}), 10, 18, "out"),
}


def slot_of(when: datetime) -> str | None:
    """The habit slot ``when`` (UTC) falls in, or ``None``."""
    t = when.astimezone(UTC)
    for slot, (days, start, end, _) in HABIT_SLOTS.items():
        if t.weekday() in days and start <= t.hour < end:
            return slot
    return None


def habit_of(habits: tuple[Habit, ...], when: datetime) -> Habit | None:
    """The user's habit active at ``when``, if any."""
    slot = slot_of(when)
    return next((h for h in habits if h.slot == slot), None)


def place_of(habits: tuple[Habit, ...], places: dict[str, Place], when: datetime) -> Place:
    """Where the user is at ``when``: the habit's place; weekday afternoons at work; otherwise at home."""
    habit = habit_of(habits, when)
    if habit is not None:
        return habit.place
    t = when.astimezone(UTC)
    return places["work"] if t.weekday() < 5 and 13 <= t.hour < 18 else places["home"]


def _offset(rng: np.random.Generator, centre: tuple[float, float], radius_km: float) -> tuple[float, float]:
    r = radius_km * math.sqrt(float(rng.random()))
    theta = 2 * math.pi * float(rng.random())
    dlat = r * math.cos(theta) / _KM_PER_DEGREE
    dlon = r * math.sin(theta) / (_KM_PER_DEGREE * math.cos(math.radians(centre[0])))
    return round(centre[0] + dlat, 5), round(centre[1] + dlon, 5)


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (a[0] - b[0]) * _KM_PER_DEGREE
    dx = (a[1] - b[1]) * _KM_PER_DEGREE * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


def sample_places(rng: np.random.Generator, city: tuple[float, float], radius_km: float) -> dict[str, Place]:
    """Home, work and out, uniformly in a disc around ``city``, pairwise at least 2 km apart."""
    points: list[tuple[float, float]] = []
    while len(points) < 3:
        p = _offset(rng, city, radius_km)
        if all(_km(p, q) >= MIN_PLACE_SEPARATION_KM for q in points):
            points.append(p)
    return {name: Place(name, lat, lon) for name, (lat, lon) in zip(("home", "work", "out"), points, strict=True)}
