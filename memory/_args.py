"""Checks of the arguments of ``MemoryStore``'s read and delete calls: each bad one is an :class:`InvalidQueryError`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import ValidationError

from memory._config import MemoryConfig, ScoringWeights
from memory._context import QueryContext
from memory._errors import InvalidQueryError
from memory._time import require_aware, to_us, utc_now

__all__ = ["MAX_K", "QUERY_SETTINGS", "check_context", "check_count", "check_ids", "check_now", "check_user_id",
           "check_weights", "optional_us", "reconfigured"]

# Sanity bound for k and exclude_recent (callers pass count(user) to read a whole history); larger values
# are almost certainly a unit bug (e.g. a timestamp passed as k).
MAX_K = 10_000_000
# Settings read only when answering queries; changing them leaves stored data and indexes valid.
QUERY_SETTINGS = frozenset({
    "weights", "recency_half_life_days", "short_half_life_days", "long_half_life_days", "centroid_window",
    "profile_top_attributes", "profile_top_places", "profile_mass_fraction", "profile_min_shift", "context",
})


def check_user_id(user_id: object) -> str:
    """A user id: a string of 1–128 characters."""
    if not isinstance(user_id, str) or not 1 <= len(user_id) <= 128:
        raise InvalidQueryError("must be a string of 1–128 characters", argument="user_id")
    return user_id


def check_count(value: object, argument: str) -> int:
    """A count such as ``k``: an integer in ``0..MAX_K`` (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= int(value) <= MAX_K:
        raise InvalidQueryError(f"must be an integer 0–{MAX_K}, got {value!r}", argument=argument)
    return int(value)


def check_ids(ids: Iterable[int] | None) -> list[int] | None:
    """Behavior ids as a list of Python ints (``None`` stays ``None``)."""
    if ids is None:
        return None
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise InvalidQueryError("must be an iterable of integer ids", argument="ids")
    id_list = list(ids)
    if any(isinstance(i, bool) or not isinstance(i, int | np.integer) for i in id_list):
        raise InvalidQueryError("must be an iterable of integer ids", argument="ids")
    return [int(i) for i in id_list]


def optional_us(moment: datetime | None, argument: str) -> int | None:
    """A tz-aware bound as UTC microseconds (``None``: no bound)."""
    return None if moment is None else to_us(require_aware(moment, argument))


def check_now(now: datetime | None) -> datetime:
    """The "as of" moment: tz-aware, or wall-clock UTC now for ``None``."""
    return utc_now() if now is None else require_aware(now, "now")


def check_weights(weights: ScoringWeights | None, default: ScoringWeights) -> ScoringWeights:
    """Per-call scoring weights, or ``default`` for ``None``."""
    if weights is None:
        return default
    if not isinstance(weights, ScoringWeights):
        raise InvalidQueryError("must be a ScoringWeights", argument="weights")
    return weights


def check_context(context: QueryContext | None) -> QueryContext | None:
    """A :class:`QueryContext` or ``None``."""
    if context is not None and not isinstance(context, QueryContext):
        raise InvalidQueryError("must be a QueryContext or None", argument="context")
    return context


def reconfigured(config: MemoryConfig, changes: Mapping[str, Any], allowed: frozenset[str]) -> MemoryConfig:
    """``config`` with ``changes`` applied, if every changed setting is in ``allowed`` and the result validates."""
    bad = sorted(set(changes) - allowed)
    if bad:
        raise InvalidQueryError(f"cannot change on an open store (allowed: {', '.join(sorted(allowed))})",
                                argument=", ".join(bad))
    try:
        return MemoryConfig.model_validate({**config.model_dump(), **changes})
    except ValidationError as exc:
        raise InvalidQueryError(str(exc), argument=", ".join(sorted(changes))) from exc
