from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eval import Dataset, Split, SplitError, leave_one_out, temporal_split, without_last


def test_loo_targets_are_last_two_and_train_precedes_them(ml100k: Dataset, ml100k_loo: Split) -> None:
    split = ml100k_loo
    assert len(split.test) == 943 and len(split.val) == 943
    assert sum(len(v) for v in split.train.values()) == 100_000 - 2 * 943
    for uid, seq in ml100k.sequences.items():
        assert split.test[uid].item_id == seq[-1].item_id
        assert split.val[uid].item_id == seq[-2].item_id
        assert split.train[uid] == [e.item_id for e in seq[:-2]]
        # No training event at or after the targets' positions; times never exceed the target's.
        assert max(split.train_timestamps[uid]) <= split.val[uid].timestamp <= split.test[uid].timestamp
        assert split.test[uid].item_id not in split.train[uid]


def test_loo_history_before_and_requests(ml100k_loo: Split) -> None:
    uid = ml100k_loo.test_users[0]
    hist_val, ts_val = ml100k_loo.history_before(uid, "val")
    hist_test, ts_test = ml100k_loo.history_before(uid, "test")
    assert hist_test == hist_val + [ml100k_loo.val[uid].item_id]
    assert ts_test[-1] == ml100k_loo.val[uid].timestamp
    req = ml100k_loo.request(uid, "test")
    assert req.now == ml100k_loo.test[uid].timestamp
    assert req.exclude == frozenset(hist_test)
    assert ml100k_loo.test[uid].item_id not in req.exclude
    with pytest.raises(SplitError):
        ml100k_loo.history_before("no-such-user", "test")


def test_temporal_split_has_nothing_after_the_cut(ml100k: Dataset) -> None:
    split = temporal_split(ml100k, quantile=0.9)
    assert split.cut is not None and split.test
    for uid, stamps in split.train_timestamps.items():
        assert all(ts < split.cut for ts in stamps), uid
    for uid, target in split.test.items():
        events = ml100k.sequences[uid]
        after = [e for e in events if e.timestamp >= split.cut]
        assert target.item_id == after[0].item_id and target.timestamp >= split.cut
        assert split.val[uid].timestamp < split.cut
        hist, ts = split.history_before(uid, "test")
        assert all(t < split.cut for t in ts)
        assert hist == [e.item_id for e in events if e.timestamp < split.cut]
    # Non-test users still contribute their pre-cut events to training.
    assert set(split.train) - set(split.test)


def test_temporal_split_accepts_datetime_and_rejects_naive(ml100k: Dataset) -> None:
    cut = datetime(1998, 3, 1, tzinfo=UTC)
    split = temporal_split(ml100k, cut=cut)
    assert split.cut == int(cut.timestamp())
    with pytest.raises(SplitError):
        temporal_split(ml100k, cut=datetime(1998, 3, 1))
    with pytest.raises(SplitError):
        temporal_split(ml100k, cut=0)  # nobody has history before 1970


def test_without_last_gives_a_test_like_validation(ml100k: Dataset, ml100k_loo: Split) -> None:
    short = leave_one_out(without_last(ml100k))
    assert sum(len(s) for s in without_last(ml100k).sequences.values()) == 100_000 - 943
    assert len(without_last(ml100k).interactions) == 100_000 - 943
    for uid in ml100k_loo.test_users:
        # its test target is the real validation item, after the whole real training sequence ...
        assert short.test[uid] == ml100k_loo.val[uid]
        assert short.request(uid, "test").history == ml100k_loo.train[uid]
        # ... and its training sequences lack the real training sequence's last item
        assert short.train[uid] == ml100k_loo.train[uid][:-1]
        assert short.val[uid].item_id == ml100k_loo.train[uid][-1]
    assert len(ml100k.sequences[uid]) == len(without_last(ml100k).sequences[uid]) + 1  # the input is untouched
    assert uid not in without_last(ml100k, n=len(ml100k.sequences[uid])).sequences
    with pytest.raises(SplitError, match="n must be"):
        without_last(ml100k, n=0)
