"""Profiles: decayed attribute shares on two horizons, rising/fading attributes, drift, time and place counts."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from memory_testkit import T0, behavior

from memory import MemoryConfig, MemoryStore, Profile


def _shift_history():
    # Half a year of dramas, then two weeks of comedies: interests moved.
    old = [behavior("p", f"d{i}", days=i * 6.0, text=f"a sombre drama number {i}", action="rate",
                    attributes={"genres": ["Drama"]}) for i in range(30)]
    new = [behavior("p", f"c{i}", days=180.0 + i, text=f"a silly comedy number {i}", action="rate",
                    attributes={"genres": "Comedy|Romance"}) for i in range(14)]
    return old + new


def test_profile_sees_interest_shift(store):
    store.add(_shift_history())
    now = T0 + timedelta(days=194)
    p = store.profile("p", now=now)
    assert p.n_behaviors == 44 and p.as_of == now
    assert p.short.top_attributes[0].name in {"Comedy", "Romance"}
    assert p.long.top_attributes[0].name == "Drama"
    for h in (p.short, p.long):
        shares = [a.share for a in h.top_attributes]
        assert sum(shares) == pytest.approx(1.0) and shares == sorted(shares, reverse=True)
        assert h.vector is not None and np.linalg.norm(h.vector) == pytest.approx(1.0, abs=1e-5)
        assert h.span_end == T0 + timedelta(days=193) and h.span_start <= h.span_end
        assert 1.0 <= h.effective_n <= 44
    assert p.short.span_start > p.long.span_start  # the short horizon rests on a shorter, newer window
    assert p.short.effective_n < p.long.effective_n
    assert {c.name for c in p.rising} == {"Comedy", "Romance"} and [c.name for c in p.fading] == ["Drama"]
    assert all(c.delta == pytest.approx(c.short_share - c.long_share) for c in p.rising + p.fading)
    assert 0.05 < p.drift <= 2.0
    # Before the shift, nothing has drifted much and the future is invisible.
    before = store.profile("p", now=T0 + timedelta(days=175))
    assert before.n_behaviors == 30 and before.drift < p.drift
    assert before.rising == [] or all(c.name == "Drama" for c in before.rising)


def test_constant_interest_has_no_drift(store):
    store.add([behavior("k", f"x{i}", days=i, text="the same documentary", attributes={"categories": ["Docs"]})
               for i in range(10)])
    p = store.profile("k", now=T0 + timedelta(days=20))
    assert p.drift == pytest.approx(0.0, abs=1e-5)
    assert [a.name for a in p.short.top_attributes] == ["Docs"] and p.rising == [] and p.fading == []


def test_same_session_history_lists_no_rising_or_fading(store, tmp_path, embedder):
    # A MovieLens-style rating session: 40 ratings in 40 minutes. Both horizons see the same shares up to
    # rounding, so nothing may be reported as rising or fading; a lower threshold shows the noise.
    genres = ["Drama", "Comedy", "Action", "Horror"]
    rows = [behavior("s", f"m{i}", days=i / 1440, text=f"film {i}", attributes={"genres": [genres[i % 4]]})
            for i in range(40)]
    store.add(rows)
    p = store.profile("s", now=T0 + timedelta(hours=1))
    assert p.n_behaviors == 40 and p.drift == pytest.approx(0.0, abs=1e-3)
    assert p.rising == [] and p.fading == []
    with MemoryStore.open(tmp_path / "loose", embedder=embedder, config=MemoryConfig(profile_min_shift=0.0)) as s:
        s.add(rows)
        noise = s.profile("s", now=T0 + timedelta(hours=1))
    assert noise.rising and all(0 < c.delta < 1e-3 for c in noise.rising)


def test_min_shift_is_configurable(tmp_path, embedder):
    rows = _shift_history()
    now = T0 + timedelta(days=194)
    with MemoryStore.open(tmp_path / "a", embedder=embedder, config=MemoryConfig(profile_min_shift=0.0)) as loose:
        loose.add(rows)
        all_moves = loose.profile("p", now=now)
    with MemoryStore.open(tmp_path / "b", embedder=embedder, config=MemoryConfig(profile_min_shift=0.6)) as strict:
        strict.add(rows)
        big_moves = strict.profile("p", now=now)
    assert {c.name for c in all_moves.rising} >= {"Comedy", "Romance"}
    assert all(abs(c.delta) > 0.6 for c in big_moves.rising + big_moves.fading)
    assert len(big_moves.rising) + len(big_moves.fading) < len(all_moves.rising) + len(all_moves.fading)


def test_time_and_place_counts(store):
    rows = [
        behavior("t", "a", days=0.0, location={"place": "Cinema Paradiso", "lat": 45.0, "lon": 9.0}),  # Sat 12h
        behavior("t", "b", days=7.0, location={"place": "Cinema Paradiso", "lat": 45.0, "lon": 9.0}),  # Sat 12h
        behavior("t", "c", days=1.25, location={"lat": 48.20821, "lon": 16.37381}),  # Sun 18h
        behavior("t", "d", days=2.0),  # Mon 12h, no place
    ]
    store.add(rows)
    p = store.profile("t", now=T0 + timedelta(days=10))
    assert sum(p.hour_of_day) == 4 and p.hour_of_day[12] == 3 and p.hour_of_day[18] == 1
    assert p.day_of_week == [1, 0, 0, 0, 0, 2, 1]
    assert [(pl.place, pl.count) for pl in p.top_places] == [("Cinema Paradiso", 2), ("48.21,16.37", 1)]
    assert p.top_places[0].lat == pytest.approx(45.0)


def test_empty_and_unknown_profiles(store):
    p = store.profile("ghost", now=T0)
    assert p.n_behaviors == 0 and p.drift is None and p.short.vector is None and p.short.top_attributes == []
    store.add([behavior("late", "x", days=5)])
    assert store.profile("late", now=T0).n_behaviors == 0


def test_profile_is_plain_json_without_vectors(store):
    store.add(_shift_history())
    p = store.profile("p", now=T0 + timedelta(days=194))
    data = json.loads(p.model_dump_json())
    assert "vector" not in data["short"] and data["short"]["top_attributes"][0]["share"] > 0
    assert data["as_of"].endswith("Z") and len(data["hour_of_day"]) == 24
    again = Profile.model_validate(data)
    assert again.drift == p.drift and again.short.vector is None


def test_horizons_come_from_config(tmp_path, embedder):
    cfg = MemoryConfig(short_half_life_days=2, long_half_life_days=30)
    with MemoryStore.open(tmp_path / "s", embedder=embedder, config=cfg) as s:
        s.add([behavior("h", "x", text="one film")])
        p = s.profile("h", now=T0 + timedelta(days=2))
        assert (p.short.half_life_days, p.long.half_life_days) == (2, 30)
        assert p.short.mass == pytest.approx(0.5) and p.long.mass == pytest.approx(0.5 ** (2 / 30))


def test_reconfigure_changes_horizons_without_reingest(store):
    store.add(_shift_history())
    now = T0 + timedelta(days=194)
    before = store.profile("p", now=now)
    new = store.reconfigure(short_half_life_days=60.0, long_half_life_days=400.0)
    assert new.short_half_life_days == 60.0 and store.config is new
    after = store.profile("p", now=now)
    assert after.short.half_life_days == 60.0 and after.long.half_life_days == 400.0
    # a slower short horizon remembers more of the dramas
    short_share = {a.name: a.share for a in after.short.top_attributes}
    assert short_share["Drama"] > {a.name: a.share for a in before.short.top_attributes}.get("Drama", 0.0)
    assert store.count("p") == 44


@pytest.mark.parametrize("changes", [{"attribute_keys": ("tags",)}, {"synchronous": "NORMAL"},
                                     {"short_half_life_days": 500.0}, {"no_such_setting": 1}])
def test_reconfigure_rejects_storage_settings_and_bad_values(store, changes):
    from memory import InvalidQueryError

    old = store.config
    with pytest.raises(InvalidQueryError) as info:
        store.reconfigure(**changes)
    assert list(changes)[0] in str(info.value)
    assert store.config is old


def test_short_half_life_on_an_old_history_does_not_underflow(store):
    # 1-hour half-life, history ending 3 years before `now`: every absolute decay is 0.0 in float64
    store.reconfigure(short_half_life_days=1 / 24, recency_half_life_days=1 / 24)
    store.add(_shift_history())
    now = T0 + timedelta(days=194 + 3 * 365)
    p = store.profile("p", now=now)
    assert p.short.mass == 0.0 and p.short.vector is not None
    assert p.short.top_attributes[0].name in {"Comedy", "Romance"}  # the newest behavior dominates
    assert 1.0 <= p.short.effective_n < 1.5
    assert p.long.top_attributes[0].name == "Drama"
    # retrieval still orders by recency among equally relevant behaviors
    got = store.retrieve("p", query=np.ones(384, dtype=np.float32), k=3, now=now, explain=True)
    assert [r.behavior.item_id for r in got][0] == "c13"
