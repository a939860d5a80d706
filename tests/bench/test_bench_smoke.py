"""bench/ is a package whose numbers come out right: ratios and the engine table on given runs, each bench's
command line, and the engine workload rendered by the agent's own prompt builders. Nothing here times or
starts an engine (the benches themselves do that)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent import CHOICE_LABELS
from bench._harness import emit, format_table, median_ratio, mirrored, paired_ratio, tput
from bench._workload import TAXONOMY, interest_model, predict_prompts, rank_prompts
from bench.engine import summarize

ROOT = Path(__file__).resolve().parents[2]


def _run(seconds: float, n: int = 8, tokens: int = 800, cpu_s: float | None = None) -> dict:
    return {"seconds": seconds, "cpu_s": 2 * seconds if cpu_s is None else cpu_s, "inner_s": seconds * 0.99,
            "n": n, "tokens": tokens, "valid": n}


def test_paired_ratio_is_the_median_over_back_to_back_rounds():
    base = [_run(10.0), _run(20.0), _run(10.0)]
    other = [_run(5.0), _run(40.0), _run(8.0)]  # 2x, 0.5x and 1.25x the base's tokens/s
    ratio, each = paired_ratio(base, other, "tok/s")
    assert each == pytest.approx([2.0, 0.5, 1.25])
    assert ratio == pytest.approx(1.25)
    assert paired_ratio(base, other, "tok/CPU-s")[1] == pytest.approx([2.0, 0.5, 1.25])
    assert tput(_run(4.0, n=8, tokens=100)) == pytest.approx((2.0, 25.0))
    assert median_ratio([3.0, 1.0], [1.0, 2.0]) == (pytest.approx(1.75), pytest.approx([3.0, 0.5]))


def test_mirrored_runs_workers_in_mirrored_order(capsys):
    order = []

    class Fake:
        def __init__(self, name):
            self.name = name

        def call(self, cmd):
            order.append(self.name)
            return _run(1.0)

    runs = mirrored([Fake("a"), Fake("b")], {"op": "gen"}, rounds=3)
    assert order == ["a", "b", "b", "a", "a", "b"]
    assert {k: len(v) for k, v in runs.items()} == {"a": 3, "b": 3}


def test_format_table_prints_a_section_once():
    lines = format_table([("1 x", "m1", "v1"), ("1 x", "m2", "v2"), ("2 y", "m3", "v3")]).splitlines()
    assert lines[2].split() == ["1", "x", "m1", "v1"]
    assert lines[3].split() == ["m2", "v2"]
    assert lines[4].split() == ["2", "y", "m3", "v3"]


def _quick_raw() -> dict:
    """A --quick run's raw results with round numbers (the default engine is eager-cold)."""
    start = {"interpreter_s": 1.0, "import_s": 9.0, "construct_s": 30.0, "first_s": 5.0, "batch_s": 20.0,
             "to_first_answer_s": 45.0, "cli16_s": 60.0, "cpu_import_s": 10.0, "cpu_construct_s": 50.0,
             "cpu_first_s": 8.0, "cpu_batch_s": 30.0, "batch_valid": 16, "batch_n": 16}
    score = {**_run(8.0, n=8, tokens=0), "label_mass": 0.9, "best": ["A"] * 8}
    per = [{"ok": True, "attempts": 1, "reasons": []}] * 6 + [
        {"ok": True, "attempts": 2, "reasons": ["finish_reason=length after 160 tokens"]},
        {"ok": False, "attempts": 3, "reasons": ["Invalid JSON: EOF"] * 3}]
    return {
        "load_start": "0.1 0.1 0.1", "load_end": "0.2 0.2 0.2", "default": "eager-cold",
        "starts": {"eager-cold": start}, "bindings": {}, "procs": {},
        "tcmalloc": {"note": "libtcmalloc absent", "path": None},
        "pairs": {"float32": {"batch": 8, "same_text": 7, "runs": {
            "eager-cold": [_run(10.0)], "float32": [_run(20.0)]}}},  # fp32 half as fast
        "bs1": [_run(4.0, n=1, tokens=100), _run(6.0, n=1, tokens=100)],
        "overhead": {"gen_batch": 8, "gen_warmup": _run(10.0),
                     "gen_pairs": [{"tide": _run(10.0), "raw": _run(8.0)}, {"tide": _run(9.0), "raw": _run(9.0)}],
                     "score_batch": 8, "score_warmup": score, "score_pairs": [{"tide": score, "raw": score}] * 2,
                     "score_newline": {**score, "label_mass": 0.5}, "rank_prompt_tail": "...\nAnswer:"},
        "validity": {"per": per, "seconds": 16.0}}


