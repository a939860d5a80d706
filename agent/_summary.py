"""Interest summaries and chat grounding: facts from memory, words from the LLM (or a template)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import prompts
from memory import MemoryStore

from ._context import UserContext, behavior_lines
from ._engine import Completion, GenerationRequest, LLMEngine, Message
from ._errors import StructuredOutputError
from ._schemas import ChatReply, InterestSummary, Provenance, SummaryFacts, summary_output_model
from ._structured import generate_structured

__all__ = ["OPENING", "build_facts", "chat_context", "chat_reply", "grounding_check", "lately_names",
           "listed_twice", "opening", "parse_summary", "render_template_summary", "retry_stems", "summarize_batch",
           "unsupported_claim"]

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
    parts = [f"Lately this user has mostly been into {', '.join(n for n, _ in _leaders(f)) or 'varied things'}"]
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


#: the paragraph's first words; a base model continues them with the facts above (prose is what it was
#: trained on; inside a JSON string it drifts)
OPENING = "Lately this person has mostly chosen"
#: the "lately" sentence names the short horizon's leaders: its top ``LATELY_TOP`` categories that are not
#: fading, the first always, the others when they hold at least ``LATELY_MIN_SHARE`` of the recent mass (a 5%
#: category is not what someone "mostly chose"; a fading one is what they used to choose)
LATELY_TOP = 3
LATELY_MIN_SHARE = 0.1
MAX_SENTENCES = 2
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
#: what may stand between two items of one list of categories ("A, B, and C", "A or B", "A/B")
_LIST_SEP = re.compile(r"\s*(?:,|/|&|,?\s*\b(?:and|or)\b)\s*")


def _word(name: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + re.escape(name.lower()) + r"(?![\w-])")


def _leaders(f: SummaryFacts) -> list[tuple[str, float]]:
    """The short horizon's top :data:`LATELY_TOP` once the fading ones are left out (its top one if all fade)."""
    return [(n, s) for n, s in f.short_top if n not in f.fading][:LATELY_TOP] or f.short_top[:1]


def lately_names(f: SummaryFacts) -> list[str]:
    """The categories the summary's "lately" sentence names: the short horizon's leaders."""
    return [n for k, (n, share) in enumerate(_leaders(f)) if k == 0 or share >= LATELY_MIN_SHARE]


def opening(f: SummaryFacts) -> str:
    """The summary's first sentence, rendered from the short-term profile so that its "lately" claim is true
    by construction; the LLM writes what follows. Without categorised behaviors, only :data:`OPENING`'s
    words (the LLM completes the sentence and :func:`grounding_check` holds it to the facts)."""
    names = lately_names(f)
    if not names:
        return OPENING
    body = " and ".join(names[:2]) + (f", with some {names[2]}" if len(names) > 2 else "")
    return f"{OPENING} {body}."


def retry_stems(f: SummaryFacts) -> list[str]:
    """What follows the opening on each try: nothing on the first (the model writes the second sentence
    freely), then the first words of a second sentence in the worked examples' form, each one leading to facts
    the check accepts: the long run, where, when. A 270M base model that drifts on its own ("they are the most
    popular") names the facts once the sentence is started; resampling the same prompt repeats its mistake."""
    stems = [""]
    if f.long_top:
        stems.append("Over the long run they mostly chose")
    if f.places:
        stems.append("Most of this happens around")
    if f.peak_days or f.peak_hours:
        stems.append("They are most active")
    return stems


#: words that state a category's movement, and the facts' list that must hold every category of their clause
_MOVES = {"rising": "rising", "growing": "rising", "increasing": "rising", "fading": "fading",
          "falling": "fading", "declining": "fading", "decreasing": "fading", "least": "fading"}
#: words that call categories the favourites: their clause may name only the facts' top categories
_FAVOURITE = re.compile(r"\b(?:most popular|favou?rites?|most active|mostly cho(?:se|sen)|mostly watched|top)\b")
_CLAUSE_SEP = re.compile(r"[.;:!?]|,\s*(?:but|while|whereas|with)\b|\b(?:but|while|whereas)\b")
_WEEKEND = {"saturday", "sunday"}


