"""The scoring function: decay values and ordering, normalisation, and pure-similarity equivalence."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from memory_testkit import T0, behavior, unit_rows

from memory import (
    GENERATIVE_AGENTS_HALF_LIFE_HOURS,
    MemoryConfig,
    MemoryStore,
    ScoringWeights,
    minmax,
    recency_decay,
    score,
)
from memory._scoring import rank


def test_recency_decay_halves_every_half_life():
    got = recency_decay(np.array([0.0, 10.0, 20.0, 30.0, -5.0]), 10.0)
    assert np.allclose(got, [1.0, 0.5, 0.25, 0.125, 1.0])


def test_generative_agents_equivalence():
    assert GENERATIVE_AGENTS_HALF_LIFE_HOURS == pytest.approx(138.28, abs=0.01)
    assert recency_decay(np.array([1.0]), GENERATIVE_AGENTS_HALF_LIFE_HOURS)[0] == pytest.approx(0.995)


def test_minmax():
    assert np.allclose(minmax(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    assert np.allclose(minmax(np.array([3.0, 3.0])), [1.0, 1.0])
    assert minmax(np.array([])).size == 0


def test_score_is_weighted_mean_of_normalised_components():
    bd = score(np.array([0.9, 0.1]), np.array([100.0, 0.0]), np.array([1.0, 3.0]),
               ScoringWeights(relevance=2, recency=1, importance=1), half_life_hours=100.0)
    assert np.allclose(bd.recency, [0.5, 1.0])
    assert np.allclose(bd.score, [(2 * 1 + 0 + 0) / 4, (0 + 1 + 1) / 4])


def test_weights_must_not_all_be_zero():
    with pytest.raises(ValueError):
        ScoringWeights(relevance=0, recency=0, importance=0)
    with pytest.raises(ValueError):
        MemoryConfig(short_half_life_days=10, long_half_life_days=5)


def test_decay_orders_hand_made_timestamps(store):
    # Same text => identical relevance; only age differs. Newer must rank higher, strictly by age.
    days = [0.0, 3.5, 1.0, 30.0, 7.25, 2.0]
    store.add([behavior("d", f"x{i}", days=d, text="the same film") for i, d in enumerate(days)])
    now = T0 + timedelta(days=31)
    got = store.retrieve("d", "the same film", k=10, now=now, explain=True)
    assert [r.behavior.timestamp for r in got] == sorted((T0 + timedelta(days=d) for d in days), reverse=True)
    rec = [r.components.recency for r in got]
    assert rec == sorted(rec, reverse=True)
    half = MemoryConfig().recency_half_life_days
    for r in got:
        age_days = (now - r.behavior.timestamp).total_seconds() / 86400
        assert r.components.recency == pytest.approx(0.5 ** (age_days / half), rel=1e-9)
    # A strong match from long ago can still beat a weak recent one when relevance weighs more.
    store.add([behavior("d", "old", days=-200, text="a documentary about deep sea fish")])
    top = store.retrieve("d", "deep sea fish documentary", k=1, now=now,
                         weights=ScoringWeights(relevance=3, recency=1, importance=0))
    assert top[0].behavior.item_id == "old"


def test_recency_weight_zero_is_pure_similarity_exactly(tmp_path, embedder):
    rng = np.random.default_rng(3)
    n = 150
    vecs = unit_rows(rng, n, embedder.dim)
    rows = [behavior("s", f"i{i}", days=float(rng.uniform(0, 500))) for i in range(n)]
    with MemoryStore.open(tmp_path / "s", embedder=embedder) as s:
        ids = np.array(s.add(rows, embeddings=vecs))
        ts = {i: r.timestamp for i, r in zip(ids.tolist(), rows, strict=True)}
        for _ in range(5):
            q = unit_rows(rng, 1, embedder.dim)[0]
            now = T0 + timedelta(days=600)
            pure = s.retrieve("s", q, k=n, now=now, explain=True,
                              weights=ScoringWeights(relevance=1, recency=0, importance=0))
            rel = np.array([r.components.relevance for r in pure])
            # Exactly the similarity order (ties: newest, then highest id) ...
            expected = sorted(pure, key=lambda r: (-r.components.relevance, -ts[r.behavior.id].timestamp(),
                                                   -r.behavior.id))
            assert [r.behavior.id for r in pure] == [r.behavior.id for r in expected]
            # ... of the true cosines ...
            by_id = dict(zip(ids.tolist(), vecs.astype(np.float64) @ q.astype(np.float64), strict=True))
            assert np.allclose(rel, [by_id[r.behavior.id] for r in pure], atol=1e-6)
            # ... and uniform importance (all weights 1) changes nothing either.
            uniform = s.retrieve("s", q, k=n, now=now, weights=ScoringWeights(relevance=1, recency=0, importance=1))
            assert [r.behavior.id for r in uniform] == [r.behavior.id for r in pure]
            # With recency on, the order differs (the test would be vacuous otherwise).
            mixed = s.retrieve("s", q, k=n, now=now, weights=ScoringWeights(relevance=1, recency=1, importance=0))
            assert [r.behavior.id for r in mixed] != [r.behavior.id for r in pure]


def test_rank_breaks_ties_newest_then_highest_id():
    bd = score(np.array([0.5, 0.5, 0.5]), np.zeros(3), np.ones(3), ScoringWeights(), 10.0)
    assert rank(bd, np.array([1, 2, 2]), np.array([10, 11, 12]), 3).tolist() == [2, 1, 0]


def test_importance_counts(store):
    store.add([behavior("w", "a", text="same", weight=1.0), behavior("w", "b", text="same", weight=5.0)])
    got = store.retrieve("w", "same", k=2, now=T0 + timedelta(days=1),
                         weights=ScoringWeights(relevance=1, recency=0, importance=1))
    assert got[0].behavior.item_id == "b"
    assert math.isclose(got[0].score, 1.0)
