"""The LSTM's optional item text input (``lstm+text`` / ``lstm+llm``)."""

from __future__ import annotations

import numpy as np

from eval import LSTMConfig, LSTMPredictor, leave_one_out
from eval._itemfeatures import ItemFeatures

TINY = dict(embedding_dim=16, hidden_dim=32, batch_size=32, max_epochs=2, patience=2, max_history=20,
            dropout=0.1, lr=5e-3, seed=0, device="cpu", progress=False)


def _features(split, seed: int = 0) -> ItemFeatures:
    rng = np.random.default_rng(seed)
    return ItemFeatures("text", tuple(split.item_ids), rng.normal(size=(len(split.item_ids), 8)).astype(np.float32))


def test_text_input_changes_scores_is_seeded_and_round_trips(sequential_synthetic, tmp_path) -> None:
    split = leave_one_out(sequential_synthetic[0])
    requests = split.requests(split.test_users[:6], "test")
    plain = LSTMPredictor(LSTMConfig(**TINY))
    a = LSTMPredictor(LSTMConfig(**TINY), "lstm+text", _features(split))
    b = LSTMPredictor(LSTMConfig(**TINY), "lstm+text", _features(split))
    for m in (plain, a, b):
        m.fit(split)
    assert a._net.text_proj is not None and plain._net.text_proj is None
    np.testing.assert_array_equal(a.score_all(requests), b.score_all(requests))
    assert not np.allclose(a.score_all(requests), plain.score_all(requests))
    again = LSTMPredictor.load(a.save(tmp_path / "lt"))
    assert again.name == "lstm+text"
    np.testing.assert_array_equal(again.score_all(requests), a.score_all(requests))
