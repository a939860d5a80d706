"""The feedback loop: what a user says about a prediction becomes a behavior, and the next prediction listens.

A signal (``like``, ``dislike``, ``skip``, ``consumed``) is stored as an ordinary behavior with action
``feedback-<signal>`` and a signal-specific weight, so it is kept, retrieved and forgotten like everything
else (``store.forget`` undoes it). Its weight is its *positive* mass in profiles: a like counts like a top
rating, a consumed item like a plain view, a dislike or a skip not at all. The negative side is applied by
the retrieval stage through :func:`feedback_adjustment`:

- a disliked item never comes back (its score is ``-inf``), whatever the caller's exclusion list says;
- every other item is demoted by ``d_i = min(MAX_DEMOTION, Σ_dislikes s_dislike · decay · closeness)``,
  where ``closeness = max(tag overlap, embedding closeness)`` to the disliked item and ``decay`` halves every
  ``half_life_days``: the demotion fades;
- a like boosts items sharing its tags by ``b_i = Σ_likes s_like · decay · tag overlap``.

The final score is ``score_i · (1 − d_i) + b_i · max_j score_j``: retrieval scores are non-negative sums of
min-max normalised components, so the demotion keeps their scale, and the boost is counted in units of the
user's best score — a fresh like lifts its tag by the whole score range, enough to bring a tag the profile
does not show into the top items.

The two strengths were picked on validation synthetic users (``scripts/feedback_tune.py``: the highest
overlap of the top 10's categories with the user's next 10 events, HR@10 not below no feedback) and
measured on fresh ones: ``docs/results/feedback-tune.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memory import Behavior, Location, MemoryStore, StoredBehavior

from ._catalog import Catalog, CatalogItem
from ._errors import FeedbackError, UnknownItemError, UnknownUserError

__all__ = [
    "FEEDBACK_ACTIONS",
    "SIGNALS",
    "FeedbackConfig",
    "Signal",
    "feedback_adjustment",
    "feedback_behavior",
    "is_feedback",
    "record_feedback",
    "signal_of",
    "to_location",
]

Signal = Literal["like", "dislike", "skip", "consumed"]
SIGNALS: tuple[str, ...] = ("like", "dislike", "skip", "consumed")
ACTION_PREFIX = "feedback-"
FEEDBACK_ACTIONS = frozenset(ACTION_PREFIX + s for s in SIGNALS)
# A demoted item keeps at least 5 % of its score: a strongly disliked neighbourhood sinks below everything
# else but stays ordered within itself.
MAX_DEMOTION = 0.95
_SECONDS_PER_DAY = 86_400.0


class FeedbackConfig(BaseModel):
    """How feedback weighs (part of the agent's configuration).

    Attributes:
        like_weight: Profile mass of a like (5: a top rating on MovieLens's 1–5 scale).
        consumed_weight: Profile mass of a consumed item (1: a plain view).
        dislike_strength: Demotion a fresh dislike puts on an item it fully matches (same tags); 1.0 picked on
            validation (``scripts/feedback_tune.py``; 0.5 before).
        like_strength: Boost a fresh like puts on items with the same tags; 1.0 picked on validation (0.5
            before).
        half_life_days: Demotions and boosts halve every this many days.
        min_similarity: Embedding cosine below which an item is not "close" to a disliked one; closeness
            rises linearly from 0 there to 1 at cosine 1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    like_weight: float = Field(5.0, ge=0.0, le=1e6)
    consumed_weight: float = Field(1.0, ge=0.0, le=1e6)
    dislike_strength: float = Field(1.0, ge=0.0, le=10.0)
    like_strength: float = Field(1.0, ge=0.0, le=10.0)
    half_life_days: float = Field(14.0, gt=0.0)
    min_similarity: float = Field(0.8, ge=-1.0, lt=1.0)

    def weight(self, signal: str) -> float:
        """The behavior weight (positive profile mass) of a signal."""
        return {"like": self.like_weight, "consumed": self.consumed_weight}.get(signal, 0.0)


def is_feedback(action: str) -> bool:
    """Whether a behavior's action is a feedback signal."""
    return action in FEEDBACK_ACTIONS


def signal_of(action: str) -> str | None:
    """The signal of a feedback action (``feedback-dislike`` → ``dislike``), else ``None``."""
    return action.removeprefix(ACTION_PREFIX) if is_feedback(action) else None


_VERBS = {"like": "Liked", "dislike": "Disliked", "skip": "Skipped", "consumed": "Consumed"}


def feedback_behavior(user_id: str, item: CatalogItem, signal: str, at: datetime, place: Location | None,
                      config: FeedbackConfig) -> Behavior:
    """The behavior that records one signal (validated by :class:`memory.Behavior`)."""
    cats = ", ".join(item.categories)
    text = f'{_VERBS[signal]} "{item.title}"' + (f" ({cats})." if cats else ".")
    return Behavior(user_id=user_id, item_id=item.item_id, action=ACTION_PREFIX + signal, text=text, timestamp=at,
                    location=place, weight=config.weight(signal),
                    attributes={"signal": signal, "categories": list(item.categories)})


def _overlap(catalog: Catalog, tags: frozenset[str]) -> np.ndarray:
    """Jaccard overlap of every catalogue item's categories with ``tags``."""
    out = np.zeros(len(catalog))
    if not tags:
        return out
    for i, it in enumerate(catalog.items):
        cats = set(it.categories)
        if cats:
            out[i] = len(cats & tags) / len(cats | tags)
    return out


def feedback_adjustment(catalog: Catalog, feedback: Sequence[Behavior], now: datetime,
                        config: FeedbackConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Demotion factors, boosts and exclusions of feedback (see the module docstring).

    Args:
        catalog: The catalogue (columns of the result).
        feedback: The user's feedback behaviors (any order); later ones than ``now`` are ignored.
        now: The prediction time (decays are measured from it).
        config: Strengths and half-life.

    Returns:
        ``(keep, boost, excluded)`` per item: ``1 − d_i`` (1 where no dislike applies), ``b_i`` (0 where no like
        applies) and a boolean mask of disliked items.
    """
    n = len(catalog)
    demote, boost = np.zeros(n), np.zeros(n)
    excluded = np.zeros(n, dtype=bool)
    overlaps: dict[frozenset[str], np.ndarray] = {}
    for b in feedback:
        signal = signal_of(b.action)
        idx = catalog.index.get(b.item_id or "")
        if signal not in ("like", "dislike") or idx is None or b.timestamp > now:
            continue
        decay = 0.5 ** (max((now - b.timestamp).total_seconds(), 0.0) / _SECONDS_PER_DAY / config.half_life_days)
        tags = frozenset(catalog.items[idx].categories)
        if tags not in overlaps:
            overlaps[tags] = _overlap(catalog, tags)
        if signal == "dislike":
            excluded[idx] = True
            cos = catalog.similarity(catalog.vectors[idx])
            close = np.clip((cos - config.min_similarity) / (1.0 - config.min_similarity), 0.0, 1.0)
            demote += config.dislike_strength * decay * np.maximum(overlaps[tags], close)
        else:
            boost += config.like_strength * decay * overlaps[tags]
    return 1.0 - np.minimum(demote, MAX_DEMOTION), boost, excluded


def to_location(place: Any, argument: str = "place") -> Location | None:
    """A place argument (``None``, a :class:`memory.Location` or ``(lat, lon)``) as a Location with coordinates.

    Raises:
        FeedbackError: Not a place, no coordinates, or coordinates out of range / not finite.
    """
    if place is None:
        return None
    if isinstance(place, Location):
        loc = place
    elif isinstance(place, tuple | list) and len(place) == 2:
        try:
            loc = Location(lat=float(place[0]), lon=float(place[1]))
        except (TypeError, ValueError, ValidationError) as exc:
            first = exc.errors(include_url=False)[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise FeedbackError(f"bad coordinates {place!r}: {first}", field=argument) from None
    else:
        raise FeedbackError(f"expected (lat, lon) or a Location, got {type(place).__name__}", field=argument)
    if not loc.has_coordinates:
        raise FeedbackError("a place needs coordinates (lat, lon), not only a name", field=argument)
    return loc


def record_feedback(store: MemoryStore, catalog: Catalog, config: FeedbackConfig, user_id: str, item_id: str,
                    signal: str, at: datetime | None = None, place: Any = None) -> StoredBehavior:
    """Validate one feedback signal and store it as a behavior; nothing is written when anything is wrong.

    Raises:
        UnknownUserError: The user has no memory.
        UnknownItemError: The item is not in the catalogue.
        FeedbackError: Unknown signal, a time that is not a tz-aware datetime, a place without valid coordinates.
        memory.InvalidBehaviorError: The behavior is otherwise invalid (e.g. a time in the future).
    """
    if signal not in SIGNALS:
        raise FeedbackError(f"{signal!r} is not one of {', '.join(SIGNALS)}", field="signal")
    if at is None:
        at = datetime.now(UTC)
    elif not isinstance(at, datetime):
        raise FeedbackError(f"expected a timezone-aware datetime, got {type(at).__name__}", field="at")
    elif at.tzinfo is None or at.utcoffset() is None:
        raise FeedbackError("naive times are ambiguous; give a time zone (e.g. +00:00)", field="at")
    loc = to_location(place)
    if not isinstance(user_id, str) or not user_id or store.count(user_id) == 0:
        raise UnknownUserError(f"user {user_id!r} has no memory; feedback needs a known user")
    item = catalog.get(item_id) if isinstance(item_id, str) else None
    if item is None:
        raise UnknownItemError(f"item {item_id!r} is not in the catalogue")
    behavior = feedback_behavior(user_id, item, signal, at, loc, config)
    [bid] = store.add([behavior])
    return StoredBehavior(id=bid, **{name: getattr(behavior, name) for name in Behavior.model_fields})
