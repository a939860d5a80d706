from __future__ import annotations

from collections import Counter

import pytest

from eval import NotFittedError, PopularityPredictor, Predictor, Split


def test_counts_train_only_and_ranks_by_count(ml100k_loo: Split) -> None:
    pop = PopularityPredictor()
    assert isinstance(pop, Predictor)
    with pytest.raises(NotFittedError):
        pop.rank([], 10)
    pop.fit(ml100k_loo)
    expected = Counter(i for seq in ml100k_loo.train.values() for i in seq)
    counts = pop.counts
    assert {i: c for i, c in counts.items() if c} == dict(expected)
    requests = ml100k_loo.requests(ml100k_loo.test_users[:20], "test")
    rankings = pop.rank(requests, 20)
    for req, ranking in zip(requests, rankings, strict=True):
        assert len(ranking.item_ids) == 20
        assert not req.exclude & set(ranking.item_ids)
        assert ranking.scores == sorted(ranking.scores, reverse=True)
        # The best unconsumed item by count (ties by catalogue order) comes first.
        best = max((i for i in ml100k_loo.item_ids if i not in req.exclude), key=lambda i: (counts[i], -int(i)))
        assert ranking.item_ids[0] == best


def test_tiny_split_by_hand(ml100k) -> None:
    from eval import Dataset, Interaction, Item, leave_one_out

    items = {i: Item(i, i, None, (), i) for i in "abcd"}
    events = [Interaction("u1", "a", 1, 1), Interaction("u1", "b", 1, 2), Interaction("u1", "c", 1, 3),
              Interaction("u1", "d", 1, 4), Interaction("u2", "b", 1, 1), Interaction("u2", "a", 1, 2),
              Interaction("u2", "c", 1, 3), Interaction("u2", "d", 1, 4)]
    split = leave_one_out(Dataset("tiny", items, {}, events))
    pop = PopularityPredictor()
    pop.fit(split)
    assert pop.counts == {"a": 2, "b": 2, "c": 0, "d": 0}  # c, d are val/test targets: not counted
    [ranking] = pop.rank([split.request("u1", "val")], 10)
    assert ranking.item_ids == ["c", "d"]  # a, b consumed; c before d by catalogue order on a tie
