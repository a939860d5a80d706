"""Adding, deduplicating, recent lists, retrieval against brute force, time and place filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from memory_testkit import T0, behavior, unit_rows

from memory import (
    Behavior,
    InvalidQueryError,
    MemoryConfig,
    MemoryStore,
    Retrieved,
    ScoringWeights,
    StoredBehavior,
)

DAY = timedelta(days=1)


def _brute_force(vecs, ts_days, weights, query, now_days, cfg: MemoryConfig, w: ScoringWeights):
    """Reference scoring in float64 numpy, independent of FAISS and of memory._scoring."""
    visible = np.flatnonzero(ts_days <= now_days)
    rel = vecs[visible].astype(np.float64) @ query.astype(np.float64)
    rec = 0.5 ** ((now_days - ts_days[visible]) / cfg.recency_half_life_days)
    imp = weights[visible].astype(np.float64)

    def mm(x):
        return np.ones_like(x) if x.max() - x.min() < 1e-12 else (x - x.min()) / (x.max() - x.min())

    total = w.relevance + w.recency + w.importance
    s = (w.relevance * mm(rel) + w.recency * mm(rec) + w.importance * mm(imp)) / total
    return visible, s


def test_add_returns_stable_ids_in_order_and_roundtrips(store, history):
    ids = store.add(history)
    assert ids == sorted(ids) and len(set(ids)) == len(history)
    got = store.recent("alice", k=len(history))
    assert all(isinstance(b, StoredBehavior) for b in got)
    by_id = {b.id: b for b in got}
    for i, original in zip(ids, history, strict=True):
        stored = by_id[i]
        assert stored.model_dump(exclude={"id"}) == original.model_dump()
        assert stored.timestamp.tzinfo is UTC


def test_duplicates_are_stored_once(tmp_path, store, history):
    first = store.add(history[:5])
    again = store.add([*history[:5], history[2], history[5]])
    assert again[:5] == first and again[5] == first[2]
    assert store.count("alice") == 6
    # Same (user, item, action, timestamp) with another text is still the same behavior.
    clash = Behavior(**{**history[0].model_dump(), "text": "different words"})
    assert store.add([clash]) == [first[0]]
    assert store.count("alice") == 6
    # Within one batch.
    twice = [behavior("bob", "x"), behavior("bob", "x")]
    a, b = store.add(twice)
    assert a == b and store.count("bob") == 1


def test_recent_is_newest_first_and_before_is_strict(store, history):
    store.add(history)
    got = store.recent("alice", k=3)
    assert [b.item_id for b in got] == ["m11", "m10", "m9"]
    cut = history[9].timestamp
    assert [b.item_id for b in store.recent("alice", k=2, before=cut)] == ["m8", "m7"]
    assert store.recent("alice", k=0) == [] and store.recent("nobody") == []
    with pytest.raises(InvalidQueryError):
        store.recent("alice", before=datetime(1998, 1, 1))
    with pytest.raises(InvalidQueryError):
        store.recent("alice", k=-1)


def test_users_and_count(store, history):
    assert store.users() == [] and store.count("alice") == 0
    store.add([*history[:3], behavior("bob", "b1")])
    assert store.users() == ["alice", "bob"]
    assert store.count("alice") == 3 and store.count("bob") == 1


def test_retrieval_matches_brute_force(tmp_path, embedder):
    rng = np.random.default_rng(7)
    n, users = 240, ["u0", "u1", "u2"]
    vecs = unit_rows(rng, n, embedder.dim)
    ts_days = rng.uniform(0, 400, n).round(3)
    weights = rng.choice([0.5, 1.0, 2.0, 4.0], n)
    owner = [users[i % 3] for i in range(n)]
    rows = [Behavior(user_id=owner[i], item_id=f"i{i}", action="rate", text=f"t{i}",
                     timestamp=T0 + timedelta(days=float(ts_days[i])), weight=float(weights[i])) for i in range(n)]
    cfg = MemoryConfig()
    with MemoryStore.open(tmp_path / "s", embedder=embedder, config=cfg) as s:
        ids = np.array(s.add(rows, embeddings=vecs))
        for user in users:
            mine = np.array([o == user for o in owner])
            for w in (ScoringWeights(), ScoringWeights(relevance=1, recency=0, importance=0),
                      ScoringWeights(relevance=0.5, recency=2, importance=0.25)):
                query = unit_rows(rng, 1, embedder.dim)[0]
                now_days = 300.0
                got = s.retrieve(user, query, k=15, now=T0 + timedelta(days=now_days), weights=w)
                vis, ref = _brute_force(vecs[mine], ts_days[mine], weights[mine], query, now_days, cfg, w)
                order = np.argsort(-ref, kind="stable")
                ref_ids, ref_scores = ids[mine][vis][order], ref[order]
                assert np.allclose([r.score for r in got], ref_scores[:15], atol=1e-5)
                boundary = ref_scores[14]
                certain = {int(i) for i, sc in zip(ref_ids[:15], ref_scores[:15], strict=True) if sc > boundary + 1e-5}
                assert certain <= {r.behavior.id for r in got}
                assert all(r.behavior.user_id == user for r in got)


def test_no_future_leakage(store, history):
    store.add(history)
    now = history[5].timestamp
    got = store.retrieve("alice", "a slapstick comedy", k=50, now=now)
    assert {r.behavior.item_id for r in got} == {f"m{i}" for i in range(6)}  # timestamp == now is visible
    assert store.retrieve("alice", k=5, now=T0 - DAY) == []
    assert store.profile("alice", now=now).n_behaviors == 6


def test_exclude_recent_is_disjoint_from_recent(store, history):
    store.add(history)
    for n in (0, 1, 3, 5):
        recent_ids = {b.id for b in store.recent("alice", k=n)}
        far = store.retrieve("alice", "a love story", k=50, exclude_recent=n, now=T0 + 100 * DAY)
        assert len(far) == len(history) - n
        assert recent_ids.isdisjoint({r.behavior.id for r in far})
    # with an earlier "now", the excluded ones are the newest visible at that time
    now = history[7].timestamp
    recent_then = {b.id for b in store.recent("alice", k=3, before=now + timedelta(microseconds=1))}
    far = store.retrieve("alice", k=50, exclude_recent=3, now=now)
    assert recent_then.isdisjoint({r.behavior.id for r in far}) and len(far) == 5


def test_query_forms(store, history):
    store.add(history)
    now = T0 + 20 * DAY
    by_text = store.retrieve("alice", "creatures invade a spaceship", k=3, now=now,
                             weights=ScoringWeights(relevance=1, recency=0, importance=0))
    assert by_text[0].behavior.text == "aliens attack a space station"
    vec = store.embedder.embed(["creatures invade a spaceship"])[0]
    by_vec = store.retrieve("alice", vec, k=3, now=now, weights=ScoringWeights(relevance=1, recency=0, importance=0))
    assert [r.behavior.id for r in by_vec] == [r.behavior.id for r in by_text]
    by_centroid = store.retrieve("alice", None, k=3, now=now)
    assert len(by_centroid) == 3 and all(isinstance(r, Retrieved) for r in by_centroid)
    for bad in ("   ", np.zeros(store.embedder.dim), np.ones(5), {"a": 1}):
        with pytest.raises(InvalidQueryError):
            store.retrieve("alice", bad, now=now)
    with pytest.raises(InvalidQueryError):
        store.retrieve("alice", now=datetime(1998, 1, 1))
    with pytest.raises(InvalidQueryError):
        store.retrieve(42, now=now)
    assert store.retrieve("nobody", "x", now=now) == []


def test_explain_components(store, history):
    store.add(history)
    got = store.retrieve("alice", "a quiet family drama", k=12, now=T0 + 30 * DAY, explain=True)
    assert all(r.components is not None for r in got)
    c = [r.components for r in got]
    assert max(x.relevance_norm for x in c) == pytest.approx(1.0) and min(x.relevance_norm for x in c) == 0.0
    for r in got:
        x = r.components
        assert r.score == pytest.approx((x.relevance_norm + x.recency_norm + x.importance_norm) / 3)
        assert x.recency == pytest.approx(0.5 ** (x.age_hours / 24 / 30))
    assert store.retrieve("alice", "x", k=2, now=T0 + 30 * DAY)[0].components is None


def _located(user, i, days, lat=None, lon=None, place=None):
    loc = {"lat": lat, "lon": lon, "place": place} if (lat is not None or place) else None
    return behavior(user, f"p{i}", days=days, text=f"visit {i}", location=loc)


def test_time_and_place_filters(store):
    rows = [
        _located("c", 0, 0.0, 48.2082, 16.3738, "Stephansdom"),  # Vienna, Saturday 12:00
        _located("c", 1, 1.25, 48.1986, 16.3417),  # Vienna west, Sunday 18:00
        _located("c", 2, 2.0, 47.0707, 15.4395),  # Graz, Monday 12:00
        _located("c", 3, 3.0, place="Home"),  # no coordinates, Tuesday
    ]
    store.add(rows)
    now = T0 + 10 * DAY
    ids = [b.id for b in sorted(store.recent("c", k=10), key=lambda b: b.id)]

    def got(**kw):
        return {r.behavior.id for r in store.retrieve("c", "x", k=10, now=now, **kw)}

    assert got(near=(48.2082, 16.3738, 5.0)) == {ids[0], ids[1]}
    assert got(near=(48.2082, 16.3738, 200.0)) == {ids[0], ids[1], ids[2]}
    assert got(since=T0 + DAY) == {ids[1], ids[2], ids[3]}
    assert got(until=T0 + DAY) == {ids[0]}
    assert got(since=T0 + DAY, until=T0 + 3 * DAY) == {ids[1], ids[2]}
    assert got(hours_of_day={18}) == {ids[1]}
    assert got(days_of_week={5, 6}) == {ids[0], ids[1]}  # T0 is a Saturday
    assert got(days_of_week={0}, hours_of_day={12}) == {ids[2]}
    for bad in ({"hours_of_day": {24}}, {"days_of_week": "mon"}, {"near": (100, 0, 1)}, {"near": "Vienna"},
                {"since": T0 + DAY, "until": T0}):
        with pytest.raises(InvalidQueryError):
            store.retrieve("c", "x", now=now, **bad)


def test_cached_user_is_extended_not_rebuilt(tmp_path, embedder):
    with MemoryStore.open(tmp_path / "x", embedder=embedder) as s:
        s.add([behavior("e", "a", days=0, text="first film")])
        s.retrieve("e", "film", now=T0 + 9 * DAY)
        (new,) = s.add([behavior("e", "b", days=1, text="second film")])
        got = s.retrieve("e", "film", k=5, now=T0 + 9 * DAY)
        assert new in {r.behavior.id for r in got}
        assert s.stats()["index_rebuilds"] == 1
        assert s.flush() == 1 and s.flush() == 0
    with MemoryStore.open(tmp_path / "x", embedder=embedder) as s:
        assert len(s.retrieve("e", "film", k=5, now=T0 + 9 * DAY)) == 2
        assert s.stats()["index_loads"] == 1 and s.stats()["index_rebuilds"] == 0
