from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from eval import BEHAVIOR_COLUMNS, DataFormatError, load_behaviors_file


def test_jsonl_good_and_bad_rows(tmp_path) -> None:
    good = {"user_id": "u1", "item_id": "m1", "action": "watched", "text": "Watched Alien",
            "timestamp": "2024-03-01T20:15:00+01:00", "lat": 48.1, "lon": 11.5, "place": "Munich",
            "weight": 2, "attributes": {"device": "tv"}}
    lines = [
        json.dumps(good),
        json.dumps({"user_id": "u1", "text": "epoch row", "timestamp": 1700000000}),
        "",
        "{not json",
        json.dumps({"user_id": "u1", "text": "naive", "timestamp": "2024-03-01T20:15:00"}),
        json.dumps({"text": "no user", "timestamp": 1}),
        json.dumps({"user_id": "u2", "text": "x", "timestamp": 1, "lat": 10}),
        json.dumps({"user_id": "u2", "text": "x", "timestamp": 1, "lat": 100, "lon": 0}),
        json.dumps({"user_id": "u2", "text": "x", "timestamp": 1, "weight": -1}),
        json.dumps({"user_id": "u2", "text": "x", "timestamp": 1, "attributes": [1]}),
        json.dumps({"user_id": "u2", "text": "", "timestamp": 1}),
        json.dumps({"user_id": "u2", "text": "x", "timestamp": 1, "colour": "red"}),
        json.dumps([1, 2]),
    ]
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rows, rejected = load_behaviors_file(path)
    assert len(rows) == 2
    first = rows[0]
    assert set(first) == set(BEHAVIOR_COLUMNS)
    assert first["timestamp"] == datetime(2024, 3, 1, 19, 15, tzinfo=UTC)
    assert (first["lat"], first["lon"], first["weight"], first["attributes"]) == (48.1, 11.5, 2.0, {"device": "tv"})
    assert rows[1]["action"] == "interaction" and rows[1]["weight"] == 1.0
    assert rows[1]["timestamp"] == datetime.fromtimestamp(1700000000, tz=UTC)
    reasons = {r.line: r.reason for r in rejected}
    assert sorted(reasons) == [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert "invalid JSON" in reasons[4]
    assert "no timezone" in reasons[5]
    assert "missing user_id" in reasons[6]
    assert "together" in reasons[7]
    assert "lat" in reasons[8]
    assert "weight" in reasons[9]
    assert "attributes" in reasons[10]
    assert "missing text" in reasons[11]
    assert "unknown columns" in reasons[12]
    assert "not a JSON object" in reasons[13]


def test_csv_good_and_bad_rows(tmp_path) -> None:
    path = tmp_path / "b.csv"
    path.write_text(
        "user_id,item_id,action,text,timestamp,lat,lon,place,weight,attributes\n"
        'u1,m1,watched,"Alien, the film",2024-03-01T20:15:00Z,,,home,1.5,"{""a"": 1}"\n'
        "u1,m2,,text,yesterday,,,,,\n"
        "u1,m3,,text,1700000000,,,,,{bad\n"
        "u1,m4,,too,few\n"
    )
    rows, rejected = load_behaviors_file(path)
    assert len(rows) == 1
    assert rows[0]["text"] == "Alien, the film" and rows[0]["attributes"] == {"a": 1}
    assert rows[0]["timestamp"] == datetime(2024, 3, 1, 20, 15, tzinfo=UTC)
    assert [(r.line, r.reason.split()[0]) for r in rejected] == [(3, "unparseable"), (4, "attributes"), (5, "expected")]


def test_unknown_format_and_missing_file(tmp_path) -> None:
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(DataFormatError):
        load_behaviors_file(tmp_path / "x.txt")
    with pytest.raises(DataFormatError):
        load_behaviors_file(tmp_path / "missing.jsonl")
