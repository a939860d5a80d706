"""What the harness consumes: the ``Predictor`` protocol, its optional capabilities and request/response types.

A predictor needs only ``name``, ``fit`` and ``rank`` (its request and answer types live in ``_requests``).
The runner uses more when a predictor has it, checked with ``isinstance`` against these runtime-checkable
protocols: ``Tunable`` (a validation grid), ``FullScorer`` (exact sampled-negative metrics), ``StageAware``
(told whether it answers validation or test requests) and ``LLMTimed`` (reports the seconds its LLM took).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from core import top_k
from eval._requests import Ranking, RankRequest

if TYPE_CHECKING:
    from eval._split import Split

__all__ = [
    "FullScorer",
    "LLMTimed",
    "Predictor",
    "RankRequest",
    "Ranking",
    "StageAware",
    "Tunable",
    "top_k_excluding",
]


@runtime_checkable
class Predictor(Protocol):
    """A next-item model the harness can fit and query.

    ``fit`` sees only ``split.train`` / ``split.train_timestamps`` (and may use ``split.val`` for early
    stopping); ``rank`` answers a batch of requests.
    """

    name: str

    def fit(self, split: Split) -> None:
        """Train on the split's training data."""
        ...

    def rank(self, requests: Sequence[RankRequest], k: int) -> list[Ranking]:
        """Return one ranking of at most ``k`` items per request, in request order."""
        ...


@runtime_checkable
class Tunable(Protocol):
    """A predictor with hyper-parameters the runner may pick on validation targets.

    ``tunable`` maps parameter names to the values to try (a grid); ``set_params`` applies one setting
    without refitting (for example a fusion weight or a decay half-life).

    A predictor may also carry ``tune_reference`` (a dict, one point of the grid): the setting the runner
    keeps unless the best one beats it on the validation targets with paired bootstrap and Wilcoxon
    p < ``EvalConfig.tune_alpha`` (for a component that must earn its place, such as the agent's LLM weight).
    """

    tunable: dict[str, list[Any]]

    def set_params(self, **params: Any) -> None:
        """Apply one setting of the grid."""
        ...


@runtime_checkable
class FullScorer(Protocol):
    """A predictor that can score the whole catalogue (columns in ``split.item_ids`` order).

    The runner uses it for exact sampled-negative metrics; the agent uses the LSTM's as a retriever.
    """

    def score_all(self, requests: Sequence[RankRequest]) -> np.ndarray:
        """Return a ``(len(requests), n_items)`` float array of scores; exclusions are not applied."""
        ...


@runtime_checkable
class StageAware(Protocol):
    """A predictor the runner tells which targets it answers next, so it can skip work that validation
    metrics never read (the agent generates interests only for test requests)."""

    def set_stage(self, stage: Literal["val", "test"], targets: Mapping[str, str] | None = None) -> None:
        """Called before the validation grid (``"val"``, with each validation user's target item) and
        before test ranking (``"test"``, no targets).

        A predictor may read ``targets`` only to skip work that cannot change a target's rank under any
        setting of its grid (the agent's LLM re-orders only its candidates: a target outside them keeps
        its rank, so its prompt is not sent); the target's rank must be what full work would give.
        """
        ...


@runtime_checkable
class LLMTimed(Protocol):
    """A predictor that reports the wall seconds its LLM calls took (a part of its ``rank`` time)."""

    llm_seconds: float


def top_k_excluding(
    scores: np.ndarray, requests: Sequence[RankRequest], item_ids: Sequence[str], index: dict[str, int], k: int
) -> list[Ranking]:
    """Turn a score matrix into rankings, removing each request's excluded items.

    Ties are broken by catalogue order (a stable sort), so rankings are deterministic.

    Args:
        scores: ``(n_requests, n_items)`` scores, columns in ``item_ids`` order.
        requests: The requests (for their ``exclude`` sets).
        item_ids: The catalogue.
        index: ``item_id -> column``.
        k: Ranking length.

    Returns:
        One ``Ranking`` per request.
    """
    rankings = []
    for row, request in zip(np.asarray(scores), requests, strict=True):
        top = top_k(row, k, exclude=[index[i] for i in request.exclude if i in index])
        rankings.append(Ranking([item_ids[c] for c in top], [float(row[c]) for c in top]))
    return rankings
