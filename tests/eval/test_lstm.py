from __future__ import annotations

import numpy as np
import pytest

from eval import (
    LSTMConfig,
    LSTMPredictor,
    NotFittedError,
    PopularityPredictor,
    Predictor,
    leave_one_out,
    ranking_metrics,
)

TINY = dict(embedding_dim=16, hidden_dim=32, batch_size=32, max_epochs=12, patience=3, max_history=20,
            dropout=0.1, lr=5e-3, seed=0, device="cpu", progress=False)


@pytest.fixture(scope="module")
def trained(sequential_synthetic):
    dataset, _ = sequential_synthetic
    split = leave_one_out(dataset)
    model = LSTMPredictor(LSTMConfig(**TINY))
    model.fit(split)
    return split, model


def test_learns_planted_sequence_and_beats_popularity(trained) -> None:
    split, lstm = trained
    assert isinstance(lstm, Predictor)
    pop = PopularityPredictor()
    pop.fit(split)
    users = split.test_users
    requests = split.requests(users, "test")
    targets = [split.test[u].item_id for u in users]
    lstm_m = ranking_metrics([r.item_ids for r in lstm.rank(requests, 20)], targets)
    pop_m = ranking_metrics([r.item_ids for r in pop.rank(requests, 20)], targets)
    assert lstm_m["ndcg@10"].mean() > 2 * pop_m["ndcg@10"].mean()
    assert lstm_m["hr@10"].mean() > 0.5
    assert len(lstm.epochs) >= 1 and lstm.best_epoch is not None
    assert all(e["seconds"] > 0 for e in lstm.epochs)
    for req, ranking in zip(requests, lstm.rank(requests, 50), strict=True):
        assert not req.exclude & set(ranking.item_ids)


def test_score_all_shape_and_save_load_round_trip(trained, tmp_path) -> None:
    split, lstm = trained
    requests = split.requests(split.test_users[:17], "test")
    scores = lstm.score_all(requests)
    assert scores.shape == (17, len(split.item_ids)) and scores.dtype == np.float32
    folder = lstm.save(tmp_path / "lstm")
    again = LSTMPredictor.load(folder)
    assert again.config == lstm.config and again.epochs == lstm.epochs
    np.testing.assert_array_equal(again.score_all(requests), scores)
    assert [r.item_ids for r in again.rank(requests, 10)] == [r.item_ids for r in lstm.rank(requests, 10)]


def test_training_is_seeded(sequential_synthetic) -> None:
    dataset, _ = sequential_synthetic
    split = leave_one_out(dataset)
    cfg = LSTMConfig(**{**TINY, "max_epochs": 2})
    a, b = LSTMPredictor(cfg), LSTMPredictor(cfg)
    a.fit(split)
    b.fit(split)
    requests = split.requests(split.test_users[:5], "test")
    np.testing.assert_allclose(a.score_all(requests), b.score_all(requests), rtol=1e-5, atol=1e-6)


def test_unfitted_raises() -> None:
    with pytest.raises(NotFittedError):
        LSTMPredictor(LSTMConfig(progress=False)).score_all([])
