"""What reaches stdout and stderr when `tide` runs as a real process (a pipe, as in `tide ... | jq .`)."""

from __future__ import annotations

import json
import re

import pytest
from cli_testkit import run_tide, stderr_lines

#: a tqdm bar of the ingest loop, as written to a pipe: "ingest: 100%|██████████| 1/1 [00:00<00:00, ...]"
INGEST_PROGRESS = re.compile(r"^ingest:\s+\d+%\|.*\| \d+/\d+ \[")


def test_ingest_prints_the_report_on_stdout_and_only_progress_on_stderr(tmp_path, behaviors_file, tide_env):
    store = tmp_path / "store"
    proc = run_tide(["ingest", str(behaviors_file), "--store", str(store)], tide_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"stored 10 behaviors (3 users) in {store}"
    noise = [line for line in stderr_lines(proc.stderr) if not INGEST_PROGRESS.match(line)]
    assert noise == []
    assert any(INGEST_PROGRESS.match(line) for line in stderr_lines(proc.stderr))


def test_ingest_json_is_one_document_and_verbose_shows_library_logs(tmp_path, behaviors_file, tide_env):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(behaviors_file.read_text() + '{"user_id": "dan", "text": "", "timestamp": "x"}\n')
    proc = run_tide(["-v", "ingest", str(bad), "--store", str(tmp_path / "store"), "--json"], tide_env)
    assert proc.returncode == 1, proc.stderr  # 1: some rows were rejected (the rest stored, the report on stdout)
    report = json.loads(proc.stdout)
    assert report["stored"] == 10 and report["users"] == 3
    assert [r["line"] for r in report["rejected"]] == [11]
    # -v: INFO logs of the libraries (sentence-transformers loading its model) on stderr, never stdout
    assert any(line.startswith("INFO ") for line in stderr_lines(proc.stderr))


def test_a_user_facing_error_is_one_line_on_stderr_and_exit_1(tmp_path, tide_env):
    proc = run_tide(["ingest", str(tmp_path / "missing.jsonl"), "--store", str(tmp_path / "store")], tide_env)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert stderr_lines(proc.stderr) == [f"ingest failed: behavior file not found ({tmp_path / 'missing.jsonl'})"]


@pytest.mark.engine
def test_predict_json_on_the_real_engine_is_exactly_one_json_document(tmp_path, behaviors_file, items_file,
                                                                       tide_env):
    store = tmp_path / "store"
    assert run_tide(["ingest", str(behaviors_file), "--store", str(store)], tide_env).returncode == 0
    proc = run_tide(["predict", "--user", "ann", "--store", str(store), "--catalog", str(items_file),
                     "--k", "5", "--json"], tide_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = json.loads(proc.stdout)  # the whole of stdout: vLLM (and its engine-core process) wrote elsewhere
    assert pred["user_id"] == "ann"
    assert 1 <= len(pred["next_items"]) <= 5
    assert {it["item_id"] for it in pred["next_items"]} <= {f"m{n}" for n in range(1, 13)} - {"m1", "m2", "m3",
                                                                                             "m4", "m11"}
    # default verbosity: vLLM's INFO lines (dozens at engine start) are not shown
    assert not [line for line in stderr_lines(proc.stderr) if " INFO " in f" {line} "]
