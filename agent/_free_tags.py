"""Free tags: short labels the LLM proposes for a user's interests, each grounded in behaviors that carry it.

Taxonomy categories say "Drama"; a free tag says "1990s crime", "space opera" or "morning news". The LLM sees a
user's recent behaviors, numbered, and fills a bounded schema: at most ``max_tags`` tags of 2–32 characters,
each citing at most ``MAX_TAG_EVIDENCE`` of the shown numbers (an enum, so constrained decoding cannot cite a
number that was not shown). Then :func:`ground_free_tags` keeps only what the user's memory backs: cited ids
must be that user's behaviors, and a tag left with no such behavior is dropped. The survivors feed the interest
graph (``memory.interest_graph(..., free_tags=...)``) as tag nodes of source ``free``, origin ``llm``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

import prompts
from memory import MemoryStore, StoredBehavior

from ._context import behavior_lines
from ._engine import GenerationRequest, LLMEngine
from ._errors import EngineError, StructuredOutputError, UnknownUserError
from ._structured import DEFAULT_ATTEMPTS, generate_structured

__all__ = ["MAX_TAG_CHARS", "FreeTag", "FreeTagConfig", "free_tag_output_model", "ground_free_tags",
           "propose_free_tags", "render_free_tag_prompt", "user_free_tags"]

#: a free tag is a short label, not a sentence (the graph's ``memory`` side caps it the same way)
MAX_TAG_CHARS = 32
MIN_TAG_CHARS = 2
#: behaviors one tag may cite in the LLM's answer
MAX_TAG_EVIDENCE = 5
#: most tags one answer may hold
MAX_FREE_TAGS = 8
#: behavior ids one grounded tag keeps (a label proposed several times keeps the union, capped)
MAX_GROUNDED_EVIDENCE = 20
_SPACE = re.compile(r"\s+")


class FreeTagConfig(BaseModel):
    """How free tags are asked for.

    Attributes:
        max_tags: Most tags per user (the schema's bound).
        behaviors: How many of the user's most recent behaviors the prompt shows (and tags may cite).
        max_tokens: Generation budget per user (``finish_reason == "length"`` is a failed attempt).
        attempts: Tries per user, the first included.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_tags: int = Field(5, ge=1, le=MAX_FREE_TAGS)
    behaviors: int = Field(30, ge=1, le=200)
    max_tokens: int = Field(320, ge=32, le=4096)
    attempts: int = Field(DEFAULT_ATTEMPTS, ge=1, le=10)


class FreeTag(BaseModel):
    """One grounded free tag: its label and the ids of the user's behaviors that carry it."""

    model_config = ConfigDict(frozen=True)

    label: str = Field(min_length=MIN_TAG_CHARS, max_length=MAX_TAG_CHARS)
    evidence: list[int] = Field(min_length=1, max_length=MAX_GROUNDED_EVIDENCE)


def free_tag_output_model(n_behaviors: int, max_tags: int) -> type[BaseModel]:
    """The schema the LLM fills: ``{"tags": [{"label": str, "evidence": [n, ...]}, ...]}``, every field bounded;
    evidence numbers are the prompt's ``[n]`` (1..n_behaviors)."""
    return _free_tag_output_model(max(1, n_behaviors), max_tags)


@functools.lru_cache(maxsize=256)
def _free_tag_output_model(n_behaviors: int, max_tags: int) -> type[BaseModel]:
    ev_t: Any = Literal[tuple(range(1, n_behaviors + 1))]  # type: ignore[valid-type]
    tag = create_model(
        "LLMFreeTag",
        __config__=ConfigDict(extra="forbid"),
        label=(str, Field(min_length=MIN_TAG_CHARS, max_length=MAX_TAG_CHARS)),
        evidence=(list[ev_t], Field(max_length=MAX_TAG_EVIDENCE)),  # none cited: dropped by grounding, not reasked
    )
    return create_model(
        "LLMFreeTags",
        __config__=ConfigDict(extra="forbid"),
        tags=(list[tag], Field(min_length=1, max_length=max_tags)),  # type: ignore[valid-type]
    )


def render_free_tag_prompt(behaviors: Sequence[StoredBehavior], max_tags: int) -> str:
    """The free-tag prompt: the behaviors (oldest first, numbered from 1) and the task."""
    lines = behavior_lines(behaviors, time_format="%Y-%m-%d %H:%M")
    return prompts.render("free_tags", behaviors=lines, max_tags=max_tags, max_chars=MAX_TAG_CHARS)


def normalise_label(label: str) -> str:
    """One spelling per tag: lower case, single spaces, no surrounding punctuation."""
    return _SPACE.sub(" ", label).strip().strip(".,;:!?\"'").strip().lower()


def ground_free_tags(user_id: str, proposed: Iterable[tuple[str, Iterable[int]]],
                     behaviors: Iterable[StoredBehavior]) -> list[FreeTag]:
    """Keep the proposed tags that the user's memory backs.

    A cited id counts only when it is one of ``behaviors`` and that behavior is ``user_id``'s; a tag left with
    no counted id, or whose label is empty or too short/long once normalised, is dropped. A label proposed
    twice keeps the union of its evidence.

    Args:
        user_id: The user the tags describe.
        proposed: ``(label, behavior ids)`` pairs (e.g. the LLM's answer with numbers mapped to ids).
        behaviors: The behaviors the tags may rest on (those the prompt showed).

    Returns:
        The grounded tags, in proposal order.
    """
    own = {b.id for b in behaviors if b.user_id == user_id}
    merged: dict[str, list[int]] = {}
    for label, ids in proposed:
        name = normalise_label(label)
        kept = [int(i) for i in ids if int(i) in own]
        if not (MIN_TAG_CHARS <= len(name) <= MAX_TAG_CHARS) or not kept:
            continue
        merged[name] = list(dict.fromkeys([*merged.get(name, []), *kept]))
    return [FreeTag(label=name, evidence=ids[:MAX_GROUNDED_EVIDENCE]) for name, ids in merged.items()]


def propose_free_tags(engine: LLMEngine, users: Sequence[tuple[str, Sequence[StoredBehavior]]],
                      config: FreeTagConfig | None = None) -> list[list[FreeTag] | StructuredOutputError]:
    """Ask the LLM for each user's free tags (one batched, constrained generation) and ground them.

    Args:
        engine: The LLM.
        users: ``(user_id, behaviors)`` per user; the prompt shows the last ``config.behaviors`` of them,
            oldest first.
        config: Settings; ``None`` means ``FreeTagConfig()``.

    Returns:
        Per user, the grounded tags (possibly empty: every proposal was ungrounded, or the user has no
        behaviors), or the ``StructuredOutputError`` that ended that user's attempts.
    """
    cfg = config or FreeTagConfig()
    out: list[list[FreeTag] | StructuredOutputError] = [[] for _ in users]
    shown: list[list[StoredBehavior]] = []
    todo: list[int] = []
    for i, (_, rows) in enumerate(users):
        recent = sorted(rows, key=lambda b: (b.timestamp, b.id))[-cfg.behaviors:]
        shown.append(recent)
        if recent:
            todo.append(i)
    if not todo:
        return out
    models = [free_tag_output_model(len(shown[i]), cfg.max_tags) for i in todo]
    requests = [GenerationRequest(prompt=render_free_tag_prompt(shown[i], cfg.max_tags), max_tokens=cfg.max_tokens)
                for i in todo]
    results = generate_structured(engine, models, requests, attempts=cfg.attempts)
    for i, res in zip(todo, results, strict=True):
        if isinstance(res, StructuredOutputError):
            out[i] = res
            continue
        rows = shown[i]
        # numbers outside 1..n cannot pass the schema; mapping them stays defensive all the same
        proposed = [(t.label, [rows[e - 1].id for e in t.evidence if 1 <= e <= len(rows)]) for t in res.value.tags]
        out[i] = ground_free_tags(users[i][0], proposed, rows)
    return out



def user_free_tags(engine: LLMEngine | None, store: MemoryStore, user_id: str, now: datetime | None = None,
                   config: FreeTagConfig | None = None) -> list[FreeTag]:
    """One user's grounded free tags from their memory as of ``now`` (all of it when ``None``).

    Raises:
        EngineError: No engine.
        UnknownUserError: The user has no memory (as of ``now``).
        StructuredOutputError: No valid answer within ``config.attempts``.
    """
    if engine is None:
        raise EngineError("free tags need an engine")
    rows = [b for b in store.recent(user_id, k=max(1, store.count(user_id))) if now is None or b.timestamp <= now]
    if not rows:
        raise UnknownUserError(f"user {user_id!r} has no memory")
    [answer] = propose_free_tags(engine, [(user_id, rows)], config)
    if isinstance(answer, StructuredOutputError):
        raise answer
    return answer
