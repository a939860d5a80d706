"""Sequential models by name (what `tide eval --models` and the agent's candidate stage use)."""

from __future__ import annotations

import pytest

from eval import (
    RETRIEVER_MIX,
    RETRIEVER_PREFERENCE,
    SEQUENTIAL_MODELS,
    EvalError,
    LSTMPredictor,
    SASRecPredictor,
    build_sequential,
    pick_retriever,
    pick_retrievers,
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


def test_pick_retrievers() -> None:
    both = {"lstm+text": "T", "sasrec": "S", "lstm": "L"}
    assert pick_retrievers(both, "auto") == [(both[n], w) for n, w in RETRIEVER_MIX]
    assert pick_retrievers({"lstm+text": "T", "lstm": "L"}, "auto") == [("T", None)]  # the mix needs all its models
    assert pick_retrievers(both, "sasrec") == [("S", None)]  # one name: read at the agent's w_seq
    assert pick_retrievers(both, "sasrec:2, lstm") == [("S", 2.0), ("L", 1.0)]
    assert pick_retrievers(both, None) == [] and pick_retrievers(both, "none") == [] and pick_retrievers({}, "auto") == []
    for bad, match in (("sasrec:x", "must be a number"), ("sasrec:-1", ">= 0"), ("sasrec,sasrec", "twice"),
                       ("sasrec,gru", "not among")):
        with pytest.raises(EvalError, match=match):
            pick_retrievers(both, bad)


def test_sequential_mix_weights_normalised_sources() -> None:
    import numpy as np

    from eval import SequentialMix

    class Fixed:
        def __init__(self, name: str, rows: list[list[float]]):
            self.name, self.rows = name, np.array(rows)

        def score_all(self, requests):
            return self.rows[: len(requests)]

    a = Fixed("a", [[0.0, 5.0, 10.0], [1.0, 1.0, 1.0]])
    b = Fixed("b", [[-1.0, 1.0, 0.0], [3.0, 2.0, 1.0]])
    mix = SequentialMix([(a, 3.0), (b, 1.0)])
    assert mix.name == "a:3,b:1" and mix.total == 4.0
    got = mix.score_histories(["u", "v"], [["x"], ["y"]], [None, None])
    # a: [0, .5, 1] and a constant row -> zeros; b: [0, 1, .5] and [1, .5, 0]
    assert np.allclose(got, [[0.0, 0.625, 0.875], [0.25, 0.125, 0.0]])
    with pytest.raises(EvalError, match="positive sum"):
        SequentialMix([(a, 0.0)])


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
