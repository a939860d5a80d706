"""Most-popular baseline: rank unconsumed items by how often they occur in the training data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from core import item_counts
from eval._errors import NotFittedError
from eval._protocol import Ranking, RankRequest, top_k_excluding
from eval._split import Split

__all__ = ["PopularityConfig", "PopularityPredictor"]


class PopularityConfig(BaseModel):
    """Popularity has no knobs; the config records what it is for provenance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = "popularity"
    counts_from: str = "train"


class PopularityPredictor:
    """Ranks items by their count in ``split.train`` (validation and test targets are not counted).

    Ties are broken by catalogue order.
    """

    def __init__(self, name: str = "pop") -> None:
        self.name = name
        self.config = PopularityConfig()
        self._counts: np.ndarray | None = None
        self._item_ids: list[str] = []
        self._index: dict[str, int] = {}

    def fit(self, split: Split) -> None:
        """Count training occurrences of every catalogue item."""
        self._item_ids = list(split.item_ids)
        self._index = {item: i for i, item in enumerate(self._item_ids)}
        self._counts = item_counts(split.train.values(), self._index)

    @property
    def counts(self) -> dict[str, int]:
        """Training count per item id."""
        if self._counts is None:
            raise NotFittedError("PopularityPredictor.fit was not called")
        return {item: int(c) for item, c in zip(self._item_ids, self._counts, strict=True)}

    def score_all(self, requests: Sequence[RankRequest]) -> np.ndarray:
        """The same count vector for every request."""
        if self._counts is None:
            raise NotFittedError("PopularityPredictor.fit was not called")
        return np.broadcast_to(self._counts, (len(requests), len(self._counts)))

    def rank(self, requests: Sequence[RankRequest], k: int) -> list[Ranking]:
        """Most popular unconsumed items first."""
        return top_k_excluding(self.score_all(requests), requests, self._item_ids, self._index, k)