def test_engine_summary_of_a_quick_run_computes_ratios_and_rates():
    rows, summ = summarize(_quick_raw())
    assert summ["fp32_over_bf16"] == {"tok_s": 0.5, "req_s": 0.5, "tok_per_cpu_s": 0.5}
    # batch 1: median of 0.25 and 1/6 req/s; batch 8: the two gen pairs' tide runs and the fp32 pair's default
    assert summ["throughput"][1]["req_s"] == pytest.approx(round((0.25 + 1 / 6) / 2, 3))
    assert summ["throughput"][8]["runs"] == 3 and summ["throughput"][8]["req_s"] == pytest.approx(0.8)
    assert summ["validity"]["first_attempt_pct"] == 75.0 and summ["validity"]["within_2_retries_pct"] == 87.5
    assert summ["validity"]["first_failure_reasons"] == {"cut at max_tokens": 1, "invalid JSON": 1}
    assert summ["overhead_generate"]["ab_ratios"] == [1.25, 1.0]
    assert summ["overhead_generate"]["ab_median_ratio"] == pytest.approx(1.125)
    assert summ["score"]["label_mass_with_trailing_newline"] == 0.5
    assert "cli_default_wall" not in summ  # the verdict needs the compiled engine of a full run
    sections = [s for s, _, _ in rows]
    assert sections[0] == "1 start" and sections[-1] == "6 overhead"
    assert ("7 tcmalloc", "library", "libtcmalloc absent") in rows


def test_engine_verdict_weighs_compiled_start_against_its_speed():
    raw = _quick_raw()
    eager = raw["starts"].pop("eager-cold")
    compiled = {**eager, "construct_s": 40.0, "cpu_construct_s": 90.0, "cli16_s": 70.0}
    raw["starts"] = {"eager-cold": eager, "compiled-cold": compiled, "eager-warm": eager, "compiled-warm": compiled}
    raw["default"] = "eager-warm"
    for p in raw["pairs"].values():
        p["runs"]["eager-warm"] = p["runs"].pop("eager-cold")
    raw["pairs"]["compiled-warm"] = {"batch": 16, "same_text": 16, "runs": {  # compiled twice as fast running
        "eager-warm": [_run(10.0, n=16, tokens=1600)], "compiled-warm": [_run(5.0, n=16, tokens=1600)]}}
    _, summ = summarize(raw)
    assert summ["compiled_over_eager"] == {"tok_s": 2.0, "req_s": 2.0, "tok_per_cpu_s": 2.0}
    assert summ["cli_default_wall"] == "eager" and summ["cli_default_cpu"] == "eager"
    # batch 16 runs at 1.6 req/s and 0.8 req/CPU-s; compiled saves half of each request's time once running,
    # so its 10 s (40 CPU-s) longer construction pays off after 10 / 0.3125 (40 / 0.625) requests
    assert summ["compiled_break_even_requests_wall"] == 32
    assert summ["compiled_break_even_requests_cpu"] == 64


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["bench.engine", "bench.agent", "bench.memory", "bench.eval", "bench.itemhead_dtype",
                                    "bench.itemhead_train_dtype", "bench.itemhead_trunk_cache"])
def test_each_bench_runs_as_a_module(module):
    done = _bench(module, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_a_report_is_printed_and_written_where_asked(tmp_path, capsys):
    emit({"speedup": 1.28, "runs": [1, 2]}, tmp_path / "new" / "r.json")
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "new" / "r.json").read_text()) == {"speedup": 1.28, "runs": [1, 2]}
    emit({"a": 1}, None)
    assert json.loads(capsys.readouterr().out) == {"a": 1}


def test_engine_summarize_prints_a_finished_runs_table(tmp_path):
    path = tmp_path / "engine.json"
    path.write_text(json.dumps({"summary": None, "raw": _quick_raw()}))
    done = _bench("bench.engine", "--summarize", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == ["part", "metric", "value"]
    assert "float32 / bfloat16" in done.stdout


def test_engine_workload_is_the_agents_prompts():
    prompts = predict_prompts(4, seed=3)
    assert len(set(prompts)) == 4 and prompts == predict_prompts(4, seed=3)
    assert all(f"{TAXONOMY[0]} " in p for p in prompts)  # categories with their shares
    [rank] = rank_prompts(1, seed=7)
    assert rank.endswith("Answer:")  # the label is the next token
    assert all(f"\n{label}: " in rank for label in CHOICE_LABELS)
    answer = {"interests": [{"label": TAXONOMY[0], "confidence": "high", "horizon": "short", "evidence": [1]}]}
    interest_model().model_validate(answer)
