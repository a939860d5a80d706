"""One policy for bad rows: every row-level failure (a future timestamp too) is a rejected row with its field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from eval import load_behaviors_file, validate_rows
from memory import Behavior


def _row(**kw):
    return {"user_id": "u1", "text": "Watched Alien.", "timestamp": "2020-01-01T00:00:00Z", **kw}


def test_future_timestamp_is_a_rejected_row_not_an_abort(tmp_path):
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [_row(), _row(timestamp=future), _row(item_id="m2")]) + "\n")
    rows, rejected = load_behaviors_file(path)
    assert [r["item_id"] for r in rows] == [None, "m2"]
    assert [(r.line, r.field) for r in rejected] == [(2, "timestamp")]
    assert "future" in rejected[0].reason


def test_rows_the_store_would_refuse_are_rejected_with_their_field(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("user_id,action,text,timestamp,lat,lon\n"
                    "u1,Rated,x,2020-01-01T00:00:00Z,,\n"      # action must be a lower-case token
                    "u1,rated,x,2020-01-01T00:00:00Z,91,0\n"    # lat out of range
                    "u1,rated,x,2020-01-01T00:00:00Z,1,\n"      # lat without lon
                    "u1,rated,x,2020-01-01T00:00:00Z,1,2\n")
    rows, rejected = load_behaviors_file(path)
    assert len(rows) == 1
    assert [(r.line, r.field) for r in rejected] == [(2, "action"), (3, "lat"), (4, "lon")]


def test_validate_rows_gives_behaviors_with_their_lines():
    good, rejected = validate_rows([_row(), "not an object", _row(user_id="x" * 129), _row(weight="abc"), _row()])
    assert [line for line, _ in good] == [1, 5]
    assert all(isinstance(b, Behavior) for _, b in good)
    assert [(r.line, r.field) for r in rejected] == [(2, None), (3, "user_id"), (4, "weight")]
