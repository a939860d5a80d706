from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import eval._seqtrain as seqtrain
from eval import (
    Dataset,
    Interaction,
    Item,
    LSTMConfig,
    LSTMPredictor,
    NotFittedError,
    PopularityPredictor,
    Predictor,
    leave_one_out,
    ranking_metrics,
)
from eval._itemfeatures import ItemFeatures
from eval._sasrec import SASRecConfig, SASRecPredictor

TINY = dict(dim=32, blocks=1, heads=2, max_history=20, max_epochs=10, patience=3, dropout=0.1, lr=5e-3,
            batch_size=32, seed=0, device="cpu", progress=False)


@pytest.fixture(scope="module")
def trained(sequential_synthetic):
    dataset, _ = sequential_synthetic
    split = leave_one_out(dataset)
    model = SASRecPredictor(SASRecConfig(**TINY))
    model.fit(split)
    return split, model


def test_learns_planted_sequence_and_beats_popularity(trained) -> None:
    split, model = trained
    assert isinstance(model, Predictor)
    pop = PopularityPredictor()
    pop.fit(split)
    requests = split.requests(split.test_users, "test")
    targets = [split.test[u].item_id for u in split.test_users]
    ours = ranking_metrics([r.item_ids for r in model.rank(requests, 20)], targets)
    base = ranking_metrics([r.item_ids for r in pop.rank(requests, 20)], targets)
    assert ours["ndcg@10"].mean() > 2 * base["ndcg@10"].mean()
    assert ours["hr@10"].mean() > 0.5
    for req, ranking in zip(requests, model.rank(requests, 50), strict=True):
        assert not req.exclude & set(ranking.item_ids)


def test_save_load_round_trip_and_empty_history(trained, tmp_path) -> None:
    split, model = trained
    requests = split.requests(split.test_users[:7], "test")
    scores = model.score_all(requests)
    assert scores.shape == (7, len(split.item_ids)) and np.isfinite(scores).all()
    again = SASRecPredictor.load(model.save(tmp_path / "m"))
    assert again.config == model.config and again.epochs == model.epochs
    np.testing.assert_array_equal(again.score_all(requests), scores)
    empty = dataclasses.replace(requests[0], history=[], history_timestamps=[], exclude=frozenset())
    assert np.isfinite(model.score_all([empty])).all()


def _with_reserved_targets(dataset: Dataset) -> tuple[Dataset, set[str]]:
    """Every user's last two events become items nobody else ever consumed (their val and test targets)."""
    items = dict(dataset.items)
    events = []
    reserved = set()
    for user, seq in dataset.sequences.items():
        events.extend(seq)
        last = seq[-1].timestamp
        for n, tag in enumerate(("val", "test"), start=1):
            item_id = f"{tag}-{user}"
            reserved.add(item_id)
            items[item_id] = Item(item_id, item_id, None, ("reserved",), item_id)
            events.append(Interaction(user, item_id, 1.0, last + n))
    return Dataset("reserved", items, dict(dataset.users), events), reserved


@pytest.mark.parametrize(("kind", "with_text"), [("sasrec", False), ("sasrec", True), ("lstm", True)])
def test_no_validation_or_test_item_reaches_training(sequential_synthetic, monkeypatch, kind, with_text) -> None:
    dataset, reserved = _with_reserved_targets(sequential_synthetic[0])
    split = leave_one_out(dataset)
    assert {t.item_id for t in split.val.values()} | {t.item_id for t in split.test.values()} == reserved
    seen: set[int] = set()
    real = seqtrain.pad_batch  # both nets train in the shared SeqPredictor loop

    def spy(batch, device):
        for window in batch:
            seen.update(window)
        return real(batch, device)

    monkeypatch.setattr(seqtrain, "pad_batch", spy)
    rng = np.random.default_rng(0)
    feats = ItemFeatures("text", tuple(split.item_ids), rng.normal(size=(len(split.item_ids), 8)).astype(np.float32))
    if kind == "sasrec":
        model = SASRecPredictor(SASRecConfig(**{**TINY, "max_epochs": 2}), features=feats if with_text else None)
    else:
        model = LSTMPredictor(LSTMConfig(embedding_dim=16, hidden_dim=32, max_epochs=2, max_history=20,
                                         device="cpu", progress=False), "lstm+text", feats)
    model.fit(split)
    trained_items = {split.item_ids[i - 1] for i in seen if i != seqtrain.PAD}
    assert trained_items and not trained_items & reserved


def test_training_is_seeded(sequential_synthetic) -> None:
    split = leave_one_out(sequential_synthetic[0])
    cfg = SASRecConfig(**{**TINY, "max_epochs": 2})
    a, b, c = SASRecPredictor(cfg), SASRecPredictor(cfg), SASRecPredictor(cfg.model_copy(update={"seed": 1}))
    for m in (a, b, c):
        m.fit(split)
    requests = split.requests(split.test_users[:9], "test")
    np.testing.assert_array_equal(a.score_all(requests), b.score_all(requests))
    assert not np.allclose(a.score_all(requests), c.score_all(requests))


def test_text_features_only_mode_fits_and_saves(sequential_synthetic, tmp_path) -> None:
    split = leave_one_out(sequential_synthetic[0])
    rng = np.random.default_rng(1)
    feats = ItemFeatures("text", tuple(split.item_ids), rng.normal(size=(len(split.item_ids), 8)).astype(np.float32))
    model = SASRecPredictor(SASRecConfig(**{**TINY, "max_epochs": 2, "feature_mode": "only"}), "sasrec+text", feats)
    model.fit(split)
    assert model._net.items.ids is None and model._net.items.proj is not None
    requests = split.requests(split.test_users[:4], "test")
    again = SASRecPredictor.load(model.save(tmp_path / "t"))
    np.testing.assert_array_equal(again.score_all(requests), model.score_all(requests))


def test_config_and_unfitted_errors() -> None:
    with pytest.raises(ValueError):
        SASRecConfig(dim=30, heads=4)
    with pytest.raises(NotFittedError):
        SASRecPredictor(SASRecConfig(progress=False)).score_all([])
