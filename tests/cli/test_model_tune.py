"""`tide model tune` and `tide eval --llm-model`: options and bad input (the tuning itself: tests/agent)."""

from __future__ import annotations

from typer.testing import CliRunner

from tide.cli import app

runner = CliRunner()


def test_model_tune_is_listed_with_its_options():
    assert "tune" in runner.invoke(app, ["model", "--help"]).output
    out = runner.invoke(app, ["model", "tune", "--help"]).output
    for opt in ("--kind", "--max-steps", "--budget-minutes", "--threads", "--json"):
        assert opt in out
    assert "--item-head" in runner.invoke(app, ["eval", "--help"]).output


def test_model_tune_refuses_an_unknown_kind(tmp_path):
    result = runner.invoke(app, ["model", "tune", "--kind", "bogus"])
    assert result.exit_code != 0 and "item-head or letters" in " ".join(result.output.split())


def test_model_tune_refuses_a_missing_dataset(tmp_path):
    result = runner.invoke(app, ["model", "tune", "--dataset", str(tmp_path / "nope")])
    assert result.exit_code == 1, result.output
    assert not list((tmp_path).glob("*"))


def test_eval_refuses_a_missing_llm_model(tmp_path):
    result = runner.invoke(app, ["eval", "--models", "pop,agent", "--llm-model", str(tmp_path / "nope"),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "not a model folder" in " ".join(result.output.split())