def unsupported_claim(text: str, facts: SummaryFacts, taxonomy: Sequence[str]) -> str | None:
    """Why ``text`` states something the facts do not hold, else None. Clause by clause: a clause with a
    movement word ("rising", "fading", "the least", ...) may name only categories of that list of the facts;
    one calling categories the favourites ("most popular", "most active", "mostly chose") only the facts' top
    three of either horizon (of the long one when it says "long run"), and "most popular" must name one (the
    270M model's "and they are the most popular" says nothing); "weekend" needs a Saturday or Sunday among the
    peak days and no other weekday named."""
    lists = {"rising": {n.lower() for n in facts.rising}, "fading": {n.lower() for n in facts.fading}}
    top = {n.lower() for n, _ in facts.short_top[:3] + facts.long_top[:3]}
    long_top = {n.lower() for n, _ in facts.long_top[:3]}
    text = text.lower()
    for clause in _CLAUSE_SEP.split(text):
        named = [c.lower() for c in taxonomy if _word(c).search(clause)]
        moves = {kind for word, kind in _MOVES.items() if re.search(rf"\b{word}\b", clause)}
        if len(moves) == 1:  # both directions in one clause: not read
            [kind] = moves
            bad = [c for c in named if c not in lists[kind]]
            if bad:
                return f"the summary calls {', '.join(bad)} {kind}, which the facts do not"
        elif not moves and _FAVOURITE.search(clause):
            allowed = long_top if "long run" in clause else top
            bad = [c for c in named if c not in allowed]
            if bad:
                return f"the summary calls {', '.join(bad)} a favourite; the top ones are {', '.join(sorted(allowed))}"
            if "popular" in clause and not named:
                return "the summary says 'most popular' of no category"
    if "weekend" in text:
        days = {d.lower() for d in _DAYS if re.search(rf"\b{d.lower()}s?\b", text)}
        if not _WEEKEND & {d.lower() for d in facts.peak_days} or days - _WEEKEND:
            return "the summary says 'weekend', which the peak days do not"
    return None


def listed_twice(text: str, taxonomy: Sequence[str]) -> str | None:
    """A category that one list in ``text`` names twice ("Action, Sci-Fi, Thriller, and Sci-Fi"), else None.

    Only within a list: naming a category again in another clause ("Comedy was the favourite, but Comedy is
    fading") is prose, not a loop."""
    text = text.lower()
    named = sorted((m.start(), m.end(), c.lower()) for c in taxonomy for m in _word(c).finditer(text))
    run: set[str] = set()
    end = None
    for start, stop, name in named:
        if end is None or not _LIST_SEP.fullmatch(text[end:start]):
            run = set()
        if name in run:
            return name
        run.add(name)
        end = stop
    return None


def grounding_check(facts: SummaryFacts, taxonomy: Sequence[str], start: str = OPENING):
    """The semantic check of an LLM summary that continues ``start``: what the model wrote names one of the
    facts (a top interest, a peak day, a place), the first category is one of the user's two top recent
    interests, the "lately" sentence names only the short horizon's leaders (top :data:`LATELY_TOP`, not
    fading), no category is
    named that is not among the facts (a small model copies examples and invents), and it does not loop (a
    sentence repeated, a category listed twice)."""
    head = len(" ".join(start.split()))
    anchors = [_word(x) for x in [n for n, _ in facts.short_top + facts.long_top] + facts.places + facts.peak_days]
    top = {n.lower() for n, _ in facts.short_top + facts.long_top}
    lead = {n.lower() for n, _ in _leaders(facts)[:2]}
    lately = {n.lower() for n, _ in _leaders(facts)}
    allowed = top | {n.lower() for n in facts.rising + facts.fading}
    foreign = [c for c in taxonomy if c.lower() not in allowed]
    days = {d.lower() for d in facts.peak_days}
    other_days = [d for d in _DAYS if d.lower() not in days]

    def check(value: Any) -> None:
        text = value.summary.lower()
        if top and not any(a.search(text[head:]) for a in anchors):
            raise ValueError("the summary names none of the user's top interests: " + ", ".join(sorted(top)[:5]))
        named = sorted((m.start(), c.lower()) for c in taxonomy for m in [_word(c).search(text)] if m)
        if lead and named and named[0][1] not in lead:
            raise ValueError(f"the summary leads with {named[0][1]}, not a top recent interest "
                             f"({', '.join(sorted(lead))})")
        invented = [c for c in foreign if _word(c).search(text)]
        invented += [d for d in other_days if re.search(rf"\b{d.lower()}s?\b", text)]
        if invented:
            raise ValueError("the summary names categories that are not in the facts: " + ", ".join(invented[:5]))
        sentences = [x.strip() for x in _SENTENCE_END.split(text) if x.strip()]
        if len(sentences) != len(set(sentences)):
            raise ValueError("the summary repeats a sentence")
        twice = listed_twice(text, [*taxonomy, *_DAYS])
        if twice:
            raise ValueError(f"the summary lists {twice} twice")
        # every sentence after the opening, a retry's stem included ("Over the long run they mostly chose")
        wrong = unsupported_claim(text[len(sentences[0]):] if len(sentences) > 1 else text[head:], facts, taxonomy)
        if wrong:
            raise ValueError(wrong)
        first = sentences[0] if sentences and sentences[0].startswith(OPENING.lower()) else ""
        stale = [c.lower() for c in taxonomy if c.lower() not in lately and _word(c).search(first)]
        if lately and stale:
            raise ValueError("the 'lately' sentence names " + ", ".join(stale[:5]) + ", not a recent leader ("
                             + ", ".join(n for n, _ in _leaders(facts)) + ")")

    return check


def parse_summary(model: type[Any], out: Completion, start: str = OPENING) -> Any:
    """The opening ``start`` plus the model's continuation, cut after at most ``MAX_SENTENCES`` complete
    sentences (a small model's later sentences drift from the facts), as ``model``; the model must have
    completed at least one sentence of its own."""
    head = " ".join(start.split())
    # after a complete opening sentence the model's own starts a new one
    gap = " " if _SENTENCE_END.search(head[-1:]) and not out.text[:1].isspace() else ""
    text = " ".join((start + gap + out.text).split())
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() > len(head)]
    if not ends:
        raise ValueError(f"no complete sentence in {out.completion_tokens} tokens")
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return model(summary=text[: ends[: MAX_SENTENCES][-1]])


