"""The interest agent: memory, then three stages composed.

1. **retrieval** (``_retrieval``): score the whole catalogue from the user's memory profile and candidate
   sources, keep the top-N;
2. **re-ranking** (``_rerank``): the LLM chooses among the candidates (one letter), optionally calibrated and
   averaged over several orders; its probabilities are fused with the retrieval scores;
3. **interests** (``_interests``): grounded labels, constrained generation, repeated labels merged.

One batch of predictions (the stages' results joined, fallbacks, provenance) is ``_predict``; summaries and
chat turns (``_summary``), feedback (``_feedback``) and free tags (``_free_tags``) live in their
own modules; the methods here only gather the user's context and delegate.

The agent is immutable in its settings: :meth:`InterestAgent.with_config` returns a new agent sharing the
store, catalogue, engine, candidate sources and caches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel
from tqdm.auto import tqdm

from memory import MemoryStore, QueryContext, StoredBehavior

from ._candidates import CandidateSource, TransitionIndex
from ._catalog import Catalog
from ._config import AgentConfig
from ._context import UserContext, load_context, query_context
from ._engine import GenerationRequest, LLMEngine, Message
from ._errors import EngineUnavailableError, UnknownUserError
from ._feedback import record_feedback
from ._free_tags import FreeTag, FreeTagConfig, user_free_tags
from ._interests import (
    InterestWriter,
    ground_interests,
    interests_from_answer,
    interests_from_profile,
    render_interest_prompt,
)
from ._itemhead import CatalogScores, ItemHeadScorer
from ._itemhead_interests import interests_from_next_items
from ._predict import predict_batch
from ._rerank import ChoiceProbs, Reranker
from ._retrieval import Retriever, ScoredUser, fuse
from ._schemas import ChatReply, Interest, InterestPrediction, InterestSummary, RankedItem
from ._summary import chat_reply, summarize_batch

__all__ = ["InterestAgent"]

log = logging.getLogger(__name__)
_KEEP: Any = object()  # "leave as is" for optional arguments where None is a value


class InterestAgent:
    """Predict what a user will want next, summarise their interests, answer questions about them.

    Args:
        store: The users' memory.
        catalog: The items that can be recommended.
        engine: The LLM (None: retrieval and template summaries only).
        config: Settings (immutable; :meth:`with_config` derives an agent with others).
        transitions: Collaborative item-to-item evidence for retrieval.
        sequential: A sequential model used as a retriever.
        choice_priors: Cache of the engine's content-free choice priors; agents on one engine may share it.
    """

    def __init__(self, store: MemoryStore, catalog: Catalog, engine: LLMEngine | None, config: AgentConfig,
                 transitions: TransitionIndex | None = None, sequential: CandidateSource | None = None, *,
                 choice_priors: dict[int, np.ndarray] | None = None, item_head: ItemHeadScorer | None = None):
        self.store = store
        self.catalog = catalog
        self.engine = engine
        self._config = config
        llm = CatalogScores(item_head, [it.item_id for it in catalog.items]) if item_head is not None else None
        self.retriever = Retriever(catalog, config.retrieval, transitions, sequential, config.feedback, llm=llm)
        self.reranker = Reranker(catalog, engine, calibrate=config.calibrate, orders=config.choice_orders,
                                 priors=choice_priors, item_head=item_head)
        self.interest_writer = InterestWriter(catalog, engine, store.config.attribute_keys,
                                              max_labels=config.interest_labels,
                                              max_tokens=config.interest_max_tokens, attempts=config.attempts)

    @classmethod
    def from_defaults(cls, store: MemoryStore, catalog: Catalog, engine_url: str | None = None, *,
                      engine: LLMEngine | None = None, config: AgentConfig | None = None,
                      transitions: TransitionIndex | None = None,
                      sequential: CandidateSource | None = None,
                      item_head: ItemHeadScorer | None = None) -> InterestAgent:
        """An agent on the embedded vLLM engine, or on a ``vllm serve`` at ``engine_url``.

        Collaborative transitions are learnt from every user's history in ``store`` unless given. With an
        ``item_head`` (see :meth:`with_item_head`) and neither ``engine`` nor ``engine_url``, no engine is
        started: the item head ranks and, by default, states the interests (summaries and chat need one).
        """
        if engine is None and (item_head is None or engine_url is not None):
            from ._engines import make_engine

            engine = make_engine(engine_url)
        if transitions is None:
            seqs = {}
            for u in store.users():
                items = store.recent(u, k=max(1, store.count(u)))
                seqs[u] = [b.item_id for b in reversed(items) if b.item_id]
            transitions = TransitionIndex.fit(seqs, catalog.index)
        return cls(store, catalog, engine, config or AgentConfig(), transitions, sequential, item_head=item_head)

    @property
    def config(self) -> AgentConfig:
        return self._config

    @property
    def transitions(self) -> TransitionIndex | None:
        return self.retriever.transitions

    @property
    def sequential(self) -> CandidateSource | None:
        return self.retriever.sequential

    def with_config(self, config: AgentConfig | None = None, /, **updates: Any) -> InterestAgent:
        """A new agent with ``config``, or with this agent's config plus ``updates`` (see
        :meth:`AgentConfig.updated`); it shares the store, catalogue, engine, candidate sources and the
        choice-prior cache. This agent is unchanged.

        Raises:
            pydantic.ValidationError: An unknown setting or a value out of range.
        """
        new = (config or self._config).updated(**updates) if updates else (config or self._config)
        return self._derive(new, self.transitions, self.sequential)

    def with_sources(self, *, transitions: TransitionIndex | None = _KEEP,
                     sequential: CandidateSource | None = _KEEP) -> InterestAgent:
        """A new agent with other candidate sources for retrieval (None removes one), sharing the rest."""
        return self._derive(self._config, self.transitions if transitions is _KEEP else transitions,
                            self.sequential if sequential is _KEEP else sequential)

    def _derive(self, config: AgentConfig, transitions: TransitionIndex | None,
                sequential: CandidateSource | None) -> InterestAgent:
        # same engine, so the content-free priors stay valid
        return InterestAgent(self.store, self.catalog, self.engine, config, transitions, sequential,
                             choice_priors=self.reranker.priors, item_head=self.reranker.item_head)

    @property
    def item_head(self) -> ItemHeadScorer | None:
        """The tuned item-head model that scores the candidates, if any (else the engine's letter choice)."""
        return self.reranker.item_head

    def with_item_head(self, item_head: ItemHeadScorer | None) -> InterestAgent:
        """A new agent whose candidates are scored by ``item_head`` (None: by the engine's letter choice), and
        whose candidate stage reads its logits over the whole catalogue with weight ``retrieval.w_llm``; it
        shares the rest."""
        return InterestAgent(self.store, self.catalog, self.engine, self._config, self.transitions,
                             self.sequential, choice_priors=self.reranker.priors, item_head=item_head)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()

    # -- retrieval ---------------------------------------------------------------------------------
    def contexts(self, user_ids: Sequence[str], nows: Sequence[datetime | None],
                 histories: Sequence[Sequence[str] | None] | None = None,
                 excludes: Sequence[Sequence[str] | None] | None = None,
                 queries: Sequence[QueryContext | None] | None = None) -> list[UserContext]:
        """What each user's prediction reads from memory (see :func:`load_context`); ``queries`` are the
        predictions' contexts (time of day, weekday, place), None for none."""
        c = self._config
        return [
            load_context(self.store, u, now, c.n_recent, c.n_long,
                         histories[i] if histories else None, excludes[i] if excludes else None,
                         queries[i] if queries else None)
            for i, (u, now) in enumerate(zip(user_ids, nows, strict=True))
        ]

    def retrieval_scores(self, ctxs: Sequence[UserContext]) -> np.ndarray:
        """Candidate-stage scores over the whole catalog (consumed items = -inf); memory-only ranking."""
        return self.retriever.scores(ctxs)

    def score_candidates(self, user_ids: Sequence[str], nows: Sequence[datetime | None] | None = None, *,
                         histories: Sequence[Sequence[str] | None] | None = None,
                         excludes: Sequence[Sequence[str] | None] | None = None,
                         queries: Sequence[QueryContext | None] | None = None) -> list[ScoredUser]:
        """The retrieval stage for each user: memory read, catalogue scored, top-N candidates kept.

        Args:
            user_ids: The users.
            nows: Time of each prediction (None: as of the user's newest behavior); default all None.
            histories: Consumed item ids per user, chronological (default: read from memory).
            excludes: Items that may not be recommended per user (default: the history).
            queries: Each prediction's context (``memory.QueryContext``: time of day, weekday, place) or
                None; default none (the context-free ranking, exactly).

        Returns:
            One :class:`ScoredUser` per user, in order; pass them to :meth:`choice_probs`,
            :meth:`llm_interests` and :meth:`fuse`.
        """
        nows = list(nows) if nows is not None else [None] * len(user_ids)
        return self.retriever.score(self.contexts(user_ids, nows, histories, excludes, queries))

    # -- re-ranking --------------------------------------------------------------------------------
    def choice_prompt(self, s: ScoredUser, order: Sequence[int] | None = None) -> str:
        """The choice prompt of ``s``, its candidates shown in ``order`` (indices into ``s.candidates``;
        default their own order)."""
        return self.reranker.prompt(s, order)

    def choice_probs(self, scored: Sequence[ScoredUser]) -> list[ChoiceProbs | None]:
        """The LLM's choice probabilities for each user's candidates (None for cold users or a single
        candidate), in ``config.choice_orders`` orders.

        Raises:
            EngineError: The engine failed.
        """
        return self.reranker.choice_probs(scored)

    def choice_prior(self, n: int) -> np.ndarray:
        """The engine's probabilities for the first ``n`` letters on a content-free prompt (cached)."""
        return self.reranker.choice_prior(n)

    def fuse(self, s: ScoredUser, choice: ChoiceProbs | None, k: int, weight: float | None = None
             ) -> list[RankedItem]:
        """The ranked items: candidates by (1-w)·minmax(retrieval) + w·minmax(choice probability), then the
        rest by retrieval. The choice probability is calibrated when ``config.calibrate`` (and w > 0);
        ``llm_prob`` reports it uncalibrated."""
        w = self._config.fusion_weight if weight is None else weight
        if choice is None:
            return fuse(self.catalog, s, None, w, k)
        raw = choice.per_candidate()
        calibrate = self._config.calibrate and w > 0 and self.reranker.item_head is None  # no letters to calibrate
        llm = choice.per_candidate(self.choice_prior(len(s.candidates))) if calibrate else raw
        return fuse(self.catalog, s, llm, w, k, reported=raw)

    # -- interests ---------------------------------------------------------------------------------
    def interest_prompt(self, ctx: UserContext, labels: Sequence[str] | None = None) -> str:
        """The interest prompt; ``labels`` (default: the taxonomy) are shown with their short-horizon share."""
        return render_interest_prompt(ctx, self.catalog.taxonomy if labels is None else labels)

    def interest_requests(self, scored: Sequence[ScoredUser]
                          ) -> list[tuple[int, type[BaseModel], GenerationRequest]]:
        """(index, output model, request) of the grounded interest generation for each warm user."""
        return self.interest_writer.requests(scored)

    def llm_interests(self, scored: Sequence[ScoredUser]) -> list[Any]:
        """Constrained interests per user, batched: a ``StructuredResult`` (``.value.interests``), a
        ``StructuredOutputError`` when retries ran out, or None for a cold user.

        Raises:
            EngineError: The engine failed.
        """
        return self.interest_writer.generate(scored)

    def interests_from_profile(self, ctx: UserContext) -> list[Interest]:
        """Interests read off the memory profile (cold start and fallbacks; not the LLM's), at most
        ``config.max_interests``."""
        return interests_from_profile(self.catalog, ctx)[: self._config.max_interests]

    def item_head_interests(self, ctx: UserContext) -> list[Interest]:
        """Interests read off the item-head model (None without one): each category's probability that the
        next item carries it (the model's next-item distribution, consumed items excluded), the top
        ``config.item_head_interests``; confidence high at p >= 0.6, medium at >= 0.35; horizon short when the
        memory's short-horizon profile has the category among its top 3. Cold users: the profile's."""
        if self.item_head is None:
            raise ValueError("this agent has no item-head model")
        if ctx.cold:
            return self.interests_from_profile(ctx)
        c = self._config
        return interests_from_next_items(self.catalog, self.item_head, ctx, c.item_head_interests, c.item_head_rule,
                                         temperature=c.item_head_temperature, recent_mix=c.item_head_recent_mix)

    @property
    def interests_from_item_head(self) -> bool:
        """Whether predictions take their interests from the item-head model (not the LLM's generation)."""
        return self.item_head is not None and self._config.interest_source == "item-head"

    def grounded_interests(self, ctx: UserContext, answer: Any) -> tuple[list[Interest], list[str]]:
        """The LLM's validated interest ``answer`` for ``ctx`` made to agree with its memory profile
        (:func:`ground_interests`: supported labels first), cut to ``config.max_interests``; and the
        corrections grounding made."""
        found, corrections = ground_interests(ctx.profile, interests_from_answer(ctx, answer))
        return found[: self._config.max_interests], corrections

    # -- public API --------------------------------------------------------------------------------
    def predict(self, user_id: str, now: datetime | None = None, k: int = 10, *, place: Any = None,
                context: bool = True, fallback: bool | None = None) -> InterestPrediction:
        """Predict one user's next interests and items. See :meth:`predict_many`."""
        return self.predict_many([user_id], now=now, k=k, places=[place], context=context, fallback=fallback,
                                 progress=False)[0]

    def predict_many(self, user_ids: Sequence[str], now: datetime | Sequence[datetime] | None = None,
                     k: int = 10, *, fallback: bool | None = None, progress: bool = True,
                     histories: Sequence[Sequence[str]] | None = None,
                     excludes: Sequence[Sequence[str]] | None = None, places: Sequence[Any] | None = None,
                     context: bool = True) -> list[InterestPrediction]:
        """Predict for many users, batched through the engine.

        Args:
            user_ids: users to predict for; a user with no memory gets a popularity prediction flagged
                ``provenance.cold_start``.
            now: one time for all, one per user, or None (wall clock).
            k: ranked items to return (1..200).
            fallback: override ``config.fallback`` — on LLM failure return retrieval-only results
                flagged in provenance instead of raising.
            histories/excludes: consumed items per user (default: read from memory).
            places: where each user is (``(lat, lon)`` or a ``memory.Location`` with coordinates, or None).
            context: condition on the query context — the hour of day and weekday of an explicit ``now``, and
                the distance to ``places`` — by reweighing memory (``memory.QueryContext``); False, or no
                explicit ``now`` and no place, predicts without context.

        Raises:
            StructuredOutputError: interests stayed invalid after retries and fallback is off.
            EngineError: the engine failed and fallback is off.
        """
        if not 1 <= k <= 200:
            raise ValueError("k must be in 1..200")
        results: list[InterestPrediction] = []
        bar = tqdm(total=len(user_ids), desc="predict", unit="user", disable=not progress)
        bs = self.config.batch_size
        for start in range(0, len(user_ids), bs):
            sl = slice(start, start + bs)
            nows = list(now[sl]) if isinstance(now, Sequence) else now
            scored = self.prepare(user_ids[sl], nows, histories=histories[sl] if histories else None,
                                  excludes=excludes[sl] if excludes else None,
                                  places=places[sl] if places is not None else None, context=context)
            results.extend(self.complete(scored, k, fallback=fallback))
            bar.update(len(scored))
        bar.close()
        return results

    def prepare(self, user_ids: Sequence[str], now: datetime | Sequence[datetime] | None = None, *,
                histories: Sequence[Sequence[str]] | None = None, excludes: Sequence[Sequence[str]] | None = None,
                places: Sequence[Any] | None = None, context: bool = True) -> list[ScoredUser]:
        """The memory half of :meth:`predict_many` (same arguments): read each user's memory and score the
        catalogue. Touches the store, never the engine; :meth:`complete` finishes the predictions. A
        service runs the halves in different threads, so reads and writes need not wait for the LLM."""
        nows = list(now) if isinstance(now, Sequence) else [now] * len(user_ids)
        for u in user_ids:
            if not isinstance(u, str) or not u:
                raise UnknownUserError(f"user_id must be a non-empty string, got {u!r}")
        where = list(places) if places is not None else [None] * len(user_ids)
        queries = [query_context(t, p) if context else None for t, p in zip(nows, where, strict=True)]
        return self.retriever.score(self.contexts(user_ids, nows, histories, excludes, queries))

    def complete(self, scored: Sequence[ScoredUser], k: int = 10, *,
                 fallback: bool | None = None) -> list[InterestPrediction]:
        """The engine half of :meth:`predict_many`: the LLM's choice scores and interests for users from
        :meth:`prepare`, fused into predictions. Touches the engine, never the store."""
        if not 1 <= k <= 200:
            raise ValueError("k must be in 1..200")
        return predict_batch(self, list(scored), k, self.config.fallback if fallback is None else fallback)

    def feedback(self, user_id: str, item_id: str, signal: str, at: datetime | None = None, *,
                 place: Any = None) -> StoredBehavior:
        """Record what the user thought of an item; the next prediction listens (see ``agent._feedback``).

        Stored as a behavior with action ``feedback-<signal>`` and its signal's weight, so it is forgettable
        like any other (``store.forget(user_id, ids=[returned.id])``). A disliked item never comes back, items
        close to it and sharing its tags are demoted for a while; a like strengthens its tags.

        Args:
            user_id: A user with memory.
            item_id: An item of the catalogue.
            signal: ``like``, ``dislike``, ``skip`` or ``consumed``.
            at: When (tz-aware); default now.
            place: Where, as ``(lat, lon)`` or a ``memory.Location`` with coordinates.

        Returns:
            The stored behavior.

        Raises:
            UnknownUserError, UnknownItemError, FeedbackError: Bad input; nothing is written.
        """
        return record_feedback(self.store, self.catalog, self._config.feedback, user_id, item_id, signal, at, place)

    def free_tags(self, user_id: str, now: datetime | None = None, config: FreeTagConfig | None = None
                  ) -> list[FreeTag]:
        """Short free tags the LLM proposes for the user, each grounded in behaviors that carry it; feed them to
        ``memory.interest_graph(..., free_tags={t.label: t.evidence})``. See :func:`agent._free_tags.user_free_tags`.
        """
        return user_free_tags(self.engine, self.store, user_id, now, config)

    def summarize(self, user_id: str, now: datetime | None = None) -> InterestSummary:
        """A short chat-style paragraph about the user's interests, with the facts behind it."""
        return self.summarize_many([user_id], now)[0]

    def summarize_many(self, user_ids: Sequence[str], now: datetime | None = None) -> list[InterestSummary]:
        return self.summarize_contexts(self.contexts(user_ids, [now] * len(user_ids)))

    def summarize_contexts(self, contexts: Sequence[UserContext]) -> list[InterestSummary]:
        """The engine half of :meth:`summarize_many`: summaries of contexts from :meth:`contexts`. Touches
        the engine, never the store (a service reads the contexts in its store thread)."""
        return summarize_batch(self.engine, list(contexts), self.catalog.taxonomy,
                               max_tokens=self.config.summary_max_tokens, attempts=self.config.attempts)

    def chat(self, user_id: str, messages: Sequence[Message | dict[str, str]], now: datetime | None = None
             ) -> ChatReply:
        """Answer the last user message about this user's interests, grounded in retrieved memory.

        Raises:
            EngineUnavailableError: The agent has no engine (chat needs an LLM; summaries do not).
        """
        if self.engine is None:
            raise EngineUnavailableError("chat needs an LLM engine; this agent has none (pass engine or engine_url)")
        msgs = tuple(m if isinstance(m, Message) else Message(**m) for m in messages)
        if not msgs or msgs[-1].role != "user":
            raise ValueError("messages must end with a user message")
        [ctx] = self.contexts([user_id], [now])
        return chat_reply(self.engine, self.store, ctx, msgs, max_tokens=self.config.chat_max_tokens)
