"""The main job's runner: returns a typed result, prints nothing, checks options before any work."""

from __future__ import annotations

import json

import pytest

from eval import EvalError, MainConfig, MainResult, format_main, run_main


def test_run_main_returns_its_result_and_prints_nothing(tmp_path, capfd) -> None:
    cfg = MainConfig(models=["pop"], users=15, seed=2, out=tmp_path, n_bootstrap=20)
    result = run_main(cfg)
    captured = capfd.readouterr()
    assert captured.out == ""
    assert isinstance(result, MainResult) and result.config is cfg
    assert result.shown is None  # no memory/agent model: nobody to show
    assert list(result.evaluation.summary.models) == ["pop"] and len(result.evaluation.users) == 15
    assert {"load+split", "evaluate"} <= set(result.stage_seconds)
    main = json.loads((tmp_path / "main.json").read_text())
    assert main == json.loads(json.dumps(result.to_dict(), default=str))
    assert main["config"]["models"] == ["pop"] and main["shown"] == {}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["models"]["pop"]["metrics"]["hr@10"]["mean"] == result.evaluation.summary.models["pop"].metrics["hr@10"].mean
    text = format_main(result)
    assert "pop" in text and "HR@10" in text and "stage times" in text and " ±" in text
    assert main["item_head"] is None and main["testlike_item_head"] is None
    # an agent's run names both item-head models: the one that scored its candidates, the one its weights came from
    from dataclasses import replace
    from pathlib import Path

    with_heads = replace(result, config=cfg.model_copy(update={"models": ["pop", "agent"]}),
                         item_head=Path("/m/gemma-3-270m-item-head-aaa"),
                         testlike_item_head=Path("/m/gemma-3-270m-item-head-bbb"))
    lines = format_main(with_heads).splitlines()
    assert "agent's candidates scored by: the item-head model gemma-3-270m-item-head-aaa" in lines
    assert "its weights chosen with: the test-like item-head model gemma-3-270m-item-head-bbb" in lines
    assert with_heads.to_dict()["testlike_item_head"] == "/m/gemma-3-270m-item-head-bbb"


def test_an_unknown_user_to_show_fails_before_any_model_is_fitted(tmp_path) -> None:
    with pytest.raises(EvalError, match="not a test user"):
        run_main(MainConfig(models=["pop"], users=5, out=tmp_path, show_user="no-such-user"))
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.parametrize("value", [None, "none", "None", ""])
def test_none_shows_nobody(value) -> None:
    assert MainConfig(show_user=value).show_user is None
    assert MainConfig().show_user == "auto"


def test_auto_validation_is_testlike_on_leave_one_out_when_a_model_has_settings() -> None:
    assert MainConfig(models=["pop", "memory"]).testlike and MainConfig(models=["agent"]).testlike
    assert not MainConfig(models=["pop", "sasrec"]).testlike  # nothing to tune
    assert not MainConfig(models=["memory"], split="temporal").testlike
    assert not MainConfig(models=["memory"], validation="plain").testlike
    assert MainConfig(models=["pop"], validation="testlike").testlike


def test_testlike_validation_needs_leave_one_out(tmp_path) -> None:
    with pytest.raises(EvalError, match="leave-one-out"):
        run_main(MainConfig(models=["pop"], split="temporal", validation="testlike", users=5, out=tmp_path))


@pytest.mark.slow
def test_testlike_validation_tunes_models_fitted_without_the_last_training_item(tmp_path) -> None:
    cfg = MainConfig(models=["pop", "memory"], users=8, seed=1, out=tmp_path, n_bootstrap=20, show_user=None,
                     retriever=None, validation="testlike")
    result = run_main(cfg)
    tuning = result.evaluation.summary.models["memory"].tuning
    assert tuning.on == "test-like validation" and tuning.n_users == 8 and len(tuning.trials) == 20
    stages = result.stage_seconds
    assert stages["test-like tuning (fit + grid search, all)"] > 0 and "test-like memory+catalog" in stages
    assert not (tmp_path / "memory-testlike").exists()  # the tuning store is scratch
    # the real run applies the setting, fitted on the real split: no grid search of its own
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["models"]["memory"]["tuning"]["on"] == "test-like validation"
    assert "tune:memory" not in summary["stage_seconds"]  # (applying a preset is tested in test_runner.py)
    assert json.loads((tmp_path / "main.json").read_text())["testlike_item_head"] is None  # no agent, no head
