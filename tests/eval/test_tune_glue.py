"""The harness's side of tuning: training data only (the split's held-out items refused), and the
validation measure (two orders cancel a position-only engine's bias)."""

from __future__ import annotations

import numpy as np
import pytest

from agent import ChoiceScores, TuneDataConfig, TuneDataError, build_examples
from eval import leave_one_out, make_synthetic
from eval._tune import (
    choice_probs,
    forbidden_pairs,
    ranks_from_probs,
    tune_items,
    validation_examples,
    validation_report,
)


@pytest.fixture(scope="module")
def split():
    dataset, _ = make_synthetic(n_users=60, n_items=200, seed=3)
    return leave_one_out(dataset)


def test_training_sequences_pass_and_held_out_items_are_refused(split):
    items = tune_items(split.dataset)
    ex = build_examples(split.train, items, forbidden_pairs(split), TuneDataConfig(positions_per_user=2))
    held = {(u, t.item_id) for u, t in split.val.items()} | {(u, t.item_id) for u, t in split.test.items()}
    assert ex and all((e.user_id, e.candidates[e.target]) not in held for e in ex)
    assert all((e.user_id, i) not in held for e in ex for i in e.history)
    leaky = {u: [*s, split.val[u].item_id] for u, s in split.train.items() if u in split.val}
    with pytest.raises(TuneDataError, match="forbidden"):
        build_examples(leaky, items, forbidden_pairs(split), TuneDataConfig())


class _PositionEngine:
    """Always prefers letter A, then B, ...: position, no content."""

    def score_choices(self, prompts, labels):
        p = np.exp(-np.arange(len(labels)))
        return [ChoiceScores(labels=tuple(labels), probs=tuple(p / p.sum()), label_mass=1.0) for _ in prompts]


def test_validation_measure_reads_validation_only_and_cancels_position(split):
    users = sorted(split.val)
    examples, looked = validation_examples(split, TuneDataConfig(), users)
    assert looked == len(users) and examples
    for e in examples:
        assert e.candidates[e.target] == split.val[e.user_id].item_id
        assert split.test[e.user_id].item_id not in e.history
    probs = choice_probs(_PositionEngine(), examples, orders=2)
    targets = [e.target for e in examples]
    # one order: a position-only model just repeats the retrieval order
    np.testing.assert_array_equal(ranks_from_probs(probs[0], targets), np.asarray(targets) + 1)
    run = {"model": "pos", "seconds": 0.0, "looked": looked, "users": [e.user_id for e in examples],
           "targets": targets, "probs": probs.tolist()}
    report = validation_report({"pos": run})
    assert report["models"]["pos-1order"]["rank"]["mean"] == pytest.approx(np.mean(targets) + 1)
    # two orders (as given and reversed) give both ends the same average: ties are counted against the target
    avg = probs.mean(axis=0)
    np.testing.assert_allclose(avg[:, 0], avg[:, -1])
    assert {p["metric"] for p in report["paired"]} == {"rank", "ndcg@10"}


def test_main_job_refuses_a_missing_llm_model_folder(tmp_path):
    from eval import EvalError, MainConfig, run_main

    with pytest.raises(EvalError, match="not a model folder"):
        run_main(MainConfig(models=["pop", "agent"], llm_model=str(tmp_path / "nope"), out=tmp_path / "out"))


def test_item_head_windows_keep_the_splits_held_out_items_out(split):
    from agent import ItemHeadConfig, training_windows

    items = tune_items(split.dataset)
    index = {it.item_id: j for j, it in enumerate(items)}
    cfg = ItemHeadConfig(window=10, windows_per_user=2)
    wins = training_windows(split.train, index, cfg, forbidden_pairs(split))
    held = {(u, index[t.item_id]) for u, t in split.val.items()} | {(u, index[t.item_id]) for u, t in split.test.items()}
    assert wins and all((u, j) not in held for u, w in wins for j in w)
    leaky = {u: [*s, split.test[u].item_id] for u, s in split.train.items() if u in split.test}
    with pytest.raises(TuneDataError, match="forbidden"):
        training_windows(leaky, index, cfg, forbidden_pairs(split))


def test_main_job_item_head_choice(split, tmp_path):
    from eval import EvalError, MainConfig
    from eval._assemble import item_head_folder as _item_head

    stages: dict[str, float] = {}
    # no model was tuned on this (synthetic) split: 'auto' falls back to the letter choice, training nothing
    assert _item_head(MainConfig(models=["agent"], out=tmp_path), split, stages) is None
    assert "item-head model" in stages and not list(tmp_path.iterdir())
    assert _item_head(MainConfig(models=["pop"], out=tmp_path), split, stages) is None  # no agent: not looked up
    assert _item_head(MainConfig(models=["agent"], item_head=None, out=tmp_path), split, stages) is None
    with pytest.raises(EvalError, match="not a model folder"):
        _item_head(MainConfig(models=["agent"], item_head=str(tmp_path / "nope"), out=tmp_path), split, stages)


def test_main_job_auto_item_head_tolerates_a_split_too_short_to_train_on(tmp_path):
    from eval import MainConfig
    from eval._assemble import item_head_folder as _item_head

    dataset, _ = make_synthetic(n_users=6, n_items=30, seed=1, min_events=4, max_events=4)
    short = leave_one_out(dataset)  # two training items per user: no window of min_history + 2
    assert _item_head(MainConfig(models=["agent"], out=tmp_path), short, {}) is None
    with pytest.raises(TuneDataError, match="no training window"):
        _item_head(MainConfig(models=["agent"], item_head="tune", out=tmp_path), short, {})


def test_main_job_item_head_config_reaches_the_lookup_and_is_checked_up_front(split, tmp_path, monkeypatch):
    from pydantic import ValidationError

    import eval._tune
    from agent import ItemHeadConfig, item_head_key
    from eval import EvalError, MainConfig
    from eval._assemble import item_head_folder as _item_head

    with pytest.raises(ValidationError, match="bogus"):
        MainConfig(models=["agent"], item_head_config={"bogus": 1})
    with pytest.raises(ValidationError, match="item_ids"):
        MainConfig(models=["agent"], item_head_config={"item_ids": "maybe"})
    seen = []

    def lookup(split_, config=None, *, train=True, **kw):  # records what the harness asks for
        seen.append((config, train))
        return None

    monkeypatch.setattr(eval._tune, "item_head_on_split", lookup)
    for mode in ("auto", "tune"):
        cfg = MainConfig(models=["agent"], item_head=mode, item_head_config={"item_ids": True}, out=tmp_path)
        assert _item_head(cfg, split, {}) is None
    assert seen == [(ItemHeadConfig(item_ids=True), False), (ItemHeadConfig(item_ids=True), True)]
    assert item_head_key("b", "d", ItemHeadConfig(item_ids=True)) != item_head_key("b", "d", ItemHeadConfig())
    seen.clear()
    assert _item_head(MainConfig(models=["agent"], out=tmp_path), split, {}) is None
    assert seen == [(ItemHeadConfig(branch="sasrec"), False)]  # no config: the default, a SASRec branch
    seen.clear()
    assert _item_head(MainConfig(models=["agent"], item_head_config={}, out=tmp_path), split, {}) is None
    assert seen == [(ItemHeadConfig(), False)]  # {}: the plain head
    folder = tmp_path / "head"
    folder.mkdir()
    for head in (str(folder), None):
        with pytest.raises(EvalError, match="item_head_config is for"):
            _item_head(MainConfig(models=["agent"], item_head=head, item_head_config={"item_ids": True},
                                  out=tmp_path), split, {})
