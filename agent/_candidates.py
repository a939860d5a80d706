"""Sources of the candidate stage (see ``_retrieval``): its weights and the collaborative evidence.

``transitions`` are item-to-item successions counted in other users' histories (the item that followed
each of the user's recent items, nearer successors and more recent anchors weighing more); ``sequential``
is any :class:`CandidateSource` (e.g. the evaluation harness's LSTM). Already-consumed items are removed
afterwards. The top-N go to the LLM; report the stage's recall@N, since the LLM only ranks what it sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CandidateSource", "RetrievalConfig", "TransitionIndex"]

#: successors within this many steps count; the next item counts fully, later ones 1/distance
TRANSITION_WINDOW = 3
#: each older anchor item counts this much less than the one after it
ANCHOR_DECAY = 0.7
#: how many of the user's most recent items anchor the transition score
ANCHORS = 5


class RetrievalConfig(BaseModel):
    """Weights of the candidate stage (tunable on validation data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    w_short: float = Field(default=1.0, ge=0)
    w_long: float = Field(default=0.5, ge=0)
    w_co: float = Field(default=2.0, ge=0)
    w_seq: float = Field(default=2.0, ge=0)
    #: the tuned LLM's item head over the whole catalogue (``InterestAgent.with_item_head``; ignored without
    #: one): 0.5, the main job's validation choice (with fusion weight 0.25: +0.013 NDCG@10, p 0.015)
    w_llm: float = Field(default=0.5, ge=0)
    #: candidates the LLM re-ranks (the rest follow in retrieval order): 15, chosen on validation (ranking and
    #: interests, scripts/prompt_budget.py); at most 20 letters
    n_candidates: int = Field(default=15, ge=1, le=20)


@runtime_checkable
class CandidateSource(Protocol):
    """Any sequential model used as a retriever: scores every catalog item (columns in catalog order)."""

    def score_histories(self, user_ids: Sequence[str], histories: Sequence[Sequence[str]],
                        nows: Sequence[datetime]) -> np.ndarray: ...


class TransitionIndex:
    """Item-to-item successions from many users' chronological histories (a sparse count matrix)."""

    def __init__(self, matrix, index: Mapping[str, int]):
        self.matrix = matrix
        self.index = dict(index)

    @classmethod
    def fit(cls, sequences: Mapping[str, Sequence[str]] | Sequence[Sequence[str]],
            index: Mapping[str, int]) -> TransitionIndex:
        """Count successions; rows are normalised to sum 1 (P(next | item))."""
        from scipy.sparse import csr_matrix

        seqs = sequences.values() if isinstance(sequences, Mapping) else sequences
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for seq in seqs:
            ids = [index[i] for i in seq if i in index]
            for pos, a in enumerate(ids):
                for d in range(1, TRANSITION_WINDOW + 1):
                    if pos + d >= len(ids):
                        break
                    rows.append(a)
                    cols.append(ids[pos + d])
                    vals.append(1.0 / d)
        n = len(index)
        m = csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float64)
        m.sum_duplicates()
        totals = np.asarray(m.sum(axis=1)).ravel()
        totals[totals == 0] = 1.0
        m = csr_matrix(m.multiply(1.0 / totals[:, None]))
        return cls(m, index)

    def score(self, history: Sequence[str]) -> np.ndarray:
        """Scores of every item as the next one after ``history`` (chronological)."""
        out = np.zeros(self.matrix.shape[0])
        anchors = [self.index[i] for i in reversed(history) if i in self.index][:ANCHORS]
        for j, a in enumerate(anchors):
            row = self.matrix.getrow(a)
            out[row.indices] += (ANCHOR_DECAY ** j) * row.data
        return out

