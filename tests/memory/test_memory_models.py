"""Bad input is refused with an error naming the field and the record; nothing of a rejected batch is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from memory_testkit import T0, behavior

from memory import Behavior, InvalidBehaviorError, Location

GOOD = {"user_id": "u1", "item_id": "i1", "action": "view", "text": "a film", "timestamp": T0}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timestamp": datetime(1997, 9, 20, 12, 0)}, "timestamp"),  # naive
        ({"timestamp": datetime.now(UTC) + timedelta(days=30)}, "timestamp"),  # far future
        ({"timestamp": "1997-09-20T12:00:00Z"}, "timestamp"),  # wrong type
        ({"text": ""}, "text"),
        ({"text": "   \n"}, "text"),
        ({"text": "x" * 100_000}, "text"),  # 100 kB
        ({"text": 42}, "text"),
        ({"weight": float("nan")}, "weight"),
        ({"weight": float("inf")}, "weight"),
        ({"weight": -1.0}, "weight"),
        ({"weight": "2"}, "weight"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "x" * 129}, "user_id"),
        ({"user_id": "bad\x07id"}, "user_id"),
        ({"user_id": 7}, "user_id"),
        ({"item_id": 7}, "item_id"),
        ({"action": "View!"}, "action"),
        ({"location": {"lat": 10.0}}, "location"),
        ({"location": {"lat": 100.0, "lon": 0.0}}, "location.lat"),
        ({"attributes": {"genres": [{"nested": 1}]}}, "attributes.genres"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_bad_fields_are_named(change, field):
    with pytest.raises(InvalidBehaviorError) as info:
        Behavior(**{**GOOD, **change})
    assert info.value.field == field
    assert field in str(info.value)


def test_timestamps_are_stored_as_utc():
    from zoneinfo import ZoneInfo

    b = Behavior(**{**GOOD, "timestamp": datetime(1998, 3, 1, 9, 0, tzinfo=ZoneInfo("America/New_York"))})
    assert b.timestamp.tzinfo is UTC and b.timestamp.hour == 14


def test_location_forms():
    assert Location(place="Vienna").has_coordinates is False
    assert Location(lat=48.2, lon=16.37).has_coordinates is True
    with pytest.raises(ValueError):
        Location()


def test_rejected_batch_stores_nothing(store):
    good = [behavior("u1", f"i{i}", days=i).model_dump() for i in range(3)]
    bad = {**good[0], "item_id": "i9", "timestamp": datetime(1997, 9, 20)}  # naive
    with pytest.raises(InvalidBehaviorError) as info:
        store.add([*good, bad])
    err = info.value
    assert (err.index, err.field) == (3, "timestamp")
    assert "record 3" in str(err) and "user_id='u1'" in str(err)
    assert store.count("u1") == 0 and store.users() == []


@pytest.mark.parametrize("record", [42, "text", None, ["u1", "view"]])
def test_wrong_record_types_are_named(store, record):
    with pytest.raises(InvalidBehaviorError) as info:
        store.add([behavior("u1", "i1"), record])
    assert info.value.index == 1
    assert store.users() == []


def test_nan_weight_in_batch_stores_nothing(store):
    rows = [behavior("u1", "i1").model_dump(), {**behavior("u2", "i2").model_dump(), "weight": float("nan")}]
    with pytest.raises(InvalidBehaviorError) as info:
        store.add(rows)
    assert (info.value.index, info.value.field) == (1, "weight")
    assert store.users() == []


def test_bad_precomputed_embeddings_store_nothing(store):
    import numpy as np

    vecs = np.ones((2, store.embedder.dim), dtype=np.float32)
    vecs[1, 0] = np.nan
    with pytest.raises(InvalidBehaviorError) as info:
        store.add([behavior("u1", "a"), behavior("u1", "b")], embeddings=vecs)
    assert (info.value.field, info.value.index) == ("embeddings", 1)
    with pytest.raises(InvalidBehaviorError):
        store.add([behavior("u1", "a")], embeddings=np.ones((1, 3)))
    assert store.count("u1") == 0


def test_single_behavior_instead_of_batch_is_refused(store):
    with pytest.raises(InvalidBehaviorError):
        store.add(behavior())


def test_model_validate_raises_the_same_error():
    with pytest.raises(InvalidBehaviorError) as info:
        Behavior.model_validate({**GOOD, "weight": float("nan")})
    assert info.value.field == "weight"
    assert Behavior.model_validate(GOOD).text == "a film"
