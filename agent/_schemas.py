"""What the agent returns, and the bounded schemas the LLM writes into.

Every field is bounded (lengths, item counts, enums, discrete confidence levels) so constrained decoding
cannot loop, and so callers can rely on sizes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

__all__ = [
    "ChatReply",
    "Confidence",
    "Drift",
    "Horizon",
    "Interest",
    "InterestPrediction",
    "InterestSummary",
    "Provenance",
    "RankedItem",
    "SummaryFacts",
    "interest_output_model",
    "grounded_interest_model",
    "summary_output_model",
]

Confidence = Literal["low", "medium", "high"]
Horizon = Literal["short", "long"]
#: interests the LLM may name per prediction, evidence items per interest
MAX_INTERESTS = 3
MAX_EVIDENCE = 3
SUMMARY_MIN_CHARS = 40
SUMMARY_MAX_CHARS = 500


class Interest(BaseModel):
    """One predicted interest."""

    model_config = ConfigDict(frozen=True)

    label: str = Field(min_length=1, max_length=60, description="a taxonomy category (or bounded free label)")
    confidence: Confidence
    horizon: Horizon
    evidence: list[int] = Field(default_factory=list, max_length=MAX_EVIDENCE,
                                description="ids of the memory behaviors it rests on")


class RankedItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str = Field(max_length=128)
    title: str = Field(max_length=300)
    score: float
    retrieval_score: float
    llm_prob: float | None = None


class Drift(BaseModel):
    """How far short-term interests are from long-term ones."""

    model_config = ConfigDict(frozen=True)

    score: float | None = Field(default=None, ge=0, le=2, description="1 - cos(short, long)")
    rising: list[str] = Field(default_factory=list, max_length=5)
    fading: list[str] = Field(default_factory=list, max_length=5)


class Provenance(BaseModel):
    """How a result was produced."""

    engine: dict[str, Any] = Field(default_factory=dict)
    model: str | None = None
    #: the tuned model's facts (name, key, base, data fingerprint, validation metrics) when the engine serves
    #: a folder made by ``tide model tune``; None for an untuned model
    tuned: dict[str, Any] | None = None
    templates: dict[str, str] = Field(default_factory=dict)
    retrieval: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 0
    cold_start: bool = False
    fallback: str | None = Field(default=None, description="why a non-LLM path was used, if it was")
    reasons: list[str] = Field(default_factory=list, max_length=10)
    #: what grounding changed in the LLM's answer to agree with the memory profile (one line per interest)
    corrections: list[str] = Field(default_factory=list, max_length=10)


class InterestPrediction(BaseModel):
    user_id: str
    as_of: datetime
    interests: list[Interest] = Field(default_factory=list, max_length=MAX_INTERESTS)
    next_items: list[RankedItem] = Field(default_factory=list, max_length=200)
    drift: Drift
    provenance: Provenance


class SummaryFacts(BaseModel):
    """The numbers a summary is written from (computed from memory, not by the LLM)."""

    n_behaviors: int
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    short_top: list[tuple[str, float]] = Field(default_factory=list, max_length=5)
    long_top: list[tuple[str, float]] = Field(default_factory=list, max_length=5)
    short_span: tuple[datetime | None, datetime | None] = (None, None)
    long_span: tuple[datetime | None, datetime | None] = (None, None)
    rising: list[str] = Field(default_factory=list, max_length=5)
    fading: list[str] = Field(default_factory=list, max_length=5)
    drift: float | None = None
    places: list[str] = Field(default_factory=list, max_length=5)
    peak_hours: list[int] = Field(default_factory=list, max_length=3)
    peak_days: list[str] = Field(default_factory=list, max_length=3)


class InterestSummary(BaseModel):
    user_id: str
    as_of: datetime
    text: str = Field(max_length=2000)
    facts: SummaryFacts
    generated_by: Literal["llm", "template"]
    provenance: Provenance


class ChatReply(BaseModel):
    text: str = Field(max_length=4000)
    evidence: list[int] = Field(default_factory=list, max_length=20)
    provenance: Provenance


def interest_output_model(taxonomy: Sequence[str], n_evidence: int) -> type[BaseModel]:
    """The schema the LLM fills for interests: labels from the taxonomy, evidence as behavior numbers.

    Evidence numbers are the ``[n]`` the prompt shows (1..n_evidence); the agent maps them to ids.
    """
    return _interest_output_model(tuple(taxonomy), n_evidence)


@functools.lru_cache(maxsize=4096)  # one class per (label set, evidence count); users share them
def _interest_output_model(taxonomy: tuple[str, ...], n_evidence: int) -> type[BaseModel]:
    label_t: Any = Literal[tuple(taxonomy)] if taxonomy else str  # type: ignore[valid-type]
    ev_t: Any = Literal[tuple(range(1, max(1, n_evidence) + 1))]  # type: ignore[valid-type]
    item = create_model(
        "LLMInterest",
        __config__=ConfigDict(extra="forbid"),
        label=(label_t, Field(max_length=60) if label_t is str else ...),
        confidence=(Confidence, ...),
        horizon=(Horizon, ...),
        evidence=(list[ev_t], Field(min_length=1, max_length=MAX_EVIDENCE)),
    )
    return create_model(
        "LLMInterests",
        __config__=ConfigDict(extra="forbid"),
        interests=(list[item], Field(min_length=1, max_length=MAX_INTERESTS)),  # type: ignore[valid-type]
    )


def grounded_interest_model(support: Sequence[tuple[str, Sequence[int]]]) -> type[BaseModel]:
    """The interest schema with evidence grounded by construction: each label may cite only the behavior
    numbers that carry it (``support``: label -> those numbers, in the prompt's order).

    The JSON schema is a union with one branch per label, so constrained decoding cannot pair a label with a
    behavior that does not show it.
    """
    return _grounded_interest_model(tuple((label, tuple(ids)) for label, ids in support))


@functools.lru_cache(maxsize=4096)
def _grounded_interest_model(support: tuple[tuple[str, tuple[int, ...]], ...]) -> type[BaseModel]:
    if not support or any(not ids for _, ids in support):
        raise ValueError("every label needs at least one supporting behavior")
    branches = []
    for n, (label, ids) in enumerate(support):
        ev_t: Any = Literal[ids]  # type: ignore[valid-type]
        branches.append(create_model(
            f"LLMInterest{n}",
            __config__=ConfigDict(extra="forbid"),
            label=(Literal[label], ...),  # type: ignore[valid-type]
            confidence=(Confidence, ...),
            horizon=(Horizon, ...),
            evidence=(list[ev_t], Field(min_length=1, max_length=MAX_EVIDENCE)),
        ))
    item: Any = Union[tuple(branches)] if len(branches) > 1 else branches[0]  # noqa: UP007
    return create_model(
        "LLMGroundedInterests",
        __config__=ConfigDict(extra="forbid"),
        interests=(list[item], Field(min_length=1, max_length=MAX_INTERESTS)),
    )


def summary_output_model() -> type[BaseModel]:
    return create_model(
        "LLMSummary",
        __config__=ConfigDict(extra="forbid"),
        summary=(str, Field(min_length=SUMMARY_MIN_CHARS, max_length=SUMMARY_MAX_CHARS)),
    )
