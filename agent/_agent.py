"""The interest agent: memory + candidate retrieval + LLM choice scoring + constrained interests."""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

import prompts
from memory import MemoryStore, StoredBehavior

from ._candidates import CandidateSource, RetrievalConfig, TransitionIndex, minmax_rows
from ._catalog import Catalog
from ._context import UserContext, load_context, prompt_history
from ._engine import GenerationRequest, LLMEngine, Message
from ._errors import EngineError, StructuredOutputError, UnknownUserError
from ._schemas import (
    MAX_INTERESTS,
    ChatReply,
    Drift,
    Interest,
    InterestPrediction,
    InterestSummary,
    Provenance,
    RankedItem,
    grounded_interest_model,
    interest_output_model,
)
from ._structured import generate_structured
from ._summary import build_facts, chat_context, summarize_batch

__all__ = ["AgentConfig", "InterestAgent"]

log = logging.getLogger(__name__)
LABELS = tuple(string.ascii_uppercase[:20])  # A..T: one token each, LlamaRec's verbalizer


class AgentConfig(BaseModel):
    """Settings of the agent (printed with every result it produced)."""

    model_config = ConfigDict(extra="forbid")

    n_recent: int = Field(default=8, ge=1, le=50)
    n_long: int = Field(default=6, ge=0, le=50)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    #: weight of the LLM's choice probability against the retrieval score among the candidates
    fusion_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    #: divide the LLM's choice probabilities by its content-free prior over the letters (contextual
    #: calibration, Zhao et al. 2021): small models prefer "A" whatever the candidates are
    calibrate: bool = False
    attempts: int = Field(default=3, ge=1, le=10)
    interests: bool = True
    interest_max_tokens: int = Field(default=160, ge=16, le=1024)
    #: most labels an interest may choose from (the user's grounded categories; see ``interest_labels``)
    interest_labels: int = Field(default=6, ge=2, le=100)
    summary_max_tokens: int = Field(default=120, ge=32, le=1024)
    chat_max_tokens: int = Field(default=160, ge=16, le=1024)
    #: on an LLM failure after retries: False raises, True falls back to retrieval-only (flagged)
    fallback: bool = False
    #: users per engine batch; rank and interest prompts of a user share their history prefix, and a
    #: batch's prompts must fit the KV cache together for vLLM's prefix cache to reuse it
    batch_size: int = Field(default=32, ge=1)


@dataclass
class _Scored:
    ctx: UserContext
    retrieval: np.ndarray  # over the catalog, consumed items = -inf
    candidates: list[int]  # catalog indices, best first


