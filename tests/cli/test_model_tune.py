"""`tide model tune` and `tide eval --llm-model`: options and bad input (the tuning itself: tests/agent)."""

from __future__ import annotations

from typer.testing import CliRunner

from tide.cli import app

runner = CliRunner()


def _flat(output: str) -> str:
    """The output as one line, without the error box's borders (rich wraps long messages)."""
    return " ".join(output.replace("│", " ").split())


def test_model_tune_is_listed_with_its_options():
    assert "tune" in runner.invoke(app, ["model", "--help"]).output
    out = runner.invoke(app, ["model", "tune", "--help"]).output
    for opt in ("--kind", "--max-steps", "--budget-minutes", "--threads", "--model", "--train-dtype", "--config",
                "--json"):
        assert opt in out
    out = runner.invoke(app, ["eval", "--help"]).output
    assert "--item-head" in out and "--item-head-config" in out


def test_model_tune_refuses_an_unknown_kind(tmp_path):
    result = runner.invoke(app, ["model", "tune", "--kind", "bogus"])
    assert result.exit_code != 0 and "item-head or letters" in " ".join(result.output.split())


def test_model_tune_base_model_must_be_known_and_is_for_the_item_head():
    result = runner.invoke(app, ["model", "tune", "--model", "gpt-9"])
    assert result.exit_code == 2 and "unknown model" in _flat(result.output)
    result = runner.invoke(app, ["model", "tune", "--kind", "letters", "--model", "qwen2.5-coder-0.5b-instruct"])
    assert result.exit_code == 2 and "--model is for item-head" in _flat(result.output)


def test_model_tune_tunes_a_base_that_is_not_prepared_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TIDE_HOME", str(tmp_path))
    result = runner.invoke(app, ["model", "tune", "--model", "qwen2.5-coder-1.5b-instruct", "--max-steps", "1"])
    assert result.exit_code == 1, result.output
    assert "prepare the base model first" in _flat(result.output)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_model_tune_refuses_a_missing_dataset(tmp_path):
    result = runner.invoke(app, ["model", "tune", "--dataset", str(tmp_path / "nope")])
    assert result.exit_code == 1, result.output
    assert not list((tmp_path).glob("*"))


def test_eval_refuses_a_missing_llm_model(tmp_path):
    result = runner.invoke(app, ["eval", "--models", "pop,agent", "--llm-model", str(tmp_path / "nope"),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "not a model folder" in " ".join(result.output.split())


def test_model_tune_train_dtype_is_checked_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("TIDE_HOME", str(tmp_path))
    result = runner.invoke(app, ["model", "tune", "--train-dtype", "float16"])
    assert result.exit_code == 2 and "float32 or bfloat16" in _flat(result.output)
    result = runner.invoke(app, ["model", "tune", "--kind", "letters", "--train-dtype", "bfloat16"])
    assert result.exit_code == 2 and "--train-dtype and --config are for item-head" in _flat(result.output)
    assert not list(tmp_path.iterdir())


def test_item_head_config_is_checked_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("TIDE_HOME", str(tmp_path))
    for args, says in (
        (["model", "tune", "--config", "{item_ids: true}"], "not JSON"),
        (["model", "tune", "--config", "[1]"], "JSON object"),
        (["model", "tune", "--config", '{"bogus": 1}'], "not an item-head setting: bogus"),
        (["model", "tune", "--config", '{"rank": 0}'], "not an item-head setting: rank"),
        (["model", "tune", "--kind", "letters", "--config", '{"item_ids": true}'], "are for item-head"),
        (["model", "tune", "--train-dtype", "float32", "--config", '{"train_dtype": "bfloat16"}'], "once"),
        (["eval", "--item-head-config", '{"item_ids": 1.5}', "--out", str(tmp_path / "out")],
         "not an item-head setting: item_ids"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and says in _flat(result.output), (args, result.output)
    assert not list(tmp_path.iterdir())
