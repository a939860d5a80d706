"""Reading one user's memory for a prediction: recent window, long-range relevant history, profile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from memory import MemoryStore, Profile, QueryContext, Retrieved, StoredBehavior

from ._feedback import is_feedback, signal_of

__all__ = ["UserContext", "behavior_lines", "load_context", "prompt_behaviors", "prompt_history", "query_context"]

#: memory filters are "strictly before"; a hair past `now` keeps what happened at `now` itself
_EPSILON = timedelta(microseconds=1)


@dataclass
class UserContext:
    user_id: str
    now: datetime
    recent: list[StoredBehavior]
    long_range: list[Retrieved]
    profile: Profile
    history: list[str] = field(default_factory=list)  # consumed item ids, chronological
    exclude: frozenset[str] = frozenset()
    #: the query context (time of day, weekday, place) the profile and long-range behaviors were read for
    query: QueryContext | None = None
    #: the user's feedback behaviors up to ``now`` (like/dislike/skip/consumed), oldest first
    feedback: list[StoredBehavior] = field(default_factory=list)

    @property
    def cold(self) -> bool:
        return not self.recent

    def evidence_ids(self) -> list[int]:
        """Behavior ids in prompt order: [1] is the oldest recent behavior, then the long-range ones."""
        return [b.id for b in reversed(self.recent)] + [r.behavior.id for r in self.long_range]


def load_context(store: MemoryStore, user_id: str, now: datetime | None, n_recent: int, n_long: int,
                 history: Sequence[str] | None = None, exclude: Sequence[str] | None = None,
                 query: QueryContext | None = None) -> UserContext:
    """Read what a prediction needs; ``history``/``exclude`` default to the user's item ids in memory.

    ``now=None`` means "as of the user's newest behavior" (wall clock for a user with none): a prediction
    is about what comes after the last thing we know, and decay is measured from there. Pass ``now``
    explicitly to let time since the last behavior count.

    ``query`` makes the profile and the long-range behaviors context-aware (``memory.QueryContext``);
    ``None`` reads them exactly as without context. When ``history`` is read from memory, feedback behaviors
    are collected too: disliked and skipped items are excluded but do not count as history (they anchor no
    item-to-item transitions). A caller that passes ``history`` (the evaluation harness) gets no feedback.
    """
    if now is None:
        newest = store.recent(user_id, k=1)
        now = newest[0].timestamp if newest else datetime.now(UTC)
    recent = store.recent(user_id, k=n_recent, before=now + _EPSILON)
    long_range = (store.retrieve(user_id, query=None, k=n_long, now=now, exclude_recent=n_recent, context=query)
                  if recent else [])
    profile = store.profile(user_id, now=now, context=query)
    feedback: list[StoredBehavior] = []
    seen: list[str] = []
    if history is None:
        everything = list(reversed(store.recent(user_id, k=max(1, store.count(user_id)), before=now + _EPSILON)))
        feedback = [b for b in everything if is_feedback(b.action)]
        seen = [b.item_id for b in everything if b.item_id]
        history = [b.item_id for b in everything if b.item_id and signal_of(b.action) not in ("dislike", "skip")]
    excl = frozenset(exclude) if exclude is not None else frozenset(seen or history)
    return UserContext(user_id, now, recent, long_range, profile, list(history), excl, query, feedback)


def query_context(now: datetime | None, place: object = None, *, use_time: bool = True) -> QueryContext | None:
    """The query context of a prediction asked at ``now`` and ``place``: time of day and weekday when ``now``
    is given (and ``use_time``), distance when ``place`` is; ``None`` when neither (no context at all).

    Raises:
        FeedbackError: ``place`` is not a place with valid coordinates.
        memory.InvalidQueryError: ``now`` is naive.
    """
    from ._feedback import to_location

    loc = to_location(place)
    timed = use_time and now is not None
    if not timed and loc is None:
        return None
    return QueryContext(at=now if timed else None, place=loc, time=timed)


def behavior_lines(behaviors: Sequence[StoredBehavior], start: int = 1, time_format: str = "%Y-%m-%d"
                   ) -> list[dict[str, object]]:
    """Numbered template lines (``idx``, ``when``, ``action``, ``text``; see ``_behavior.j2``), compact: a
    line's date is shown only where it differs from the line before, and its action only where the text
    does not already open with it (``rated`` + ``Rated "Alien" …``). Every prompt token costs prefill time.
    """
    out: list[dict[str, object]] = []
    last = None
    for n, b in enumerate(behaviors):
        when = b.timestamp.strftime(time_format)
        action = "" if b.text.lower().startswith(b.action.lower()) else b.action
        out.append({"idx": start + n, "when": "" if when == last else when, "action": action, "text": b.text})
        last = when
    return out


def prompt_behaviors(ctx: UserContext) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The numbered behavior lines for templates (recent oldest first, then long-range)."""
    recent = behavior_lines(list(reversed(ctx.recent)))
    long_range = behavior_lines([r.behavior for r in ctx.long_range], start=len(recent) + 1)
    return recent, long_range


def _shares(top: Sequence[object]) -> list[str]:
    return [f"{a.name} {round(100 * a.share)}%" for a in top[:4]]  # type: ignore[attr-defined]


def prompt_history(ctx: UserContext) -> dict[str, object]:
    """Template variables of the shared history block (``_history.j2``).

    Rank and interest prompts of one user start with the same text, so vLLM's prefix cache computes it once.
    """
    recent, long_range = prompt_behaviors(ctx)
    return {"recent": recent, "long_range": long_range, "short_shares": _shares(ctx.profile.short.top_attributes),
            "long_shares": _shares(ctx.profile.long.top_attributes),
            "context": ctx.query.describe(ctx.now) if ctx.query is not None else ""}
