"""Interest summaries and chat grounding: facts from memory, words from the LLM (or a template)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import prompts

from ._context import UserContext
from ._engine import GenerationRequest
from ._errors import StructuredOutputError
from ._schemas import InterestSummary, Provenance, SummaryFacts, summary_output_model
from ._structured import generate_structured

if TYPE_CHECKING:
    from ._agent import InterestAgent

__all__ = ["build_facts", "chat_context", "render_template_summary", "summarize_batch"]

_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
#: number of retrieved behaviors a chat answer is grounded in
CHAT_EVIDENCE = 8


def build_facts(ctx: UserContext) -> SummaryFacts:
    p = ctx.profile
    hours = sorted(range(24), key=lambda h: -p.hour_of_day[h])
    days = sorted(range(7), key=lambda d: -p.day_of_week[d])
    total = sum(p.hour_of_day)
    return SummaryFacts(
        n_behaviors=p.n_behaviors, first_seen=p.first_seen, last_seen=p.last_seen,
        short_top=[(a.name, round(a.share, 3)) for a in p.short.top_attributes[:5]],
        long_top=[(a.name, round(a.share, 3)) for a in p.long.top_attributes[:5]],
        short_span=(p.short.span_start, p.short.span_end), long_span=(p.long.span_start, p.long.span_end),
        rising=[a.name for a in p.rising[:5]], fading=[a.name for a in p.fading[:5]], drift=p.drift,
        places=[pl.place for pl in p.top_places[:5]],
        peak_hours=[h for h in hours[:3] if p.hour_of_day[h] > 0] if total else [],
        peak_days=[_DAYS[d] for d in days[:3] if p.day_of_week[d] > 0] if total else [],
    )


def _d(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d") if t else "?"


def _span(span: tuple[datetime | None, datetime | None]) -> str:
    return f"{_d(span[0])} to {_d(span[1])}"


def _names(top: Sequence[tuple[str, float]]) -> list[str]:
    return [f"{n} ({round(100 * s)}%)" for n, s in top]


def _template_context(f: SummaryFacts, as_of: datetime) -> dict[str, Any]:
    return {
        "as_of": _d(as_of), "n_behaviors": f.n_behaviors, "first_seen": _d(f.first_seen),
        "last_seen": _d(f.last_seen), "short_span": _span(f.short_span), "long_span": _span(f.long_span),
        "short_top": _names(f.short_top) or ["nothing yet"], "long_top": _names(f.long_top) or ["nothing yet"],
        "rising": f.rising, "fading": f.fading, "places": f.places,
        "times": ", ".join([f"{h:02d}:00 UTC" for h in f.peak_hours] + f.peak_days),
    }


def render_template_summary(f: SummaryFacts) -> str:
    """The deterministic summary used when the LLM's fails validation (flagged ``generated_by=template``)."""
    if f.n_behaviors == 0:
        return "No behaviors are on record for this user yet, so there is nothing to summarise."
    parts = [f"Lately this user has mostly been into {', '.join(n for n, _ in f.short_top[:3]) or 'varied things'}"]
    if f.long_top:
        parts[0] += f"; over the long run, {', '.join(n for n, _ in f.long_top[:3])}."
    else:
        parts[0] += "."
    if f.rising or f.fading:
        moves = []
        if f.rising:
            moves.append(f"{', '.join(f.rising[:3])} rising")
        if f.fading:
            moves.append(f"{', '.join(f.fading[:3])} fading")
        parts.append(f"Interests are shifting, with {' and '.join(moves)}.")
    if f.places:
        parts.append(f"Most activity happens around {', '.join(f.places[:2])}.")
    return " ".join(parts)


def _grounded(facts: SummaryFacts):
    names = {n.lower() for n, _ in facts.short_top + facts.long_top}

    def check(value: Any) -> None:
        text = value.summary.lower()
        if names and not any(n in text for n in names):
            raise ValueError("the summary names none of the user's top interests: "
                             + ", ".join(sorted(names)[:5]))

    return check


def summarize_batch(agent: InterestAgent, ctxs: Sequence[UserContext]) -> list[InterestSummary]:
    facts = [build_facts(c) for c in ctxs]
    model = summary_output_model()
    live = [i for i, c in enumerate(ctxs) if not c.cold]
    results: dict[int, Any] = {}
    if live and agent.engine is not None:
        for i in live:  # one call per user: each has its own grounding check
            req = GenerationRequest(prompt=prompts.render("summarize", **_template_context(facts[i], ctxs[i].now)),
                                    max_tokens=agent.config.summary_max_tokens)
            [results[i]] = generate_structured(agent.engine, model, [req], attempts=agent.config.attempts,
                                               validate=_grounded(facts[i]))
    out = []
    for i, ctx in enumerate(ctxs):
        res = results.get(i)
        prov = Provenance(engine=agent.engine.description if agent.engine else {},
                          model=agent.engine.model_name if agent.engine else None,
                          templates={"summarize": prompts.version("summarize")}, cold_start=ctx.cold)
        if res is not None and not isinstance(res, StructuredOutputError):
            prov.attempts, prov.reasons = res.attempts, res.reasons[-10:]
            out.append(InterestSummary(user_id=ctx.user_id, as_of=ctx.now, text=res.value.summary.strip(),
                                       facts=facts[i], generated_by="llm", provenance=prov))
            continue
        if isinstance(res, StructuredOutputError):
            prov.attempts, prov.reasons = res.attempts, res.reasons[-10:]
            prov.fallback = "llm summary failed validation; rendered from facts"
        else:
            prov.fallback = "cold start: no behaviors" if ctx.cold else "no engine"
        out.append(InterestSummary(user_id=ctx.user_id, as_of=ctx.now, text=render_template_summary(facts[i]),
                                   facts=facts[i], generated_by="template", provenance=prov))
    return out


def chat_context(agent: InterestAgent, ctx: UserContext, question: str) -> tuple[str, list[int]]:
    """The system prompt for a chat turn: facts plus the behaviors most relevant to the question."""
    relevant = agent.store.retrieve(ctx.user_id, query=question, k=CHAT_EVIDENCE, now=ctx.now) if not ctx.cold else []
    lines = [{"idx": i + 1, "when": r.behavior.timestamp.strftime("%Y-%m-%d"), "action": r.behavior.action,
              "text": r.behavior.text} for i, r in enumerate(relevant)]
    f = build_facts(ctx)
    system = prompts.render("chat", short_top=_names(f.short_top) or ["nothing yet"],
                            long_top=_names(f.long_top) or ["nothing yet"], rising=f.rising, fading=f.fading,
                            relevant=lines)
    return system, [r.behavior.id for r in relevant]