class InterestAgent:
    """Predict what a user will want next, summarise their interests, answer questions about them."""

    def __init__(self, store: MemoryStore, catalog: Catalog, engine: LLMEngine | None, config: AgentConfig,
                 transitions: TransitionIndex | None = None, sequential: CandidateSource | None = None):
        self.store = store
        self.catalog = catalog
        self.engine = engine
        self.config = config
        self.transitions = transitions
        self.sequential = sequential
        self._priors: dict[int, np.ndarray] = {}

    @classmethod
    def from_defaults(cls, store: MemoryStore, catalog: Catalog, engine_url: str | None = None, *,
                      engine: LLMEngine | None = None, config: AgentConfig | None = None,
                      transitions: TransitionIndex | None = None,
                      sequential: CandidateSource | None = None) -> InterestAgent:
        """An agent on the embedded vLLM engine, or on a ``vllm serve`` at ``engine_url``.

        Collaborative transitions are learnt from every user's history in ``store`` unless given.
        """
        if engine is None:
            if engine_url:
                from ._openai import OpenAIEngine

                engine = OpenAIEngine.from_url(engine_url)
            else:
                from ._vllm import VLLMEngine

                engine = VLLMEngine.from_defaults()
        if transitions is None:
            seqs = {}
            for u in store.users():
                items = store.recent(u, k=max(1, store.count(u)))
                seqs[u] = [b.item_id for b in reversed(items) if b.item_id]
            transitions = TransitionIndex.fit(seqs, catalog.index)
        return cls(store, catalog, engine, config or AgentConfig(), transitions, sequential)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()

    # -- retrieval ---------------------------------------------------------------------------------
    def contexts(self, user_ids: Sequence[str], nows: Sequence[datetime | None],
                 histories: Sequence[Sequence[str] | None] | None = None,
                 excludes: Sequence[Sequence[str] | None] | None = None) -> list[UserContext]:
        c = self.config
        return [
            load_context(self.store, u, now, c.n_recent, c.n_long,
                         histories[i] if histories else None, excludes[i] if excludes else None)
            for i, (u, now) in enumerate(zip(user_ids, nows, strict=True))
        ]

    def retrieval_scores(self, ctxs: Sequence[UserContext]) -> np.ndarray:
        """Candidate-stage scores over the whole catalog (consumed items = -inf); memory-only ranking."""
        r = self.config.retrieval
        n = len(self.catalog)
        total = np.zeros((len(ctxs), n))
        for row, ctx in enumerate(ctxs):
            if ctx.profile.short.vector is not None and r.w_short:
                total[row] += r.w_short * minmax_rows(self.catalog.similarity(ctx.profile.short.vector))
            if ctx.profile.long.vector is not None and r.w_long:
                total[row] += r.w_long * minmax_rows(self.catalog.similarity(ctx.profile.long.vector))
            if self.transitions is not None and r.w_co and ctx.history:
                total[row] += r.w_co * minmax_rows(self.transitions.score(ctx.history))
        if self.sequential is not None and r.w_seq:
            live = [i for i, c in enumerate(ctxs) if c.history]
            if live:
                seq = self.sequential.score_histories([ctxs[i].user_id for i in live],
                                                      [ctxs[i].history for i in live], [ctxs[i].now for i in live])
                total[live] += r.w_seq * minmax_rows(seq)
        for row, ctx in enumerate(ctxs):
            cols = [self.catalog.index[i] for i in ctx.exclude if i in self.catalog.index]
            total[row, cols] = -np.inf
            if ctx.cold:  # no memory: popularity, flagged by the caller
                pop = minmax_rows(self.catalog.popularity[None, :])[0]
                total[row] = np.where(np.isfinite(total[row]), pop, -np.inf)
        return total

    def _score(self, ctxs: Sequence[UserContext]) -> list[_Scored]:
        scores = self.retrieval_scores(ctxs)
        n = self.config.retrieval.n_candidates
        out = []
        for row, ctx in enumerate(ctxs):
            order = np.argsort(-scores[row], kind="stable")
            finite = order[np.isfinite(scores[row][order])]
            out.append(_Scored(ctx, scores[row], [int(i) for i in finite[:n]]))
        return out

    # -- LLM stages ----------------------------------------------------------------------------------
    def rank_prompt(self, s: _Scored) -> str:
        cands = [{"label": LABELS[j], "title": self.catalog.items[i].title,
                  "categories": list(self.catalog.items[i].categories)} for j, i in enumerate(s.candidates)]
        # the template file ends in a newline; the labels are read as the next token after "Answer:" (" A")
        return prompts.render("rank", candidates=cands, **prompt_history(s.ctx)).rstrip("\n")

    def interest_labels(self, s: _Scored) -> list[str]:
        """The labels this user's interests may take: the taxonomy's categories that the user's memory
        (short- and long-horizon shares) and top candidates show, by that mass, at most
        ``config.interest_labels`` of them; the whole taxonomy when fewer than two are grounded.

        Restricting the enum grounds the answer in what memory shows and keeps a small model from picking
        categories by their place in a long list.
        """
        taxonomy = self.catalog.taxonomy
        known = set(taxonomy)
        mass: dict[str, float] = {}
        for a in (*s.ctx.profile.short.top_attributes, *s.ctx.profile.long.top_attributes):
            if a.name in known:
                mass[a.name] = mass.get(a.name, 0.0) + a.share
        top = s.candidates[:10]
        for i in top:  # the candidates carry as much mass as one horizon
            cats = [c for c in self.catalog.items[i].categories if c in known]
            for c in cats:
                mass[c] = mass.get(c, 0.0) + 1.0 / (len(top) * len(cats))
        labels = sorted(mass, key=lambda c: (-mass[c], taxonomy.index(c)))[: self.config.interest_labels]
        return labels if len(labels) >= 2 else list(taxonomy)

    def behavior_categories(self, b: StoredBehavior) -> list[str]:
        """A behavior's categories: its catalog item's, else its own attributes (genres/categories)."""
        if b.item_id and b.item_id in self.catalog.index:
            return list(self.catalog.items[self.catalog.index[b.item_id]].categories)
        for key in self.store.config.attribute_keys:
            value = b.attributes.get(key)
            if isinstance(value, str):
                return [v for v in value.split("|") if v]
            if isinstance(value, list | tuple):
                return [str(v) for v in value]
        return []

    def interest_support(self, ctx: UserContext, labels: Sequence[str]) -> list[tuple[str, list[int]]]:
        """For each label, the prompt's behavior numbers that carry it; labels no shown behavior carries
        are dropped (an interest must cite its evidence)."""
        shown = [*reversed(ctx.recent), *(r.behavior for r in ctx.long_range)]  # the prompt's [1..n] order
        cats = [set(self.behavior_categories(b)) for b in shown]
        support = [(label, [n + 1 for n, c in enumerate(cats) if label in c]) for label in labels]
        return [(label, ids) for label, ids in support if ids]

    def interest_prompt(self, ctx: UserContext, labels: Sequence[str] | None = None) -> str:
        """The interest prompt; ``labels`` (default: the taxonomy) are shown with their short-horizon share."""
        share = {a.name: a.share for a in ctx.profile.short.top_attributes}
        cats = [f"{c} {round(100 * share.get(c, 0.0))}%" for c in (self.catalog.taxonomy if labels is None else labels)]
        return prompts.render("predict", categories=cats, max_interests=MAX_INTERESTS, **prompt_history(ctx))

    def llm_choice_probs(self, scored: Sequence[_Scored]) -> list[np.ndarray | None]:
        """The LLM's probability for each candidate (None for cold users or a single candidate)."""
        assert self.engine is not None
        todo = [i for i, s in enumerate(scored) if not s.ctx.cold and len(s.candidates) > 1]
        out: list[np.ndarray | None] = [None] * len(scored)
        by_n: dict[int, list[int]] = {}
        for i in todo:
            by_n.setdefault(len(scored[i].candidates), []).append(i)
        for n, idx in by_n.items():
            if self.config.calibrate:
                self.choice_prior(n)  # here, so an engine failure meets the caller's fallback choice
            res = self.engine.score_choices([self.rank_prompt(scored[i]) for i in idx], LABELS[:n])
            for i, r in zip(idx, res, strict=True):
                out[i] = np.asarray(r.probs)
        return out

    def choice_prior(self, n: int) -> np.ndarray:
        """The LLM's probabilities for the first ``n`` letters on a content-free rank prompt (no history,
        every candidate "N/A"), computed once per ``n``: the position bias that calibration divides out."""
        if n not in self._priors:
            assert self.engine is not None
            cands = [{"label": LABELS[j], "title": "N/A", "categories": []} for j in range(n)]
            prompt = prompts.render("rank", candidates=cands, recent=[], long_range=[], short_shares=[],
                                    long_shares=[]).rstrip("\n")
            [res] = self.engine.score_choices([prompt], LABELS[:n])
            self._priors[n] = np.maximum(np.asarray(res.probs, dtype=float), 1e-6)
        return self._priors[n]

    def calibrated(self, probs: np.ndarray) -> np.ndarray:
        """``probs`` divided by the content-free prior and renormalised."""
        p = probs / self.choice_prior(len(probs))
        return p / p.sum()

    def fuse(self, s: _Scored, probs: np.ndarray | None, k: int, weight: float | None = None
             ) -> list[RankedItem]:
        """Candidates re-ranked by (1-w)·minmax(retrieval) + w·minmax(LLM prob); then the rest by retrieval.

        Items past the candidates keep their retrieval score minus 1, so scores stay ordered.
        """
        w = self.config.fusion_weight if weight is None else weight
        cand = np.asarray(s.candidates, dtype=int)
        if len(cand) == 0:
            return []
        llm = probs
        if probs is not None and self.config.calibrate and w > 0:
            llm = self.calibrated(probs)
        retr = minmax_rows(s.retrieval[cand][None, :])[0]
        fused = retr if llm is None else (1 - w) * retr + w * minmax_rows(llm[None, :])[0]
        order = np.argsort(-fused, kind="stable")
        items = [RankedItem(item_id=self.catalog.items[cand[j]].item_id, title=self.catalog.items[cand[j]].title,
                            score=float(fused[j]), retrieval_score=float(s.retrieval[cand[j]]),
                            llm_prob=None if probs is None else float(probs[j])) for j in order[:k]]
        if k > len(items):
            rest = np.argsort(-s.retrieval, kind="stable")
            seen = set(cand.tolist())
            for i in rest:
                if len(items) >= k or not np.isfinite(s.retrieval[i]):
                    break
                if int(i) in seen:
                    continue
                it = self.catalog.items[int(i)]
                items.append(RankedItem(item_id=it.item_id, title=it.title, score=float(s.retrieval[i]) - 1.0,
                                        retrieval_score=float(s.retrieval[i])))
        return items

    def _interests_from_profile(self, ctx: UserContext) -> list[Interest]:
        """Interests read off the memory profile (used for cold start and fallbacks; not the LLM's)."""
        out = []
        tops = [(a.name, "short") for a in ctx.profile.short.top_attributes[:2]]
        tops += [(a.name, "long") for a in ctx.profile.long.top_attributes[:2]]
        seen = set()
        for name, horizon in tops:
            if name in seen or len(out) >= MAX_INTERESTS:
                continue
            seen.add(name)
            out.append(Interest(label=name[:60], confidence="low", horizon=horizon, evidence=[]))
        if not out and ctx.cold:
            counts: dict[str, float] = {}
            for i in np.argsort(-self.catalog.popularity)[:50]:
                for c in self.catalog.items[int(i)].categories:
                    counts[c] = counts.get(c, 0) + 1
            for name in sorted(counts, key=lambda c: -counts[c])[:MAX_INTERESTS]:
                out.append(Interest(label=name[:60], confidence="low", horizon="long", evidence=[]))
        return out

    def interest_requests(self, scored: Sequence[_Scored]) -> list[tuple[int, type[BaseModel], GenerationRequest]]:
        """(index, output model, request) of the interest generation for each warm user."""
        out = []
        for i, s in enumerate(scored):
            if s.ctx.cold:
                continue
            support = self.interest_support(s.ctx, self.interest_labels(s))
            if len(support) >= 2:  # grounded: each label may cite only behaviors that carry it
                labels = [label for label, _ in support]
                model = grounded_interest_model(support)
            else:  # too little categorised evidence: the whole taxonomy, any shown behavior as evidence
                labels = list(self.catalog.taxonomy)
                model = interest_output_model(labels, len(s.ctx.evidence_ids()))
            out.append((i, model, GenerationRequest(prompt=self.interest_prompt(s.ctx, labels),
                                                    max_tokens=self.config.interest_max_tokens)))
        return out

    def _llm_interests(self, scored: Sequence[_Scored]) -> list[Any]:
        """Constrained interests for each warm user (None for cold ones), batched across users."""
        out: list[Any] = [None] * len(scored)
        todo = self.interest_requests(scored)
        if not todo:
            return out
        res = generate_structured(self.engine, [m for _, m, _ in todo], [r for _, _, r in todo],  # type: ignore[arg-type]
                                  attempts=self.config.attempts)
        for (i, _, _), r in zip(todo, res, strict=True):
            out[i] = r
        return out

    def _provenance(self, s: _Scored, **kw: Any) -> Provenance:
        return Provenance(
            engine=self.engine.description if self.engine else {},
            model=self.engine.model_name if self.engine else None,
            templates={n: prompts.version(n) for n in ("system", "rank", "predict")},
            retrieval={**self.config.retrieval.model_dump(), "n_recent": self.config.n_recent,
                       "n_long": self.config.n_long, "fusion_weight": self.config.fusion_weight,
                       "calibrate": self.config.calibrate,
                       "candidates": len(s.candidates)},
            cold_start=s.ctx.cold, **kw)

    # -- public API --------------------------------------------------------------------------------
    def predict(self, user_id: str, now: datetime | None = None, k: int = 10, *,
                fallback: bool | None = None) -> InterestPrediction:
        """Predict one user's next interests and items. See :meth:`predict_many`."""
        return self.predict_many([user_id], now=now, k=k, fallback=fallback, progress=False)[0]

    def predict_many(self, user_ids: Sequence[str], now: datetime | Sequence[datetime] | None = None,
                     k: int = 10, *, fallback: bool | None = None, progress: bool = True,
                     histories: Sequence[Sequence[str]] | None = None,
                     excludes: Sequence[Sequence[str]] | None = None) -> list[InterestPrediction]:
        """Predict for many users, batched through the engine.

        Args:
            user_ids: users to predict for; a user with no memory gets a popularity prediction flagged
                ``provenance.cold_start``.
            now: one time for all, one per user, or None (wall clock).
            k: ranked items to return (1..200).
            fallback: override ``config.fallback`` — on LLM failure return retrieval-only results
                flagged in provenance instead of raising.
            histories/excludes: consumed items per user (default: read from memory).

        Raises:
            StructuredOutputError: interests stayed invalid after retries and fallback is off.
            EngineError: the engine failed and fallback is off.
        """
        if not 1 <= k <= 200:
            raise ValueError("k must be in 1..200")
        fb = self.config.fallback if fallback is None else fallback
        nows = list(now) if isinstance(now, Sequence) else [now] * len(user_ids)
        for u in user_ids:
            if not isinstance(u, str) or not u:
                raise UnknownUserError(f"user_id must be a non-empty string, got {u!r}")
        results: list[InterestPrediction] = []
        bar = tqdm(total=len(user_ids), desc="predict", unit="user", disable=not progress)
        bs = self.config.batch_size
        for start in range(0, len(user_ids), bs):
            sl = slice(start, start + bs)
            ctxs = self.contexts(user_ids[sl], nows[sl], histories[sl] if histories else None,
                                 excludes[sl] if excludes else None)
            results.extend(self._predict_batch(self._score(ctxs), k, fb))
            bar.update(len(ctxs))
        bar.close()
        return results

    def _predict_batch(self, scored: list[_Scored], k: int, fb: bool) -> list[InterestPrediction]:
        failure: str | None = None
        try:
            probs = self.llm_choice_probs(scored)
        except EngineError as exc:
            if not fb:
                raise
            failure, probs = f"choice scoring failed: {exc}", [None] * len(scored)
        interests: list[Any] = [None] * len(scored)
        if self.config.interests and failure is None:
            try:
                interests = self._llm_interests(scored)
            except EngineError as exc:
                if not fb:
                    raise
                failure = f"interest generation failed: {exc}"
        out = []
        for s, p, res in zip(scored, probs, interests, strict=True):
            reasons: list[str] = []
            fallback_reason = failure
            attempts = 0
            if isinstance(res, StructuredOutputError):
                if not fb:
                    raise res
                fallback_reason = f"interests invalid after {res.attempts} attempts"
                reasons, attempts, res = res.reasons[-10:], res.attempts, None
            if res is not None:
                ids = s.ctx.evidence_ids()
                found = _merge_repeats([Interest(label=i.label, confidence=i.confidence, horizon=i.horizon,
                                                 evidence=list(dict.fromkeys(ids[e - 1] for e in i.evidence)))
                                        for i in res.value.interests])
                attempts, reasons = res.attempts, res.reasons[-10:]
            else:
                found = self._interests_from_profile(s.ctx)
                if s.ctx.cold:
                    fallback_reason = fallback_reason or "cold start: popularity"
            prof = s.ctx.profile
            drift = Drift(score=prof.drift, rising=[a.name for a in prof.rising[:5]],
                          fading=[a.name for a in prof.fading[:5]])
            out.append(InterestPrediction(
                user_id=s.ctx.user_id, as_of=s.ctx.now, interests=found,
                next_items=self.fuse(s, p if failure is None else None, k), drift=drift,
                provenance=self._provenance(s, attempts=attempts, fallback=fallback_reason, reasons=reasons)))
        return out

    def summarize(self, user_id: str, now: datetime | None = None) -> InterestSummary:
        """A short chat-style paragraph about the user's interests, with the facts behind it."""
        return self.summarize_many([user_id], now)[0]

    def summarize_many(self, user_ids: Sequence[str], now: datetime | None = None) -> list[InterestSummary]:
        ctxs = self.contexts(user_ids, [now] * len(user_ids))
        return summarize_batch(self, ctxs)

    def chat(self, user_id: str, messages: Sequence[Message | dict[str, str]], now: datetime | None = None
             ) -> ChatReply:
        """Answer the last user message about this user's interests, grounded in retrieved memory."""
        msgs = tuple(m if isinstance(m, Message) else Message(**m) for m in messages)
        if not msgs or msgs[-1].role != "user":
            raise ValueError("messages must end with a user message")
        [ctx] = self.contexts([user_id], [now])
        system, evidence = chat_context(self, ctx, msgs[-1].content)
        assert self.engine is not None
        [out] = self.engine.generate([GenerationRequest(
            messages=(Message(role="system", content=system), *[m for m in msgs if m.role != "system"]),
            max_tokens=self.config.chat_max_tokens, stop=("\nUser:",))])
        text = out.text.strip()[:4000] or "I could not produce an answer from this user's memory."
        facts = build_facts(ctx)
        return ChatReply(text=text, evidence=evidence[:20], provenance=Provenance(
            engine=self.engine.description, model=self.engine.model_name,
            templates={"chat": prompts.version("chat")}, attempts=1,
            retrieval={"relevant": len(evidence), "n_behaviors": facts.n_behaviors},
            cold_start=ctx.cold, fallback="length" if out.finish_reason == "length" else None))


def _merge_repeats(interests: list[Interest]) -> list[Interest]:
    """One interest per label: a small model often repeats a label (the schema cannot forbid it); keep the
    first occurrence with the union of the evidence rather than reject an otherwise valid answer."""
    merged: dict[str, Interest] = {}
    for it in interests:
        if it.label not in merged:
            merged[it.label] = it
            continue
        first = merged[it.label]
        evidence = list(dict.fromkeys([*first.evidence, *it.evidence]))[:3]
        merged[it.label] = first.model_copy(update={"evidence": evidence})
    return list(merged.values())