def summarize_batch(engine: LLMEngine | None, ctxs: Sequence[UserContext], taxonomy: Sequence[str], *,
                    max_tokens: int, attempts: int) -> list[InterestSummary]:
    """Summaries of the users in ``ctxs``: the LLM's paragraph when it passes :func:`grounding_check`,
    else one rendered from the facts (also for cold users and without an engine).

    Args:
        engine: The LLM, or None for template summaries only.
        ctxs: The users' memory as read for this summary.
        taxonomy: Every category name (a summary may not name those outside the user's facts).
        max_tokens: Generation budget per summary.
        attempts: Tries per summary before falling back to the template.
    """
    facts = [build_facts(c) for c in ctxs]
    model = summary_output_model()
    live = [i for i, c in enumerate(ctxs) if not c.cold]
    results: dict[int, Any] = {}
    tries: dict[int, tuple[int, list[str]]] = {}
    if live and engine is not None:
        for i in live:  # one call per try and user: each has its own opening and grounding check
            first = opening(facts[i])
            stems = retry_stems(facts[i]) if first != OPENING else [""]  # a stem needs a finished sentence
            reasons: list[str] = []
            for k in range(attempts):
                start = f"{first} {stems[k % len(stems)]}".rstrip()
                prompt = prompts.render("summarize", opening=start, **_template_context(facts[i], ctxs[i].now))
                req = GenerationRequest(prompt=prompt.rstrip("\n"),  # the model continues the opening's line
                                        max_tokens=max_tokens, stop=("\n",))
                [results[i]] = generate_structured(
                    engine, model, [req], attempts=1, validate=grounding_check(facts[i], taxonomy, start),
                    parse=functools.partial(parse_summary, model, start=start))
                if isinstance(results[i], StructuredOutputError):
                    reasons += results[i].reasons
                else:
                    break
            tries[i] = (k + 1, reasons)
    out = []
    for i, ctx in enumerate(ctxs):
        res = results.get(i)
        prov = Provenance(engine=engine.description if engine else {},
                          model=engine.model_name if engine else None,
                          templates={"summarize": prompts.version("summarize")}, cold_start=ctx.cold)
        if i in tries:
            prov.attempts, prov.reasons = tries[i][0], tries[i][1][-10:]
        if res is not None and not isinstance(res, StructuredOutputError):
            out.append(InterestSummary(user_id=ctx.user_id, as_of=ctx.now, text=res.value.summary.strip(),
                                       facts=facts[i], generated_by="llm", provenance=prov))
            continue
        if isinstance(res, StructuredOutputError):
            prov.fallback = "llm summary failed validation; rendered from facts"
        else:
            prov.fallback = "cold start: no behaviors" if ctx.cold else "no engine"
        out.append(InterestSummary(user_id=ctx.user_id, as_of=ctx.now, text=render_template_summary(facts[i]),
                                   facts=facts[i], generated_by="template", provenance=prov))
    return out


def chat_context(store: MemoryStore, ctx: UserContext, question: str) -> tuple[str, list[int]]:
    """The system prompt for a chat turn (facts plus the behaviors in ``store`` most relevant to the
    question) and the ids of those behaviors."""
    relevant = store.retrieve(ctx.user_id, query=question, k=CHAT_EVIDENCE, now=ctx.now) if not ctx.cold else []
    lines = behavior_lines([r.behavior for r in relevant])
    f = build_facts(ctx)
    system = prompts.render("chat", short_top=_names(f.short_top) or ["nothing yet"],
                            long_top=_names(f.long_top) or ["nothing yet"], rising=f.rising, fading=f.fading,
                            relevant=lines)
    return system, [r.behavior.id for r in relevant]


def chat_reply(engine: LLMEngine, store: MemoryStore, ctx: UserContext, msgs: Sequence[Message], *,
               max_tokens: int) -> ChatReply:
    """One chat turn: the last user message in ``msgs`` answered from ``ctx``'s facts and the behaviors most
    relevant to it (their ids are the reply's evidence). A system message in ``msgs`` is replaced by Tide's."""
    system, evidence = chat_context(store, ctx, msgs[-1].content)
    [out] = engine.generate([GenerationRequest(
        messages=(Message(role="system", content=system), *[m for m in msgs if m.role != "system"]),
        max_tokens=max_tokens, stop=("\nUser:",))])
    text = out.text.strip()[:4000] or "I could not produce an answer from this user's memory."
    facts = build_facts(ctx)
    return ChatReply(text=text, evidence=evidence[:20], provenance=Provenance(
        engine=engine.description, model=engine.model_name,
        templates={"chat": prompts.version("chat")}, attempts=1,
        retrieval={"relevant": len(evidence), "n_behaviors": facts.n_behaviors},
        cold_start=ctx.cold, fallback="length" if out.finish_reason == "length" else None))
