"""What read calls return: retrieved behaviors with their score breakdown, and interest profiles.

All are pydantic models so the agent can dump them to JSON for prompts and logs; interest vectors are
numpy arrays that are left out of dumps (read the ``vector`` attribute to get them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema

from memory._models import StoredBehavior

__all__ = [
    "AttributeChange",
    "AttributeShare",
    "HorizonProfile",
    "PlaceCount",
    "Profile",
    "Retrieved",
    "ScoreComponents",
    "Vector",
]


def _to_vector(value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError("a vector must be 1-d")
    return arr


Vector = Annotated[
    np.ndarray,
    PlainValidator(_to_vector),
    PlainSerializer(lambda v: [float(x) for x in v], return_type=list[float]),
    WithJsonSchema({"type": "array", "items": {"type": "number"}}),
]


class ScoreComponents(BaseModel):
    """How a retrieved behavior's score was made (see ``memory._scoring``).

    Attributes:
        relevance: Cosine similarity to the query (−1..1).
        recency: Decay factor ``0.5 ** (age / half_life)`` (0..1].
        importance: The behavior's weight.
        relevance_norm: Min-max normalised relevance over the candidates (0..1).
        recency_norm: Min-max normalised recency (0..1).
        importance_norm: Min-max normalised importance (0..1).
        age_hours: Age at ``now`` in hours.
        hour_similarity: Circular hour-of-day similarity to the query context (0..1); ``None`` without one.
        weekday_similarity: Circular weekday similarity to the query context (0..1).
        distance_km: Great-circle distance to the query place (``None`` when either has no coordinates).
        place_similarity: ``exp(−distance / scale)`` (0.5 for a behavior without coordinates).
        context: The combined context factor (0..1].
        context_norm: Min-max normalised context factor (0..1).
    """

    model_config = ConfigDict(frozen=True)

    relevance: float
    recency: float
    importance: float
    relevance_norm: float
    recency_norm: float
    importance_norm: float
    age_hours: float
    hour_similarity: float | None = None
    weekday_similarity: float | None = None
    distance_km: float | None = None
    place_similarity: float | None = None
    context: float | None = None
    context_norm: float | None = None


class Retrieved(BaseModel):
    """One retrieval result.

    Attributes:
        behavior: The stored behavior.
        score: Combined score in ``[0, 1]`` (higher is better).
        components: The breakdown, when ``explain=True`` was asked.
    """

    model_config = ConfigDict(frozen=True)

    behavior: StoredBehavior
    score: float
    components: ScoreComponents | None = None


class AttributeShare(BaseModel):
    """An attribute value (e.g. a genre) and its share of a horizon's decayed mass (shares sum to 1)."""

    model_config = ConfigDict(frozen=True)

    name: str
    share: float


class AttributeChange(BaseModel):
    """How an attribute's share differs between horizons: ``delta = short_share − long_share``."""

    model_config = ConfigDict(frozen=True)

    name: str
    short_share: float
    long_share: float
    delta: float


class HorizonProfile(BaseModel):
    """A user's interests seen through one decay horizon.

    Attributes:
        half_life_days: The horizon's half-life.
        vector: Unit-norm decayed mean of behavior embeddings (``None`` without behaviors). Left out
            of ``model_dump``/``model_dump_json``; read the attribute.
        mass: Total decayed mass ``Σ weight · 0.5 ** (age / half_life)``.
        effective_n: Kish effective number of behaviors the mass rests on, ``(Σm)² / Σm²``.
        span_start: Oldest timestamp of the newest window that holds ``profile_mass_fraction`` of the mass.
        span_end: Newest timestamp with mass (the newest visible behavior).
        top_attributes: Attribute values with the largest share of the attribute mass, shares over all
            values summing to 1 (each behavior's mass is split equally over its values).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    half_life_days: float
    vector: Vector | None = Field(default=None, exclude=True, repr=False)
    mass: float = 0.0
    effective_n: float = 0.0
    span_start: datetime | None = None
    span_end: datetime | None = None
    top_attributes: list[AttributeShare] = Field(default_factory=list)


class PlaceCount(BaseModel):
    """A place the user acted at: its name (or rounded coordinates), count, and mean coordinates."""

    model_config = ConfigDict(frozen=True)

    place: str
    count: int
    lat: float | None = None
    lon: float | None = None


class Profile(BaseModel):
    """A user's short- and long-term interest profile as of a moment.

    Attributes:
        user_id: The user.
        as_of: The "now" it was computed for; behaviors after it are ignored.
        n_behaviors: Behaviors visible at ``as_of``.
        first_seen: Oldest visible behavior time.
        last_seen: Newest visible behavior time.
        short: Short horizon (``short_half_life_days``).
        long: Long horizon (``long_half_life_days``).
        drift: ``1 − cos(short.vector, long.vector)`` in ``[0, 2]``; 0 = interests unchanged. ``None``
            without behaviors.
        rising: Attributes whose short-horizon share exceeds the long one by more than
            ``profile_min_shift``, largest gain first.
        fading: Attributes whose short-horizon share is below the long one by more than
            ``profile_min_shift``, largest loss first.
        hour_of_day: Counts of visible behaviors per UTC hour (24 entries).
        day_of_week: Counts per UTC weekday, Monday first (7 entries).
        top_places: Most frequent places, when behaviors carry locations.
    """

    model_config = ConfigDict(frozen=True)

    user_id: str
    as_of: datetime
    n_behaviors: int
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    short: HorizonProfile
    long: HorizonProfile
    drift: float | None = None
    rising: list[AttributeChange] = Field(default_factory=list)
    fading: list[AttributeChange] = Field(default_factory=list)
    hour_of_day: list[int] = Field(default_factory=lambda: [0] * 24)
    day_of_week: list[int] = Field(default_factory=lambda: [0] * 7)
    top_places: list[PlaceCount] = Field(default_factory=list)
