"""Query context: circular time similarity, place distance, and their effect on profiles and retrieval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from memory_testkit import T0

from memory import (
    Behavior,
    ContextWeights,
    InvalidQueryError,
    Location,
    QueryContext,
    TideError,
    circular_similarity,
    context_factors,
    place_similarity,
)

WORK = Location(lat=48.2082, lon=16.3738, place="office")
HOME = Location(lat=48.2500, lon=16.4500, place="home")  # ~7 km from WORK


def test_circular_similarity_wraps_around():
    s = circular_similarity(np.array([23.0, 1.0, 12.0, 0.0, 6.0]), 0.0, 24.0)
    assert s[0] == pytest.approx(s[1])  # 23:00 and 01:00 are both one hour from midnight
    assert s[3] == pytest.approx(1.0) and s[2] == pytest.approx(0.0, abs=1e-12) and s[4] == pytest.approx(0.5)
    days = circular_similarity(np.array([6, 1, 3]), 0, 7.0)  # Sunday and Tuesday are Monday's neighbours
    assert days[0] == pytest.approx(days[1]) and days[0] > days[2]


def test_place_similarity_decays_with_distance_and_unknown_is_halfway():
    s = place_similarity(np.array([0.0, 1.0, 10.0, np.nan]), 1.0)
    assert s[0] == 1.0 and s[1] == pytest.approx(np.exp(-1)) and s[2] < 1e-4 and s[3] == 0.5


def _us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def test_context_factors_zero_weights_are_exactly_one():
    ts = np.array([_us(T0 + timedelta(hours=h)) for h in range(0, 48, 5)], dtype=np.int64)
    lat = np.where(np.arange(len(ts)) % 2, 48.2, np.nan)
    lon = np.where(np.arange(len(ts)) % 2, 16.4, np.nan)
    zero = ContextWeights(hour=0, weekday=0, place=0)
    bd = context_factors(ts, lat, lon, T0, (48.0, 16.0), zero)
    assert np.array_equal(bd.factor, np.ones(len(ts)))
    on = context_factors(ts, lat, lon, T0, (48.2, 16.4), ContextWeights())
    assert on.factor.max() <= 1.0 and on.factor.min() > 0.0
    assert np.isnan(on.distance_km[0]) and on.distance_km[1] == pytest.approx(0.0, abs=1e-9)


def test_query_context_rejects_bad_input():
    with pytest.raises(InvalidQueryError) as err:
        QueryContext(place=Location(place="the office"))  # no coordinates
    assert err.value.argument is None or "place" in str(err.value)
    with pytest.raises(InvalidQueryError):
        QueryContext(at=datetime(2024, 1, 1, 8))  # naive
    with pytest.raises(InvalidQueryError):
        QueryContext(time=False)  # nothing to weigh by
    with pytest.raises(TideError):
        QueryContext(place={"lat": 91.0, "lon": 0.0})  # out of range


def _habits(user: str) -> list[Behavior]:
    """Two weeks: news at work on weekday mornings, films at home at night (UTC)."""
    out = []
    start = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
    for day in range(14):
        d = start + timedelta(days=day)
        if d.weekday() < 5:
            out.append(Behavior(user_id=user, item_id=f"n{day}", action="read", timestamp=d + timedelta(hours=9),
                                text=f"morning news bulletin about the economy, part {day}", location=WORK,
                                attributes={"categories": ["news"]}))
        out.append(Behavior(user_id=user, item_id=f"f{day}", action="watch", timestamp=d + timedelta(hours=21),
                            text=f"a feature film, a thriller about a heist, part {day}", location=HOME,
                            attributes={"categories": ["film"]}))
    return out


NOW = datetime(2024, 3, 18, 8, 30, tzinfo=UTC)  # Monday morning after the two weeks


def test_absent_context_changes_nothing(store):
    store.add(_habits("h"))
    plain = store.profile("h", now=NOW)
    again = store.profile("h", now=NOW, context=None)
    assert plain.model_dump() == again.model_dump()
    assert np.array_equal(plain.short.vector, again.short.vector)
    r1 = store.retrieve("h", k=10, now=NOW, explain=True)
    r2 = store.retrieve("h", k=10, now=NOW, explain=True, context=None)
    assert [(r.behavior.id, r.score) for r in r1] == [(r.behavior.id, r.score) for r in r2]
    assert r1[0].components.context is None


def test_zero_context_weights_keep_the_profile(store):
    store.add(_habits("h"))
    plain = store.profile("h", now=NOW)
    zero = QueryContext(place=WORK, weights=ContextWeights(hour=0, weekday=0, place=0))
    ctx = store.profile("h", now=NOW, context=zero)
    assert [a.model_dump() for a in ctx.short.top_attributes] == [a.model_dump() for a in plain.short.top_attributes]
    assert np.allclose(ctx.short.vector, plain.short.vector, atol=1e-7)


def _share(profile, name):
    return next((a.share for a in profile.short.top_attributes if a.name == name), 0.0)


def test_context_moves_the_profile_towards_the_habit(store):
    store.add(_habits("h"))
    blind = store.profile("h", now=NOW)
    morning = store.profile("h", now=NOW, context=QueryContext(place=WORK))
    night = store.profile("h", now=NOW + timedelta(hours=13), context=QueryContext(place=HOME))
    assert _share(morning, "news") > 0.9 > _share(blind, "news")
    assert _share(night, "film") > 0.9
    # time alone and place alone each point the same way
    assert _share(store.profile("h", now=NOW, context=QueryContext()), "news") > _share(blind, "news")
    assert _share(store.profile("h", now=NOW + timedelta(hours=13), context=QueryContext(place=WORK, time=False)),
                  "news") > _share(blind, "news")
    # the context's own moment can differ from `now` (as-of for leakage and decay)
    at_night = store.profile("h", now=NOW, context=QueryContext(at=NOW + timedelta(hours=13)))
    assert _share(at_night, "film") > _share(blind, "film")


def test_retrieval_context_component_is_explained(store):
    store.add(_habits("h"))
    q = "something to read or watch"
    res = store.retrieve("h", q, k=5, now=NOW, explain=True, context=QueryContext(place=WORK))
    blind = store.retrieve("h", q, k=5, now=NOW)

    def news(rs):
        return sum(r.behavior.attributes["categories"] == ["news"] for r in rs)

    assert res[0].behavior.attributes["categories"] == ["news"] and news(res) > news(blind)
    c = res[0].components
    assert c.distance_km == pytest.approx(0.0, abs=1e-6) and c.place_similarity == pytest.approx(1.0)
    assert 0.0 < c.context <= 1.0 and 0.0 <= c.context_norm <= 1.0 and c.hour_similarity > 0.9
    night = store.retrieve("h", q, k=5, now=NOW + timedelta(hours=13), context=QueryContext(place=HOME))
    assert news(night) == 0
    with pytest.raises(InvalidQueryError):
        store.retrieve("h", q, now=NOW, context={"place": WORK})  # not a QueryContext
    with pytest.raises(InvalidQueryError):
        store.profile("h", now=NOW, context="work")


def test_context_weights_are_a_query_setting(store):
    store.add(_habits("h"))
    store.reconfigure(context=ContextWeights(hour=0, weekday=0, place=0))
    flat = store.profile("h", now=NOW, context=QueryContext(place=WORK))
    assert _share(flat, "news") == pytest.approx(_share(store.profile("h", now=NOW), "news"))
