from __future__ import annotations

import numpy as np
import pytest

from eval._auc import auc_from_list, auc_from_rank, auc_from_scores


def test_auc_from_rank_hand_computed() -> None:
    assert auc_from_rank(1, 5) == 1.0
    assert auc_from_rank(5, 5) == 0.0
    assert auc_from_rank(3, 5) == 0.5
    assert auc_from_rank(2, 5) == pytest.approx(0.75)
    assert auc_from_rank(2.5, 6) == pytest.approx(0.7)


def test_auc_from_scores_excludes_consumed_and_counts_ties_half() -> None:
    scores = np.array([0.9, 0.1, 0.5, 0.7, 0.3])
    # target col 2 (0.5): above it 0.9 and 0.7, below 0.1 and 0.3 -> rank 3 of 5 -> 0.5
    assert auc_from_scores(scores, 2) == pytest.approx(0.5)
    # consumed col 0 removed: candidates 1,2,3,4 -> rank 2 of 4 -> 1 - 1/3
    assert auc_from_scores(scores, 2, [0]) == pytest.approx(2 / 3)
    tied = np.array([0.5, 0.5, 0.2])  # target col 1 ties col 0: rank 1.5 of 3 -> 0.75
    assert auc_from_scores(tied, 1) == pytest.approx(0.75)


def test_auc_from_truncated_list() -> None:
    assert auc_from_list(["a", "b", "c"], "b", 11) == pytest.approx(0.9)
    # missing: mean rank of the 8 unlisted candidates (positions 4..11) = 7.5 -> 1 - 6.5/10
    assert auc_from_list(["a", "b", "c"], "z", 11) == pytest.approx(0.35)


def test_auc_rejects_impossible_inputs() -> None:
    with pytest.raises(ValueError):
        auc_from_rank(1, 1)
    with pytest.raises(ValueError):
        auc_from_rank(6, 5)


def test_per_user_auc_uses_full_scores_when_available() -> None:
    from eval import Ranking, RankRequest
    from eval._auc import per_user_auc

    class Scorer:
        def score_all(self, requests):
            return np.array([[0.1, 0.4, 0.3, 0.2]] * len(requests))

    class ListOnly:
        pass

    items = ["a", "b", "c", "d"]
    req = [RankRequest("u", ["b"], [0], 1, frozenset({"b"}))]
    # candidates a, c, d; target d scores 0.2: c above, a below -> rank 2 of 3 -> 0.5
    assert per_user_auc(Scorer(), [Ranking(["c"], [0.3])], req, ["d"], items)[0] == pytest.approx(0.5)
    # list ["c"] without d: d sits mid-way in the 2 unlisted -> rank 2.5 of 3 -> 0.25
    assert per_user_auc(ListOnly(), [Ranking(["c"], [0.3])], req, ["d"], items)[0] == pytest.approx(0.25)
