"""One batch of the agent's predictions: the re-ranker's choice and the interests joined with the retrieval
scores, the fallbacks taken on engine failures, and each prediction's provenance. ``agent`` is the
:class:`~agent.InterestAgent` whose ``complete`` calls in, typed by the :class:`Predictor` protocol (this
module must not import the agent's module)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import prompts

from ._config import AgentConfig
from ._context import UserContext
from ._engine import LLMEngine
from ._errors import EngineError, StructuredOutputError
from ._rerank import ChoiceProbs, Reranker
from ._retrieval import ScoredUser
from ._schemas import Drift, Interest, InterestPrediction, Provenance, RankedItem

__all__ = ["predict_batch", "provenance"]


class Predictor(Protocol):
    """What a prediction batch reads from the agent."""

    @property
    def config(self) -> AgentConfig: ...
    @property
    def engine(self) -> LLMEngine | None: ...
    @property
    def reranker(self) -> Reranker: ...
    @property
    def interests_from_item_head(self) -> bool: ...
    def choice_probs(self, scored: Sequence[ScoredUser]) -> list[ChoiceProbs | None]: ...
    def llm_interests(self, scored: Sequence[ScoredUser]) -> list[Any]: ...
    def item_head_interests(self, ctx: UserContext) -> list[Interest]: ...
    def interests_from_profile(self, ctx: UserContext) -> list[Interest]: ...
    def grounded_interests(self, ctx: UserContext, answer: Any) -> tuple[list[Interest], list[str]]: ...
    def fuse(self, s: ScoredUser, choice: ChoiceProbs | None, k: int, weight: float | None = None
             ) -> list[RankedItem]: ...


def provenance(agent: Predictor, s: ScoredUser, **kw: Any) -> Provenance:
    """What produced one prediction: engine, model, templates, retrieval settings, context, cold start."""
    c = agent.config
    return Provenance(
        engine=agent.engine.description if agent.engine else {},
        model=agent.engine.model_name if agent.engine else None, tuned=agent.reranker.tuned,
        templates={n: prompts.version(n) for n in (
            ("system", "rank_short" if agent.reranker.tuned else "rank", "predict")
            if agent.reranker.item_head is None else ("system", "predict"))},
        retrieval={**c.retrieval.model_dump(), "n_recent": c.n_recent, "n_long": c.n_long,
                   "fusion_weight": c.fusion_weight, "calibrate": c.calibrate,
                   "choice_orders": c.choice_orders, "candidates": len(s.candidates),
                   **({"context": s.context.query.describe(s.context.now)} if s.context.query else {}),
                   **({"feedback": len(s.context.feedback)} if s.context.feedback else {})},
        cold_start=s.context.cold, **kw)


def predict_batch(agent: Predictor, scored: list[ScoredUser], k: int, fb: bool) -> list[InterestPrediction]:
    """Predictions for users the retriever scored: the LLM's choice and interests (or the item head's, or the
    profile's), fused; with ``fb``, an engine failure or invalid interests fall back to retrieval, flagged."""
    failure: str | None = None
    try:
        probs = agent.choice_probs(scored)
    except EngineError as exc:
        if not fb:
            raise
        failure, probs = f"choice scoring failed: {exc}", [None] * len(scored)
    interests: list[Any] = [None] * len(scored)
    if agent.config.interests and failure is None and not agent.interests_from_item_head:
        try:
            interests = agent.llm_interests(scored)
        except EngineError as exc:
            if not fb:
                raise
            failure = f"interest generation failed: {exc}"
    out = []
    for s, p, res in zip(scored, probs, interests, strict=True):
        reasons: list[str] = []
        corrections: list[str] = []
        fallback_reason = failure
        attempts = 0
        if isinstance(res, StructuredOutputError):
            if not fb:
                raise res
            fallback_reason = f"interests invalid after {res.attempts} attempts"
            reasons, attempts, res = res.reasons[-10:], res.attempts, None
        if res is not None:
            found, corrections = agent.grounded_interests(s.context, res.value)
            attempts, reasons = res.attempts, res.reasons[-10:]
        elif agent.interests_from_item_head and agent.config.interests:
            found = agent.item_head_interests(s.context)
        else:
            found = agent.interests_from_profile(s.context)
            if s.context.cold:
                fallback_reason = fallback_reason or "cold start: popularity"
        prof = s.context.profile
        drift = Drift(score=prof.drift, rising=[a.name for a in prof.rising[:5]],
                      fading=[a.name for a in prof.fading[:5]])
        out.append(InterestPrediction(
            user_id=s.context.user_id, as_of=s.context.now, interests=found,
            next_items=agent.fuse(s, p if failure is None else None, k), drift=drift,
            provenance=provenance(agent, s, attempts=attempts, fallback=fallback_reason, reasons=reasons,
                                        corrections=corrections)))
    return out
