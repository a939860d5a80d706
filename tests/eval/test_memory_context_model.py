"""``memory+context`` in the harness: a named model; on ML-100k (no query context) it ranks as ``memory``; two
memory models sharing one store keep their own tuned store settings."""

from __future__ import annotations

import pytest

from agent import AgentConfig, InterestAgent
from eval import MODELS, MainConfig, catalog_from_dataset, leave_one_out, make_synthetic, run_main
from eval._assemble import has_query_context
from eval._tide import MemoryPredictor, MemorySync
from memory import ContextWeights, MemoryStore, SentenceTransformerEmbedder


@pytest.fixture(scope="module")
def embedder():
    return SentenceTransformerEmbedder.from_package()


@pytest.fixture(scope="module")
def habits():
    return make_synthetic(n_users=8, n_items=600, seed=2, habits=True, p_noise=0.0)[0]


def test_memory_context_is_a_named_model():
    assert "memory+context" in MODELS
    assert MainConfig(models=["memory", "memory+context"]).models == ["memory", "memory+context"]


def test_query_context_comes_from_recorded_places(ml100k, habits):
    assert has_query_context(habits)
    assert not has_query_context(ml100k)


@pytest.mark.slow
def test_on_ml100k_memory_context_ranks_exactly_as_memory(tmp_path, ml100k):
    cfg = MainConfig(models=["memory", "memory+context"], users=8, seed=1, out=tmp_path, n_bootstrap=10,
                     show_user=None, retriever=None, validation="plain")
    result = run_main(cfg)
    rankings = result.evaluation.rankings
    assert len(rankings["memory"]) == 8
    assert [r.item_ids for r in rankings["memory+context"]] == [r.item_ids for r in rankings["memory"]]
    models = result.evaluation.summary.models
    assert list(models) == ["memory", "memory+context"]
    # no context on MovieLens: the same grid, the same validation choice
    assert models["memory+context"].tuning.best == models["memory"].tuning.best


@pytest.mark.slow
def test_shared_store_settings_stay_with_their_predictor(tmp_path, embedder, habits):
    split = leave_one_out(habits)
    reqs = split.requests(split.test_users, "val")
    with MemoryStore.open(tmp_path / "s", embedder=embedder) as store:
        agent = InterestAgent(store, catalog_from_dataset(habits, embedder), None, AgentConfig())
        sync = MemorySync(store, habits, progress=False)
        blind = MemoryPredictor(agent, sync)
        aware = MemoryPredictor(agent, sync, "memory+context", context=True)
        blind.fit(split)
        aware.fit(split)
        blind.set_params(short_half_life_days=1 / 144)
        plain = [r.item_ids for r in blind.rank(reqs, 10)]
        aware.set_params(short_half_life_days=30.0, context=ContextWeights(hour=0, weekday=0, place=0))
        other = [r.item_ids for r in aware.rank(reqs, 10)]
        assert other != plain  # the settings differ enough to change the ranking ...
        assert [r.item_ids for r in blind.rank(reqs, 10)] == plain  # ... yet memory still ranks with its own
        assert store.config.short_half_life_days == pytest.approx(1 / 144)


def test_tuned_context_weights_are_written_as_json():
    from eval._outputs import jsonable

    assert jsonable({"best": {"context": ContextWeights(hour=2.0, weekday=0.0, place=2.0)}}) == {
        "best": {"context": ContextWeights(hour=2.0, weekday=0.0, place=2.0).model_dump(mode="json")}}
