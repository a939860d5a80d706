"""``tide ingest --strict`` and its exit codes, and ``tide keys create|list|revoke``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from memory import MemoryStore
from service import KeyStore
from tide.cli import app

runner = CliRunner()


def _file(tmp_path):
    future = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    rows = [{"user_id": "u1", "item_id": "a", "text": "Watched Alien", "timestamp": "1997-10-01T10:00:00Z"},
            {"user_id": "u1", "item_id": "b", "text": "Watched Heat", "timestamp": future},
            {"user_id": "u2", "item_id": "c", "text": "Watched Babe", "timestamp": 876000000}]
    f = tmp_path / "b.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return f


def test_a_future_row_is_rejected_and_the_rest_stored_exit_1(tmp_path):
    result = runner.invoke(app, ["ingest", str(_file(tmp_path)), "--store", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 1, result.output  # 1: some rows were rejected; the report is still on stdout
    report = json.loads(result.stdout)
    assert "1 row(s) rejected; the rest stored" in result.stderr
    assert report["stored"] == 2
    assert [(r["line"], r["field"]) for r in report["rejected"]] == [(2, "timestamp")]


def test_strict_refuses_the_whole_file(tmp_path):
    result = runner.invoke(app, ["ingest", str(_file(tmp_path)), "--store", str(tmp_path / "s"), "--strict"])
    assert result.exit_code == 1, result.output
    assert "nothing stored" in result.output
    assert "1 row(s) rejected; --strict: nothing stored" in result.stderr
    with MemoryStore.open(tmp_path / "s") as st:
        assert st.users() == []


def test_clean_file_exits_0(tmp_path):
    f = tmp_path / "ok.jsonl"
    f.write_text(json.dumps({"user_id": "u1", "text": "Watched Alien", "timestamp": 876000000}) + "\n")
    result = runner.invoke(app, ["ingest", str(f), "--store", str(tmp_path / "s"), "--strict"])
    assert result.exit_code == 0, result.output


def test_keys_create_list_revoke(tmp_path):
    store = tmp_path / "s"
    made = runner.invoke(app, ["keys", "create", "--name", "ann", "--user", "ann", "--user", "bo",
                               "--store", str(store), "--json"])
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)
    assert key["scope"] == ["ann", "bo"] and key["token"].startswith("tide_")
    found = KeyStore.for_store(store).lookup(key["token"])
    assert found is not None and found.allows("ann") and not found.allows("carl")
    assert key["token"] not in (store / "keys.db").read_bytes().decode("latin-1")  # stored hashed only
    listed = json.loads(runner.invoke(app, ["keys", "list", "--store", str(store), "--json"]).stdout)
    assert [k["key_id"] for k in listed] == [key["key_id"]] and "token" not in listed[0]
    assert runner.invoke(app, ["keys", "revoke", key["key_id"], "--store", str(store)]).exit_code == 0
    assert KeyStore.for_store(store).lookup(key["token"]).revoked_at is not None
    assert runner.invoke(app, ["keys", "revoke", "nope", "--store", str(store)]).exit_code == 1


def test_keys_create_needs_a_scope(tmp_path):
    assert runner.invoke(app, ["keys", "create", "--name", "x", "--store", str(tmp_path / "s")]).exit_code == 2
    assert runner.invoke(app, ["keys", "create", "--name", "x", "--admin", "--user", "a",
                               "--store", str(tmp_path / "s")]).exit_code == 2
