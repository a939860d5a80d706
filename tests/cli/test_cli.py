"""The CLI surface that needs no engine: help, doctor without engine, ingest with a report of bad rows."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tide.cli import app

runner = CliRunner()


def test_help_lists_commands():
    out = runner.invoke(app, ["--help"]).output
    for cmd in ("doctor", "model", "eval", "ingest", "predict", "summarize", "chat"):
        assert cmd in out


def test_ingest_reports_rejected_rows_and_keeps_good_ones(tmp_path):
    rows = [
        {"user_id": "u1", "item_id": "a", "action": "view", "text": "Watched Alien", "timestamp": "1997-10-01T10:00:00Z"},
        {"user_id": "u1", "item_id": "b", "action": "view", "text": "", "timestamp": "1997-10-02T10:00:00Z"},
        {"user_id": "u2", "item_id": "c", "action": "view", "text": "Watched Heat", "timestamp": "not a time"},
        {"user_id": "u2", "item_id": "d", "action": "view", "text": "Watched Babe", "timestamp": 876000000},
    ]
    f = tmp_path / "b.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = runner.invoke(app, ["ingest", str(f), "--store", str(tmp_path / "store")])
    assert result.exit_code == 1, result.output  # 1: some rows were rejected (the rest stored, the report printed)
    assert "stored 2 behaviors (2 users)" in result.output
    assert "2 rejected" in result.output and "line 2" in result.output and "line 3" in result.output

    from memory import MemoryStore

    with MemoryStore.open(tmp_path / "store") as st:
        assert st.count("u1") == 1 and st.count("u2") == 1


def test_ingest_needs_exactly_one_source(tmp_path):
    assert runner.invoke(app, ["ingest", "--store", str(tmp_path / "s")]).exit_code == 2


def test_doctor_without_engine_reports_packages_faiss_and_the_cpus_bfloat16():
    from agent import default_dtype

    result = runner.invoke(app, ["doctor", "--no-engine", "--json"])
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert result.exit_code == (0 if all(r["ok"] for r in rows.values()) else 1)
    assert {"python", "torch", "faiss flavour", "gpu", "cpu bfloat16", "model", "vllm import"} <= rows.keys()
    assert rows["faiss flavour"]["ok"] and "engine" not in rows
    native = default_dtype("cpu") == "bfloat16"
    assert rows["cpu bfloat16"]["value"].startswith("native" if native else "emulated")
