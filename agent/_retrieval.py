"""The retrieval stage: score the whole catalogue for each user, keep the top-N, fuse the LLM's choice back in.

Score of item i for a user (each component min-max normalised over the catalogue, so weights compare):

    retrieval_i = w_short · cos(i, short-term profile) + w_long · cos(i, long-term profile)
                + w_co · transitions_i + w_seq · sequential_i + w_llm · llm_i

``llm`` is the tuned LLM's item head (``agent._itemhead``): its logit for every item after the history.

The profiles are context-aware when the prediction has a query context (time of day, weekday, place; see
``memory._context``). Feedback read with the context rescales the scores (``agent._feedback``): disliked
items score ``-inf``, items close to them are demoted and items sharing a liked item's tags boosted, fading
with time.

Consumed items score ``-inf``; a user with no memory (cold start) gets catalogue popularity. The top-N
(``RetrievalConfig.n_candidates``) go to the re-ranking stage; :func:`fuse` mixes its choice probabilities
with the retrieval scores of those candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core import top_k

from ._candidates import CandidateSource, RetrievalConfig, TransitionIndex
from ._catalog import Catalog
from ._context import UserContext
from ._feedback import FeedbackConfig, feedback_adjustment
from ._schemas import RankedItem

__all__ = ["Retriever", "ScoredUser", "fuse", "minmax_rows", "top_finite"]


def minmax_rows(x: np.ndarray) -> np.ndarray:
    """Min-max normalise each row to [0, 1]; a constant row becomes zeros.

    The one normalisation of the agent: every retrieval component and both sides of the fusion use it.
    """
    x = np.asarray(x, dtype=np.float64)
    lo = x.min(axis=-1, keepdims=True)
    span = x.max(axis=-1, keepdims=True) - lo
    return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)


def top_finite(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` best finite scores, best first (ties keep index order)."""
    return [int(i) for i in top_k(scores, k)]


@dataclass(frozen=True)
class ScoredUser:
    """One user after the retrieval stage.

    Attributes:
        context: What was read from memory for this user (recent window, long-range behaviors, profile).
        retrieval: Retrieval score of every catalogue item, in catalogue order; consumed items are ``-inf``.
        candidates: Catalogue indices of the top-N items, best first: what the re-ranking stage sees.
    """

    context: UserContext
    retrieval: np.ndarray
    candidates: list[int]

    def top(self, k: int) -> list[int]:
        """Catalogue indices of the ``k`` best unconsumed items by retrieval alone (the memory-only ranking)."""
        return top_finite(self.retrieval, k)


class Retriever:
    """Scores the catalogue from memory profiles and candidate sources (see the module docstring)."""

    def __init__(self, catalog: Catalog, config: RetrievalConfig, transitions: TransitionIndex | None = None,
                 sequential: CandidateSource | None = None, feedback: FeedbackConfig | None = None,
                 llm: CandidateSource | None = None):
        self.catalog = catalog
        self.config = config
        self.transitions = transitions
        self.sequential = sequential
        self.llm = llm
        self.feedback = feedback or FeedbackConfig()

    def scores(self, ctxs: Sequence[UserContext]) -> np.ndarray:
        """Retrieval scores, one row per context, columns in catalogue order (consumed items = -inf)."""
        r = self.config
        n = len(self.catalog)
        total = np.zeros((len(ctxs), n))
        for row, ctx in enumerate(ctxs):
            if ctx.profile.short.vector is not None and r.w_short:
                total[row] += r.w_short * minmax_rows(self.catalog.similarity(ctx.profile.short.vector))
            if ctx.profile.long.vector is not None and r.w_long:
                total[row] += r.w_long * minmax_rows(self.catalog.similarity(ctx.profile.long.vector))
            if self.transitions is not None and r.w_co and ctx.history:
                total[row] += r.w_co * minmax_rows(self.transitions.score(ctx.history))
        for source, w in ((self.sequential, r.w_seq), (self.llm, r.w_llm)):
            live = [i for i, c in enumerate(ctxs) if c.history] if source is not None and w else []
            if live:
                seq = source.score_histories([ctxs[i].user_id for i in live],
                                             [ctxs[i].history for i in live], [ctxs[i].now for i in live])
                total[live] += w * minmax_rows(seq)
        for row, ctx in enumerate(ctxs):
            cols = [self.catalog.index[i] for i in ctx.exclude if i in self.catalog.index]
            total[row, cols] = -np.inf
            if ctx.cold:  # no memory: popularity, flagged by the caller
                pop = minmax_rows(self.catalog.popularity[None, :])[0]
                total[row] = np.where(np.isfinite(total[row]), pop, -np.inf)
            if ctx.feedback:  # disliked items never come back; their neighbourhood sinks for a while
                keep, boost, banned = feedback_adjustment(self.catalog, ctx.feedback, ctx.now, self.feedback)
                finite = np.isfinite(total[row])
                top = float(total[row][finite].max()) if finite.any() else 0.0
                total[row] = np.where(finite, total[row] * keep + boost * top, -np.inf)
                total[row, banned] = -np.inf
        return total

    def score(self, ctxs: Sequence[UserContext]) -> list[ScoredUser]:
        """Scores plus each user's top-N candidates."""
        scores = self.scores(ctxs)
        n = self.config.n_candidates
        return [ScoredUser(ctx, scores[row], top_finite(scores[row], n)) for row, ctx in enumerate(ctxs)]


def fuse(catalog: Catalog, s: ScoredUser, llm: np.ndarray | None, weight: float, k: int,
         reported: np.ndarray | None = None) -> list[RankedItem]:
    """Candidates re-ranked by (1-w)·minmax(retrieval) + w·minmax(llm); then the rest by retrieval.

    Items past the candidates keep their retrieval score minus 1, so scores stay ordered.

    Args:
        catalog: The catalogue ``s`` was scored over.
        s: One user's retrieval result.
        llm: The re-ranking stage's score of each candidate (in ``s.candidates`` order), or None.
        weight: ``w`` above.
        k: Items to return.
        reported: What each item reports as ``llm_prob`` (default: ``llm``).
    """
    cand = np.asarray(s.candidates, dtype=int)
    if len(cand) == 0:
        return []
    reported = llm if reported is None else reported
    retr = minmax_rows(s.retrieval[cand][None, :])[0]
    fused = retr if llm is None else (1 - weight) * retr + weight * minmax_rows(llm[None, :])[0]
    order = np.argsort(-fused, kind="stable")
    items = [RankedItem(item_id=catalog.items[cand[j]].item_id, title=catalog.items[cand[j]].title,
                        score=float(fused[j]), retrieval_score=float(s.retrieval[cand[j]]),
                        llm_prob=None if reported is None else float(reported[j])) for j in order[:k]]
    if k > len(items):
        for i in top_k(s.retrieval, k - len(items), exclude=cand):
            it = catalog.items[int(i)]
            items.append(RankedItem(item_id=it.item_id, title=it.title, score=float(s.retrieval[i]) - 1.0,
                                    retrieval_score=float(s.retrieval[i])))
    return items
