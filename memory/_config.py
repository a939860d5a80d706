"""Configuration of the memory store: one pydantic object, validated once, dumped with results."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_RECENCY_HALF_LIFE_DAYS",
    "ContextWeights",
    "GENERATIVE_AGENTS_HALF_LIFE_HOURS",
    "MemoryConfig",
    "ScoringWeights",
]

# Generative Agents (Park et al. 2023) decays recency by 0.995 per hour: a half-life of ~138 hours.
GENERATIVE_AGENTS_HALF_LIFE_HOURS = math.log(0.5) / math.log(0.995)
# Interests in films, books and products move over weeks, not hours: a month halves the recency of a
# behavior, so last week's behaviors still clearly outrank last season's without erasing them.
DEFAULT_RECENCY_HALF_LIFE_DAYS = 30.0
# Profile horizons: "now" is roughly the last week; "long term" roughly the last half-year.
DEFAULT_SHORT_HALF_LIFE_DAYS = 7.0
DEFAULT_LONG_HALF_LIFE_DAYS = 180.0
# Enough recent behaviors to average out one odd click, few enough to still mean "now".
DEFAULT_CENTROID_WINDOW = 10
# Fits ~3,000 users × 100 behaviors of 384-d float32 vectors; the rest live on disk.
DEFAULT_CACHE_MAX_BYTES = 512 * 1024 * 1024

# Context weights (see memory._context): a weight w turns a similarity s into the factor exp(−w·(1 − s)).
# Hour 2: a behavior twelve hours off the query's hour keeps e^-2 ≈ 14 % of its mass, three hours off 86 %.
DEFAULT_CONTEXT_HOUR_WEIGHT = 2.0
# Weekday 1: habits are weekly too, but a weekday is a coarser signal than the hour (Tuesday ≈ Wednesday).
DEFAULT_CONTEXT_WEEKDAY_WEIGHT = 1.0
# Place 2 with a 1 km scale: at the query place 100 %, across town (10 km) e^-2 ≈ 14 %.
DEFAULT_CONTEXT_PLACE_WEIGHT = 2.0
# One neighbourhood: "at work" and "at home" are usually several km apart, a building is well under 1 km.
DEFAULT_CONTEXT_PLACE_SCALE_KM = 1.0
# In retrieval the context factor is a fourth min-max normalised component, as strong as relevance.
DEFAULT_CONTEXT_RETRIEVAL_WEIGHT = 1.0

NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
PositiveDays = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class ContextWeights(BaseModel):
    """How strongly a query's context (time of day, weekday, place) reweighs behaviors (``memory._context``).

    Only used when a call passes a :class:`~memory.QueryContext`; all weights 0 make every factor 1.

    Attributes:
        hour: Weight of the circular hour-of-day similarity.
        weekday: Weight of the circular weekday similarity.
        place: Weight of the place similarity ``exp(−distance / place_scale_km)``.
        place_scale_km: Distance (km) at which place similarity falls to 1/e.
        retrieval: Weight of the context factor as a component of ``retrieve``'s score (beside relevance,
            recency and importance); the profile multiplies masses by the factor and does not use it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    hour: NonNegative = DEFAULT_CONTEXT_HOUR_WEIGHT
    weekday: NonNegative = DEFAULT_CONTEXT_WEEKDAY_WEIGHT
    place: NonNegative = DEFAULT_CONTEXT_PLACE_WEIGHT
    place_scale_km: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = DEFAULT_CONTEXT_PLACE_SCALE_KM
    retrieval: NonNegative = DEFAULT_CONTEXT_RETRIEVAL_WEIGHT


class ScoringWeights(BaseModel):
    """Weights of the three normalised retrieval components (relevance, recency, importance).

    The score is ``(wr·relevance + wt·recency + wi·importance) / (wr + wt + wi)`` over min-max normalised
    components, so it lies in ``[0, 1]``. With ``recency=0`` and ``importance=0`` the ranking is exactly
    the similarity ranking.

    Attributes:
        relevance: Weight of cosine similarity to the query.
        recency: Weight of exponential time decay.
        importance: Weight of the behavior's ``weight``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    relevance: NonNegative = 1.0
    recency: NonNegative = 1.0
    importance: NonNegative = 1.0

    @model_validator(mode="after")
    def _some_weight(self) -> ScoringWeights:
        if self.relevance + self.recency + self.importance <= 0.0:
            raise ValueError("at least one scoring weight must be positive")
        return self


class MemoryConfig(BaseModel):
    """Everything tunable about a :class:`~memory.MemoryStore`.

    Attributes:
        weights: Retrieval scoring weights.
        recency_half_life_days: Half-life of the retrieval recency decay (days).
        short_half_life_days: Half-life of the profile's short horizon (days).
        long_half_life_days: Half-life of the profile's long horizon (days); must exceed the short one.
        centroid_window: How many most recent behaviors stand for "now" when ``retrieve`` gets no query.
        profile_top_attributes: How many attributes each profile horizon lists (and rising/fading lists).
        profile_top_places: How many places the profile lists.
        profile_min_shift: Smallest change of an attribute's share between the horizons (short minus long)
            that lists it as rising or fading; smaller differences are noise (e.g. when every behavior is
            recent, both horizons hold the same shares).
        profile_mass_fraction: A horizon's time span is the newest window holding this share of its mass.
        attribute_keys: Attribute names whose values (list of strings or one string) feed the profile's
            attribute shares; the first present key of a behavior is used.
        cache_max_bytes: Memory budget of the per-user index LRU; least recently used users are dropped
            (their index files stay on disk).
        embed_batch_size: Batch size passed to the embedder during ``add``.
        context: Weights of a query context (hour, weekday, place); used only by calls given a context.
        synchronous: SQLite ``synchronous`` level. ``FULL`` survives power loss; ``NORMAL`` (in WAL mode)
            survives process crashes only, and is faster.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: ScoringWeights = Field(default_factory=ScoringWeights)
    recency_half_life_days: PositiveDays = DEFAULT_RECENCY_HALF_LIFE_DAYS
    short_half_life_days: PositiveDays = DEFAULT_SHORT_HALF_LIFE_DAYS
    long_half_life_days: PositiveDays = DEFAULT_LONG_HALF_LIFE_DAYS
    centroid_window: Annotated[int, Field(ge=1, le=10_000)] = DEFAULT_CENTROID_WINDOW
    profile_top_attributes: Annotated[int, Field(ge=1, le=1000)] = 10
    profile_top_places: Annotated[int, Field(ge=0, le=1000)] = 5
    profile_mass_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    profile_min_shift: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    attribute_keys: tuple[str, ...] = ("genres", "categories")
    cache_max_bytes: Annotated[int, Field(ge=0)] = DEFAULT_CACHE_MAX_BYTES
    embed_batch_size: Annotated[int, Field(ge=1, le=65_536)] = 64
    synchronous: Literal["NORMAL", "FULL"] = "FULL"
    context: ContextWeights = Field(default_factory=ContextWeights)

    @model_validator(mode="after")
    def _horizons_ordered(self) -> MemoryConfig:
        if self.long_half_life_days <= self.short_half_life_days:
            raise ValueError("long_half_life_days must be greater than short_half_life_days")
        return self
