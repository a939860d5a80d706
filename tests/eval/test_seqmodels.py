"""Sequential models by name (what `tide eval --models` and the agent's candidate stage use)."""

from __future__ import annotations

import pytest

from eval import (
    RETRIEVER_PREFERENCE,
    SEQUENTIAL_MODELS,
    EvalError,
    LSTMPredictor,
    SASRecPredictor,
    build_sequential,
    pick_retriever,
)


def test_build_by_name(sequential_synthetic) -> None:
    dataset, _ = sequential_synthetic
    lstm = build_sequential("lstm", dataset, seed=3, max_epochs=2)
    sas = build_sequential("sasrec", dataset, seed=3)
    text = build_sequential("sasrec+text", dataset)
    assert isinstance(lstm, LSTMPredictor) and lstm.config.seed == 3 and lstm.config.max_epochs == 2
    assert isinstance(sas, SASRecPredictor) and sas.name == "sasrec" and sas.features is None
    assert text.name == "sasrec+text" and text.features is not None and text.features.dim == 384
    with pytest.raises(EvalError, match="unknown sequential model"):
        build_sequential("gru", dataset)
    assert set(RETRIEVER_PREFERENCE) == set(SEQUENTIAL_MODELS)


def test_pick_retriever() -> None:
    models = {"lstm": "L", "sasrec": "S"}
    assert pick_retriever(models, "auto") == "L"
    assert pick_retriever({"sasrec": "S", "lstm+text": "T"}, "auto") == "T"  # higher validation recall@20
    assert pick_retriever({"sasrec+llm": "SL", "sasrec": "S"}, "auto") == "S"  # a tie goes to the cheaper one
    assert pick_retriever(models, "sasrec") == "S"
    assert pick_retriever(models, None) is None and pick_retriever(models, "none") is None
    assert pick_retriever({}, "auto") is None
    with pytest.raises(EvalError, match="not among"):
        pick_retriever(models, "sasrec+llm")


def test_tide_eval_trains_sasrec_by_name_and_reports_auc(tmp_path) -> None:
    from eval import MainConfig, run_main

    cfg = MainConfig(models=["pop", "sasrec"], users=20, seed=1, out=tmp_path, lstm_epochs=1, n_bootstrap=20,
                     show_user=None)
    result = run_main(cfg)
    models = result.evaluation.summary.models
    assert list(models) == ["pop", "sasrec"]
    assert models["sasrec"].config["class"] == "SASRecPredictor" and models["sasrec"].config["seed"] == 1
    for name in models:
        auc = models[name].metrics["auc"]
        assert 0.5 < auc.mean <= 1.0 and auc.low <= auc.mean <= auc.high
    assert "AUC" in (tmp_path / "results.md").read_text()
