"""Chronological splits: per-user leave-one-out and a global temporal cut."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from eval._data import Dataset
from eval._errors import SplitError
from eval._requests import RankRequest

__all__ = ["Split", "Target", "leave_one_out", "temporal_split", "without_last"]

Stage = Literal["val", "test"]


@dataclass(frozen=True, slots=True)
class Target:
    """A held-out next item and when it happened (epoch seconds, UTC)."""

    item_id: str
    timestamp: int


@dataclass(slots=True)
class Split:
    """Training sequences and held-out targets.

    For every user with a test target, the validation target (when present) directly precedes it in that
    user's history: ``history_before(u, "val") == train[u]`` and ``history_before(u, "test") ==
    train[u] + [val[u]]``. Training sequences never contain a validation or test target, nor anything
    after it.

    Attributes:
        kind: ``"loo"`` or ``"temporal"``.
        dataset: The dataset the split was cut from (catalogue, item text).
        train: Per-user training item ids, chronological, for every user that has any (fit on these).
        train_timestamps: Matching epoch seconds.
        val: Per-user validation targets.
        test: Per-user test targets; its keys are the evaluable users.
        cut: The temporal cut (epoch seconds), None for leave-one-out.
    """

    kind: Literal["loo", "temporal"]
    dataset: Dataset
    train: dict[str, list[str]]
    train_timestamps: dict[str, list[int]]
    val: dict[str, Target]
    test: dict[str, Target]
    cut: int | None = None
    _item_ids: list[str] = field(default_factory=list, repr=False)

    @property
    def item_ids(self) -> list[str]:
        """The catalogue, in score-matrix column order."""
        if not self._item_ids:
            self._item_ids = self.dataset.item_ids
        return self._item_ids

    @property
    def test_users(self) -> list[str]:
        """Users with a test target, in dataset order."""
        return list(self.test)

    def history_before(self, user_id: str, stage: Stage) -> tuple[list[str], list[int]]:
        """Return what the user did before the stage's target: ``(item_ids, timestamps)``, chronological.

        Raises:
            SplitError: If the user has no target at this stage.
        """
        targets = self.test if stage == "test" else self.val
        if user_id not in targets:
            raise SplitError(f"user {user_id!r} has no {stage} target in this {self.kind} split")
        items = list(self.train.get(user_id, []))
        stamps = list(self.train_timestamps.get(user_id, []))
        if stage == "test" and user_id in self.val:
            items.append(self.val[user_id].item_id)
            stamps.append(self.val[user_id].timestamp)
        return items, stamps

    def target(self, user_id: str, stage: Stage) -> Target:
        """The held-out item of a user at a stage."""
        targets = self.test if stage == "test" else self.val
        if user_id not in targets:
            raise SplitError(f"user {user_id!r} has no {stage} target in this {self.kind} split")
        return targets[user_id]

    def request(self, user_id: str, stage: Stage) -> RankRequest:
        """Build the ranking request for one user at one stage (history before the target, consumed set)."""
        items, stamps = self.history_before(user_id, stage)
        target = self.target(user_id, stage)
        return RankRequest(
            user_id=user_id,
            history=items,
            history_timestamps=stamps,
            now=target.timestamp,
            exclude=frozenset(items),
        )

    def requests(self, user_ids: list[str], stage: Stage) -> list[RankRequest]:
        """``request`` for many users."""
        return [self.request(u, stage) for u in user_ids]


def leave_one_out(dataset: Dataset, *, min_train: int = 1) -> Split:
    """Per-user chronological leave-one-out: last item = test, second-to-last = validation, rest = train.

    Args:
        dataset: Source data; sequences are already stable-sorted by timestamp.
        min_train: Users with fewer than ``min_train + 2`` events get no targets (their events all train).

    Returns:
        The split; every user with at least ``min_train + 2`` events is a test user.
    """
    train: dict[str, list[str]] = {}
    stamps: dict[str, list[int]] = {}
    val: dict[str, Target] = {}
    test: dict[str, Target] = {}
    for uid, events in dataset.sequences.items():
        if len(events) >= min_train + 2:
            body = events[:-2]
            val[uid] = Target(events[-2].item_id, events[-2].timestamp)
            test[uid] = Target(events[-1].item_id, events[-1].timestamp)
        else:
            body = events
        if body:
            train[uid] = [e.item_id for e in body]
            stamps[uid] = [e.timestamp for e in body]
    if not test:
        raise SplitError("no user has enough events for leave-one-out")
    return Split("loo", dataset, train, stamps, val, test)


def temporal_split(
    dataset: Dataset, *, cut: datetime | int | None = None, quantile: float = 0.9, min_history: int = 2
) -> Split:
    """Global temporal split at one cut time.

    Test users are users with at least one event at or after the cut and at least ``min_history`` events
    before it. Their target is their first event at/after the cut; their last pre-cut event is the
    validation target (held out of training like in leave-one-out). Training data is every user's events
    strictly before the cut, so nothing after the cut reaches a model or a memory (the leakage Ji et al.
    2023 describe for leave-one-out).

    Args:
        dataset: Source data.
        cut: The cut time (tz-aware datetime or epoch seconds). Default: the ``quantile`` of all timestamps.
        quantile: Used only when ``cut`` is None.
        min_history: Minimum pre-cut events of a test user (>= 2: one validation target plus history).

    Returns:
        The split.

    Raises:
        SplitError: If ``cut`` is a naive datetime or no user qualifies.
    """
    if min_history < 2:
        raise SplitError("min_history must be >= 2 (validation target plus at least one history item)")
    if cut is None:
        all_ts = np.fromiter((e.timestamp for e in dataset.interactions), dtype=np.int64)
        cut_s = int(np.quantile(all_ts, quantile, method="higher"))
    elif isinstance(cut, datetime):
        if cut.tzinfo is None:
            raise SplitError("temporal cut must be a tz-aware datetime")
        cut_s = int(cut.timestamp())
    else:
        cut_s = int(cut)
    train: dict[str, list[str]] = {}
    stamps: dict[str, list[int]] = {}
    val: dict[str, Target] = {}
    test: dict[str, Target] = {}
    for uid, events in dataset.sequences.items():
        before = [e for e in events if e.timestamp < cut_s]
        after = [e for e in events if e.timestamp >= cut_s]
        if after and len(before) >= min_history:
            test[uid] = Target(after[0].item_id, after[0].timestamp)
            val[uid] = Target(before[-1].item_id, before[-1].timestamp)
            before = before[:-1]
        if before:
            train[uid] = [e.item_id for e in before]
            stamps[uid] = [e.timestamp for e in before]
    if not test:
        raise SplitError(f"no user has >= {min_history} events before and one after the cut {cut_s}")
    return Split("temporal", dataset, train, stamps, val, test, cut=cut_s)


def without_last(dataset: Dataset, n: int = 1) -> Dataset:
    """``dataset`` with each user's last ``n`` events removed (a user left with none is dropped).

    ``leave_one_out(without_last(ds))`` is a *test-like validation* of ``leave_one_out(ds)``: its training
    sequences lack each user's last training item (its validation target) and its test target is the real
    validation item, predicted after the whole real training sequence. A model fitted on it is, at that
    test target, where a model fitted on the real split is at the real test target: the newest item of the
    history is one it never trained on. (On the real validation target the newest item is the last training
    item, which trained models were fitted to predict from the same context; that inflates them against
    untrained scorers, and any fusion weight chosen there; scripts/retriever_mix.py.)

    Raises:
        SplitError: ``n`` < 1.
    """
    if n < 1:
        raise SplitError(f"without_last: n must be >= 1, got {n}")
    sequences = {u: seq[:-n] for u, seq in dataset.sequences.items() if len(seq) > n}
    kept = {id(e) for seq in sequences.values() for e in seq}
    return Dataset(name=dataset.name, items=dataset.items, users=dataset.users,
                   interactions=[e for e in dataset.interactions if id(e) in kept], sequences=sequences,
                   meta={**dataset.meta, "without_last": n})
