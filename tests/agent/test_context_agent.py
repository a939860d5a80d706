"""Context-aware prediction through the agent and the harness: absent context changes nothing, habits show."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from agent import AgentConfig, FeedbackError, InterestAgent, query_context
from eval import catalog_from_dataset, dataset_behaviors, leave_one_out, make_synthetic
from eval._habits import HABIT_SLOTS
from eval._tide import MemoryPredictor, MemorySync
from memory import ContextWeights, InvalidQueryError, Location, MemoryStore

N_USERS = 12


@pytest.fixture(scope="module")
def habits():
    return make_synthetic(n_users=N_USERS, n_items=600, seed=2, habits=True, p_noise=0.0)


@pytest.fixture(scope="module")
def habit_agent(tmp_path_factory, embedder, habits):
    ds, _ = habits
    store = MemoryStore.open(tmp_path_factory.mktemp("ctx") / "store", embedder=embedder)
    store.add(dataset_behaviors(ds))
    yield InterestAgent(store, catalog_from_dataset(ds, embedder), None, AgentConfig())
    store.close()


def _slot_time(after: datetime, slot: str) -> datetime:
    days, start, _, _ = HABIT_SLOTS[slot]
    t = (after + timedelta(days=1)).replace(hour=start + 1, minute=0, second=0)
    while t.weekday() not in days:
        t += timedelta(days=1)
    return t


def test_query_context_helper():
    now = datetime.fromisoformat("2024-03-18T08:30:00+00:00")
    assert query_context(None, None) is None
    assert query_context(now, None).time and query_context(now, None).place is None
    only_place = query_context(None, (48.2, 16.37))
    assert not only_place.time and only_place.point == (48.2, 16.37)
    assert query_context(now, (48.2, 16.37), use_time=False).at is None
    with pytest.raises(InvalidQueryError):
        query_context(datetime(2024, 3, 18, 8, 30), None)
    with pytest.raises(FeedbackError):
        query_context(now, Location(place="work"))


def test_absent_context_is_the_blind_ranking(habit_agent):
    users = [f"u{i}" for i in range(N_USERS)]
    plain = habit_agent.score_candidates(users)
    none = habit_agent.score_candidates(users, queries=[None] * len(users))
    for a, b in zip(plain, none, strict=True):
        assert np.array_equal(a.retrieval, b.retrieval) and a.candidates == b.candidates
    assert "Context of this prediction" not in habit_agent.choice_prompt(plain[0])


def test_context_brings_the_habit_of_the_moment(habit_agent, habits):
    ds, truth = habits
    blind_hits = aware_hits = 0
    for u, plan in truth.users.items():
        last = ds.sequences[u][-1].time
        for habit in plan.habits:
            at = _slot_time(last, habit.slot)
            where = (habit.place.lat, habit.place.lon)
            [blind] = habit_agent.score_candidates([u], [at])
            [aware] = habit_agent.score_candidates([u], [at], queries=[query_context(at, where)])
            cat = habit_agent.catalog.get

            blind_hits += sum(habit.category in cat(habit_agent.catalog.items[i].item_id).categories
                              for i in blind.top(10))
            aware_hits += sum(habit.category in cat(habit_agent.catalog.items[i].item_id).categories
                              for i in aware.top(10))
    assert aware_hits > 1.3 * blind_hits
    prompt = habit_agent.choice_prompt(aware)
    assert "Context of this prediction:" in prompt and f"{habit.place.lat:.4f}" in prompt


def test_harness_predictor_with_zero_context_weights_equals_blind(tmp_path, embedder, habits):
    ds, _ = habits
    split = leave_one_out(ds)
    users = split.test_users
    with MemoryStore.open(tmp_path / "s", embedder=embedder) as store:
        agent = InterestAgent(store, catalog_from_dataset(ds, embedder), None, AgentConfig())
        sync = MemorySync(store, ds, progress=False)
        blind = MemoryPredictor(agent, sync)
        aware = MemoryPredictor(agent, sync, "memory+context", context=True)
        assert any(w == ContextWeights(hour=0, weekday=0, place=0) for w in aware.tunable["context"])
        blind.fit(split)
        aware.fit(split)
        reqs = split.requests(users, "val")
        plain = blind.rank(reqs, 10)
        aware.set_params(context=ContextWeights(hour=0, weekday=0, place=0))
        assert [r.item_ids for r in aware.rank(reqs, 10)] == [r.item_ids for r in plain]
        aware.set_params(context=ContextWeights())
        assert [r.item_ids for r in aware.rank(reqs, 10)] != [r.item_ids for r in plain]
