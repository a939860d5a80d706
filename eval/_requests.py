"""A next-item question to a predictor and its answer (the types ``Predictor.rank`` speaks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RankRequest", "Ranking"]


@dataclass(frozen=True, slots=True)
class RankRequest:
    """One user's next-item question.

    Attributes:
        user_id: The user.
        history: Item ids the user consumed before ``now``, chronological (nothing at/after the target).
        history_timestamps: Epoch seconds (UTC) of ``history``.
        now: Epoch seconds of the target event; the prediction is "what next, at this time".
        exclude: Items that must not appear in the ranking (the ones already consumed).
    """

    user_id: str
    history: Sequence[str]
    history_timestamps: Sequence[int]
    now: int
    exclude: frozenset[str] = frozenset()


@dataclass(slots=True)
class Ranking:
    """A predictor's answer to one request.

    Attributes:
        item_ids: At most ``k`` item ids, best first, none of them in ``request.exclude``.
        scores: One score per item id (higher is better; scales differ between predictors).
        info: Optional extras. Keys the harness reads: ``valid`` (bool, False when the predictor fell back
            because its own output was unusable, counted in the valid-output rate) and ``interests``
            (list of category names the predictor believes the user wants, used for interest-level F1).
    """

    item_ids: list[str]
    scores: list[float]
    info: dict[str, Any] = field(default_factory=dict)
