"""The feedback loop: signals stored as behaviors change the next prediction; bad input writes nothing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from agent import AgentConfig, FeedbackError, InterestAgent, UnknownItemError, UnknownUserError
from core import TideError
from eval import catalog_from_dataset, dataset_behaviors, make_synthetic
from memory import Location, MemoryStore

USER = "u0"


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_users=3, n_items=400, seed=4)


@pytest.fixture(scope="module")
def syn_catalog(synthetic, embedder):
    return catalog_from_dataset(synthetic[0], embedder)


@pytest.fixture
def agent(tmp_path, embedder, synthetic, syn_catalog):
    ds, _ = synthetic
    store = MemoryStore.open(tmp_path / "store", embedder=embedder)
    store.add(dataset_behaviors(ds))
    yield InterestAgent(store, syn_catalog, None, AgentConfig())
    store.close()


@pytest.fixture(scope="module")
def shared_agent(tmp_path_factory, embedder, synthetic, syn_catalog):
    """One agent for the tests that must not write (each checks that nothing was written)."""
    store = MemoryStore.open(tmp_path_factory.mktemp("shared") / "store", embedder=embedder)
    store.add(dataset_behaviors(synthetic[0]))
    yield InterestAgent(store, syn_catalog, None, AgentConfig())
    store.close()


def _top(agent: InterestAgent, now: datetime, k: int = 10) -> list[str]:
    [s] = agent.score_candidates([USER], [now])
    return [agent.catalog.items[i].item_id for i in s.top(k)]


def _share(agent: InterestAgent, items: list[str], tag: str) -> float:
    return sum(tag in agent.catalog.get(i).categories for i in items) / len(items)


def _last(agent: InterestAgent) -> datetime:
    return agent.store.recent(USER, k=1)[0].timestamp


def test_dislikes_exclude_the_items_and_demote_their_tag(agent):
    now = _last(agent) + timedelta(hours=1)
    before = _top(agent, now)
    tag = Counter(agent.catalog.get(i).categories[0] for i in before).most_common(1)[0][0]
    disliked = [i for i in before if tag in agent.catalog.get(i).categories][:3]
    for n, item in enumerate(disliked):
        stored = agent.feedback(USER, item, "dislike", at=now + timedelta(minutes=n))
        assert stored.action == "feedback-dislike" and stored.weight == 0.0 and stored.item_id == item
    later = now + timedelta(minutes=10)
    after = _top(agent, later)
    assert not set(disliked) & set(_top(agent, later, k=len(agent.catalog)))  # never comes back
    assert _share(agent, after, tag) < _share(agent, before, tag)
    # the demotion fades: a year on the tag is back to at least where the dislikes left it
    year = _top(agent, later + timedelta(days=365))
    assert _share(agent, year, tag) >= _share(agent, after, tag)


def test_likes_strengthen_their_tag(agent, synthetic):
    now = _last(agent) + timedelta(hours=1)
    before = _top(agent, now)
    shown = Counter(agent.catalog.get(i).categories[0] for i in before)
    ranked = _top(agent, now, k=len(agent.catalog))  # unconsumed items only
    left = Counter(agent.catalog.get(i).categories[0] for i in ranked)
    tag = next(c for c in agent.catalog.taxonomy if shown[c] == 0 and left[c] >= 10)
    liked = [i for i in ranked if agent.catalog.get(i).categories[0] == tag][-3:]  # the user's least likely
    for n, item in enumerate(liked):
        stored = agent.feedback(USER, item, "like", at=now + timedelta(minutes=n))
        assert stored.weight == agent.config.feedback.like_weight > 0
    after = _top(agent, now + timedelta(minutes=10))
    assert _share(agent, after, tag) > _share(agent, before, tag) == 0.0
    assert not set(liked) & set(after)  # consumed: not recommended again


def test_feedback_is_forgettable(agent):
    now = _last(agent) + timedelta(hours=1)
    before = _top(agent, now)
    stored = agent.feedback(USER, before[0], "dislike", at=now)
    assert before[0] not in _top(agent, now + timedelta(minutes=1))
    assert agent.store.forget(USER, ids=[stored.id]) == 1
    assert _top(agent, now + timedelta(minutes=1)) == before


def test_skip_and_consumed(agent):
    now = _last(agent) + timedelta(hours=1)
    before = _top(agent, now)
    skip = agent.feedback(USER, before[0], "skip", at=now, place=(48.2, 16.37))
    used = agent.feedback(USER, before[1], "consumed", at=now)
    assert skip.weight == 0.0 and skip.location == Location(lat=48.2, lon=16.37)
    assert used.weight == agent.config.feedback.consumed_weight
    after = _top(agent, now + timedelta(minutes=1))
    assert before[0] not in after and before[1] not in after


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"user_id": "nobody"}, UnknownUserError),
    ({"item_id": "no-such-item"}, UnknownItemError),
    ({"signal": "love"}, FeedbackError),
    ({"at": datetime(2024, 1, 1, 12)}, FeedbackError),  # naive
    ({"at": "2024-01-01"}, FeedbackError),
    ({"place": Location(place="the office")}, FeedbackError),  # no coordinates
    ({"place": (91.0, 0.0)}, TideError),  # latitude out of range
    ({"place": (48.2, float("nan"))}, TideError),
    ({"place": "48.2,16.3"}, FeedbackError),
])
def test_bad_feedback_is_refused_and_writes_nothing(shared_agent, kwargs, error):
    agent = shared_agent
    n = agent.store.count(USER)
    item = agent.catalog.items[0].item_id
    args = {"user_id": USER, "item_id": item, "signal": "dislike", "at": _last(agent) + timedelta(hours=1),
            **kwargs}
    with pytest.raises(error) as info:
        agent.feedback(args.pop("user_id"), args.pop("item_id"), args.pop("signal"), **args)
    assert isinstance(info.value, TideError) and str(info.value)
    assert agent.store.count(USER) == n and agent.store.count("nobody") == 0
