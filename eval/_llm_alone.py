"""``llm``: the tuned LLM alone as a sequential recommender (the item-head model over the whole catalogue).

The agent fuses this model's scores with the memory's retrieval; this row shows what the LLM does on its
own, on the same users, so a reader can tell whether a fused gain (or its absence) comes from the LLM's
own ranking. No memory, no engine, no fusion: the last ``window`` items' titles go through the tuned model
and its head scores every catalogue item (``agent.ItemHeadScorer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from eval._errors import NotFittedError
from eval._protocol import Ranking, RankRequest, top_k_excluding
from eval._split import Split

__all__ = ["ItemHeadPredictor"]


class ItemHeadModelRef(BaseModel):
    """The model a run used, for provenance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = "item-head"
    folder: str
    key: str | None = None


class ItemHeadPredictor:
    """Ranks the catalogue by an item-head model folder's logits after each request's history.

    Args:
        folder: The item-head model (tuned on the split's training sequences only; ``tide model tune``).
        titles: item id -> title, the catalogue the model reads.
        name: The model's name in the results.
    """

    def __init__(self, folder: Path, titles: dict[str, str], name: str = "llm"):
        self.name = name
        self.folder = Path(folder)
        self._titles = dict(titles)
        self._scorer: Any = None
        self._source: Any = None
        self._item_ids: list[str] = []
        self._index: dict[str, int] = {}

    @property
    def config(self) -> ItemHeadModelRef:
        """What the results record about this model."""
        key = self._scorer.manifest.get("key") if self._scorer is not None else None
        return ItemHeadModelRef(folder=str(self.folder), key=key)

    def fit(self, split: Split) -> None:
        """Load the model (it was tuned beforehand on ``split.train``; nothing is trained here)."""
        from agent import CatalogScores, ItemHeadScorer
        from eval._branch import branch_from_manifest

        self._item_ids = list(split.item_ids)
        self._index = {item: i for i, item in enumerate(self._item_ids)}
        self._scorer = ItemHeadScorer(self.folder, self._titles, branch=branch_from_manifest(self.folder))
        self._source = CatalogScores(self._scorer, self._item_ids)

    def score_all(self, requests: Sequence[RankRequest]) -> np.ndarray:
        """``(len(requests), n_items)`` logits in catalogue order; exclusions not applied."""
        if self._source is None:
            raise NotFittedError("ItemHeadPredictor.fit was not called")
        return self._source.score_histories([r.user_id for r in requests], [list(r.history) for r in requests],
                                            [r.now for r in requests])

    def rank(self, requests: Sequence[RankRequest], k: int) -> list[Ranking]:
        """Top ``k`` unconsumed items by the model's logits."""
        return top_k_excluding(self.score_all(requests), requests, self._item_ids, self._index, k)
