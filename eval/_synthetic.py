"""A seeded synthetic dataset with planted interest drift and time-of-day interests, ground truth included.

Each user has a long-term category, switches to a second category part-way through the history (drift),
and has a third category that dominates a daily window of hours (periodic interest). Optionally, items
follow a fixed chain inside each category (a planted sequential pattern that a sequence model can learn
and a popularity model cannot). The generator returns the truth so tests can check what a model
recovers: that recent behavior should outweigh old behavior after the drift, and that the hour matters.

With ``habits=True`` the daily window is replaced by spatio-temporal habits (``eval._habits``): each user has
home, work and weekend places in one city and wants a different category on weekday mornings at work, in
the evening at home and on weekend afternoons out; every interaction carries its coordinates, so a
prediction can be asked "at this time, at this place".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from eval._data import Dataset, Interaction, Item, User
from eval._habits import Habit, Place, habit_of, place_of, sample_places, slot_of

__all__ = ["SyntheticConfig", "SyntheticTruth", "UserTruth", "make_synthetic"]

_CATEGORY_NAMES = (
    "action", "comedy", "drama", "horror", "romance", "scifi", "documentary", "music", "sports", "cooking",
    "travel", "news", "history", "fantasy", "anime", "crime",
)


class SyntheticConfig(BaseModel):
    """Parameters of the synthetic generator (written with every result built on it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_users: int = Field(200, ge=1)
    n_items: int = Field(600, ge=4)
    seed: int = 0
    n_categories: int = Field(10, ge=3)
    min_events: int = Field(30, ge=4)
    max_events: int = Field(60, ge=4)
    drift_fraction_low: float = Field(0.4, gt=0.0, lt=1.0)
    drift_fraction_high: float = Field(0.7, gt=0.0, lt=1.0)
    periodic_width_hours: int = Field(4, ge=1, le=23)
    p_periodic: float = Field(0.8, ge=0.0, le=1.0, description="P(periodic category | inside the window)")
    p_noise: float = Field(0.1, ge=0.0, le=1.0, description="P(uniformly random category)")
    p_sequential: float = Field(0.0, ge=0.0, le=1.0, description="P(next item = chain successor)")
    mean_gap_hours: float = Field(7.0, gt=0.0)
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    habits: bool = Field(False, description="plant spatio-temporal habits instead of the daily window")
    p_habit: float = Field(0.85, ge=0.0, le=1.0, description="P(habit category | inside its slot)")
    offslot_activity: float = Field(0.3, gt=0.0, le=1.0, description="P(an off-slot event happens)")
    city: tuple[float, float] = (48.2082, 16.3738)
    city_radius_km: float = Field(8.0, ge=3.0, le=100.0)

    @model_validator(mode="after")
    def _check(self) -> SyntheticConfig:
        if self.max_events < self.min_events:
            raise ValueError("max_events < min_events")
        if self.drift_fraction_high < self.drift_fraction_low:
            raise ValueError("drift_fraction_high < drift_fraction_low")
        if self.n_items < self.n_categories:
            raise ValueError("need at least one item per category")
        if self.start.tzinfo is None:
            raise ValueError("start must be tz-aware")
        if self.habits and self.n_categories < 5:
            raise ValueError("habits need at least 5 categories (long-term, drift and three habits)")
        return self


@dataclass(frozen=True, slots=True)
class UserTruth:
    """What was planted for one user.

    Attributes:
        long_term: Category before the drift.
        drift_to: Category after the drift.
        drift_index: Index in the user's sequence of the first post-drift event.
        drift_time: Time of that event.
        periodic: Category that dominates the daily window.
        periodic_hours: ``(start, end)`` hours of the window in UTC, end exclusive, may wrap past midnight.
    """

    long_term: str
    drift_to: str
    drift_index: int
    drift_time: datetime
    periodic: str
    periodic_hours: tuple[int, int]
    habits: tuple[Habit, ...] = ()
    places: tuple[Place, ...] = ()

    def in_window(self, when: datetime) -> bool:
        """Whether ``when`` falls inside the periodic window (with habits: inside any habit slot)."""
        if self.habits:
            return habit_of(self.habits, when) is not None
        start, end = self.periodic_hours
        hour = when.astimezone(UTC).hour
        return start <= hour < end if start < end else hour >= start or hour < end

    def expected_category(self, when: datetime, index: int) -> str:
        """The most likely category of event number ``index`` at time ``when``."""
        habit = habit_of(self.habits, when) if self.habits else None
        if habit is not None:
            return habit.category
        if not self.habits and self.in_window(when):
            return self.periodic
        return self.drift_to if index >= self.drift_index else self.long_term


@dataclass(frozen=True, slots=True)
class SyntheticTruth:
    """Ground truth of a synthetic dataset: per-user plan, item categories, and the config."""

    users: dict[str, UserTruth]
    item_category: dict[str, str]
    config: SyntheticConfig


def make_synthetic(
    n_users: int = 200, n_items: int = 600, seed: int = 0, **overrides: object
) -> tuple[Dataset, SyntheticTruth]:
    """Generate a synthetic dataset with known interest drift and periodic interests.

    Args:
        n_users: Number of users.
        n_items: Number of items (spread evenly over categories).
        seed: Seed of the only random generator used.
        **overrides: Any other ``SyntheticConfig`` field (e.g. ``p_sequential=0.9``, ``habits=True``).

    Returns:
        ``(dataset, truth)``. Each user consumes an item at most once, so the
        exclude-consumed protocol never hides a target; when a user has used up a category, an unconsumed
        item of any category is drawn instead (keep ``n_items / n_categories`` above ``max_events``).
    """
    config = SyntheticConfig(n_users=n_users, n_items=n_items, seed=seed, **overrides)
    rng = np.random.default_rng(config.seed)
    names = [
        _CATEGORY_NAMES[i % len(_CATEGORY_NAMES)] + ("" if i < len(_CATEGORY_NAMES) else str(i // 16))
        for i in range(config.n_categories)
    ]
    items: dict[str, Item] = {}
    by_category: dict[str, list[str]] = {name: [] for name in names}
    for idx in range(config.n_items):
        category = names[idx % config.n_categories]
        item_id = f"i{idx}"
        rank = len(by_category[category])
        title = f"{category} #{rank}"
        items[item_id] = Item(item_id, title, None, (category,), f"{title} - {category}")
        by_category[category].append(item_id)
    successor = {
        ids[j]: ids[(j + 1) % len(ids)] for ids in by_category.values() for j in range(len(ids))
    }
    # Mild within-category popularity (Zipf-like, exponent 0.7), so popularity is a sensible baseline.
    weights = {
        c: (w := 1.0 / np.arange(1, len(ids) + 1) ** 0.7) / w.sum() for c, ids in by_category.items()
    }

    users: dict[str, User] = {}
    truth: dict[str, UserTruth] = {}
    interactions: list[Interaction] = []
    for u in range(config.n_users):
        uid = f"u{u}"
        users[uid] = User(uid)
        habits: tuple[Habit, ...] = ()
        places: dict[str, Place] = {}
        if config.habits:
            long_term, drift_to, *slot_cats = (names[i] for i in rng.choice(config.n_categories, 5, replace=False))
            places = sample_places(rng, config.city, config.city_radius_km)
            habits = tuple(Habit(slot, cat, places[where]) for (slot, where), cat in
                           zip((("work", "work"), ("evening", "home"), ("weekend", "out")), slot_cats, strict=True))
            periodic = habits[1].category
        else:
            long_term, drift_to, periodic = (names[i] for i in rng.choice(config.n_categories, 3, replace=False))
        n_events = int(rng.integers(config.min_events, config.max_events + 1))
        drift_index = int(round(n_events * rng.uniform(config.drift_fraction_low, config.drift_fraction_high)))
        drift_index = min(max(drift_index, 1), n_events - 1)
        window_start = int(rng.integers(0, 24))
        hours = (window_start, (window_start + config.periodic_width_hours) % 24)
        offset = timedelta(hours=float(rng.uniform(0, 24 * 7)))
        gaps = rng.exponential(config.mean_gap_hours, size=n_events)
        # Whole seconds, so the truth's times equal the stored interaction times exactly.
        times = [
            (config.start + offset + timedelta(hours=float(g))).replace(microsecond=0) for g in np.cumsum(gaps)
        ]
        if config.habits:
            times = _habit_times(rng, config, config.start + offset, n_events)
            hours = (19, 0)
        plan = UserTruth(long_term, drift_to, drift_index, times[drift_index], periodic, hours, habits,
                         tuple(places.values()))
        truth[uid] = plan
        consumed: set[str] = set()
        previous: str | None = None
        for index, when in enumerate(times):
            roll = rng.random()
            habit = habit_of(habits, when) if habits else None
            if habit is not None and roll < config.p_habit:
                category = habit.category
            elif not habits and plan.in_window(when) and roll < config.p_periodic:
                category = periodic
            elif rng.random() < config.p_noise:
                category = names[int(rng.integers(config.n_categories))]
            else:
                category = drift_to if index >= drift_index else long_term
            item_id = None
            if (
                previous is not None
                and items[previous].genres[0] == category
                and rng.random() < config.p_sequential
                and successor[previous] not in consumed
            ):
                item_id = successor[previous]
            if item_id is None:
                pool = [i for i in by_category[category] if i not in consumed]
                if pool:
                    p = np.array([weights[category][by_category[category].index(i)] for i in pool])
                    item_id = pool[int(rng.choice(len(pool), p=p / p.sum()))]
                else:  # category exhausted: any unconsumed item
                    rest = [i for i in items if i not in consumed]
                    item_id = rest[int(rng.integers(len(rest)))]
            consumed.add(item_id)
            previous = item_id
            rating = float(rng.integers(3, 6))
            if habits:
                at = place_of(habits, places, when)
                interactions.append(Interaction(uid, item_id, rating, int(when.timestamp()), at.lat, at.lon, at.name))
            else:
                interactions.append(Interaction(uid, item_id, rating, int(when.timestamp())))
    category_of = {iid: item.genres[0] for iid, item in items.items()}
    dataset = Dataset(
        "synthetic", items, users, interactions, meta={"generator": config.model_dump(mode="json")}
    )
    return dataset, SyntheticTruth(truth, category_of, config)


def _habit_times(rng: np.random.Generator, config: SyntheticConfig, start: datetime, n: int) -> list[datetime]:
    """``n`` event times from a Poisson stream thinned off-slot: activity concentrates in the habit slots."""
    out: list[datetime] = []
    t = start
    while len(out) < n:
        t = t + timedelta(hours=float(rng.exponential(config.mean_gap_hours)))
        keep = slot_of(t) is not None or rng.random() < config.offslot_activity
        if keep:
            out.append(t.replace(microsecond=0))
    return out
