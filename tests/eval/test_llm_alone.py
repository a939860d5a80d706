"""``llm`` in the harness: the tuned item-head model alone ranks the whole catalogue (a tiny real model trained
here on a synthetic split's training sequences), and the model cannot run without one."""

from __future__ import annotations

import numpy as np
import pytest

from eval import MODELS, EvalError, MainConfig, leave_one_out, make_synthetic, run_evaluation, run_main
from eval._llm_alone import ItemHeadPredictor
from eval._popularity import PopularityPredictor
from eval._tune import forbidden_pairs, tune_items


def test_llm_is_a_named_model_and_needs_an_item_head(tmp_path, ml100k):
    assert "llm" in MODELS
    with pytest.raises(EvalError, match="item-head"):
        run_main(MainConfig(models=["llm"], item_head=None, users=4, out=tmp_path, show_user=None))


def test_llm_without_a_cached_or_committed_model_is_an_error_before_any_fit(tmp_path, ml100k, monkeypatch):
    import eval._tune

    monkeypatch.setattr(eval._tune, "item_head_on_split", lambda split, config=None, *, train: None)  # nothing found
    with pytest.raises(EvalError, match="--item-head tune"):
        run_main(MainConfig(models=["pop", "llm"], users=4, out=tmp_path, show_user=None))
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.slow
def test_llm_ranks_unconsumed_items_by_the_item_heads_logits(tmp_path):
    from agent import ItemHeadConfig, ItemHeadScorer, ensure_model, tune_item_head

    ds = make_synthetic(n_users=6, n_items=200, seed=3)[0]
    split = leave_one_out(ds)
    items = tune_items(ds)
    tiny = ItemHeadConfig(rank=2, top_layers=1, window=6, min_history=2, windows_per_user=2, max_windows=4,
                          learning_rate=1e-2, head_learning_rate=1e-2, lr_decay="none", standardize=False)
    folder = tune_item_head(split.train, items, forbidden_pairs(split), tiny, base=ensure_model(),
                            home=tmp_path, progress=False)
    titles = {it.item_id: it.title for it in items}
    result = run_evaluation(ds, [PopularityPredictor(), ItemHeadPredictor(folder, titles)], split, users="all",
                            seed=0, out_dir=tmp_path / "run", n_bootstrap=10)
    assert list(result.summary.models) == ["pop", "llm"]
    assert result.summary.models["llm"].config["key"] == folder.name.rsplit("-", 1)[1]

    scorer = ItemHeadScorer(folder, titles)
    rankings = result.rankings["llm"]
    requests = split.requests(result.users, "test")
    assert len(rankings) == len(requests) == 6
    for r, ranking in zip(requests, rankings, strict=True):
        assert not set(ranking.item_ids) & set(r.exclude)
        s = scorer.scores([list(r.history)])[0]
        allowed = [i for i in split.item_ids if i not in r.exclude]
        best = max(allowed, key=lambda i: (s[scorer.index[i]], -split.item_ids.index(i)))
        assert ranking.item_ids[0] == best
        np.testing.assert_allclose(ranking.scores[0], s[scorer.index[best]], rtol=1e-5)
