from __future__ import annotations

import math

import numpy as np
import pytest

from eval import (
    METRICS,
    metrics_from_ranks,
    ranking_metrics,
    sample_negatives,
    sampled_rank_from_list,
    sampled_rank_from_scores,
)


def test_hand_cases() -> None:
    m = ranking_metrics([["a", "b", "c"], ["x", "t"], ["q"]], ["a", "t", "zz"])
    assert m["hr@1"].tolist() == [1.0, 0.0, 0.0]
    assert m["hr@5"].tolist() == [1.0, 1.0, 0.0]
    assert m["ndcg@5"].tolist() == pytest.approx([1.0, 1 / math.log2(3), 0.0])
    assert m["mrr@10"].tolist() == pytest.approx([1.0, 0.5, 0.0])
    deep = metrics_from_ranks([11.0, 10.0, 20.0, 21.0])
    assert deep["hr@10"].tolist() == [0, 1, 0, 0] and deep["hr@20"].tolist() == [1, 1, 1, 0]
    assert deep["mrr@10"].tolist() == pytest.approx([0, 0.1, 0, 0])
    with pytest.raises(ValueError):
        metrics_from_ranks([1.0], ["map@10"])


# ranx's numba kernels emit a type-safety notice while compiling; it is third-party noise.
@pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaTypeSafetyWarning")
def test_against_ranx_on_random_rankings() -> None:
    from ranx import Qrels, Run, evaluate

    rng = np.random.default_rng(0)
    items = [f"i{j}" for j in range(60)]
    rankings, targets, qrels, run = [], [], {}, {}
    for q in range(200):
        ranked = [items[j] for j in rng.permutation(60)[:30]]
        target = items[int(rng.integers(60))]  # sometimes absent from the top 30
        rankings.append(ranked)
        targets.append(target)
        qrels[f"q{q:04d}"] = {target: 1}
        run[f"q{q:04d}"] = {item: float(30 - pos) for pos, item in enumerate(ranked)}
    ours = ranking_metrics(rankings, targets, METRICS)
    names = {m: m.replace("hr@", "hit_rate@") for m in METRICS}
    theirs = evaluate(Qrels(qrels), Run(run), list(names.values()), return_mean=False)
    for ours_name, ranx_name in names.items():
        assert ours[ours_name] == pytest.approx(np.asarray(theirs[ranx_name]), abs=1e-9), ours_name


def test_sampled_ranks() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.1, 0.7])
    assert sampled_rank_from_scores(scores, 1, [0, 3]) == 2.0
    assert sampled_rank_from_scores(scores, 2, [1, 3]) == 2.0  # tie goes to the earlier column
    assert sampled_rank_from_scores(scores, 1, [2, 3]) == 1.0
    assert sampled_rank_from_list(["n1", "x", "t", "n2"], "t", ["n1", "n2", "n3"]) == (2.0, True)
    assert sampled_rank_from_list(["n1", "x"], "t", ["n1", "n2", "n3"]) == (4.0, False)


def test_sample_negatives_is_seeded_and_avoids_consumed() -> None:
    catalogue = [str(i) for i in range(50)]
    excludes = [frozenset({"1", "2"}), frozenset()]
    a = sample_negatives(catalogue, excludes, ["3", "4"], n=10, seed=1)
    assert a == sample_negatives(catalogue, excludes, ["3", "4"], n=10, seed=1)
    assert a != sample_negatives(catalogue, excludes, ["3", "4"], n=10, seed=2)
    assert all(len(x) == 10 == len(set(x)) for x in a)
    assert not {"1", "2", "3"} & set(a[0]) and "4" not in a[1]
