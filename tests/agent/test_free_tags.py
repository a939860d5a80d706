"""Free tags: grounding drops what the user's memory does not back; grounded tags reach the interest graph
(read back from GraphML). The scripted engine stands in for the LLM's answer only; the store, embedder and
graph are real. The real engine is checked once in ``test_free_tags_real.py``."""

from __future__ import annotations

import json

import pytest
from agent_fakes import ScriptedEngine

from agent import (
    AgentConfig,
    EngineError,
    FreeTag,
    InterestAgent,
    UnknownUserError,
    ground_free_tags,
    propose_free_tags,
)
from memory import interest_graph, read_graph, write_graph


def _rows(store, user):
    return sorted(store.recent(user, k=store.count(user)), key=lambda b: b.timestamp)


def test_grounding_keeps_only_the_users_own_cited_behaviors(world):
    ann, bob = _rows(world, "ann"), _rows(world, "bob")
    proposed = [
        ("Space  Aliens.", [ann[0].id, ann[1].id, bob[0].id]),  # bob's behavior is not evidence for ann
        ("period drama", [bob[0].id, bob[1].id]),  # cites only another user's behaviors: dropped
        ("no evidence", []),  # cites none: dropped
        ("x", [ann[0].id]),  # too short once normalised: dropped
        ("space aliens", [ann[2].id]),  # the same tag again: evidence merged
        ("unknown ids", [10_000_000]),
    ]
    tags = ground_free_tags("ann", proposed, [*ann, *bob])
    assert tags == [FreeTag(label="space aliens", evidence=[ann[0].id, ann[1].id, ann[2].id])]


def test_proposed_tags_are_grounded_and_reach_the_graph(world, catalog, tmp_path):
    ann = _rows(world, "ann")  # m1 Alien, m2 Aliens, m3 Terminator, m4 Toy Story, m11 Jumanji
    answer = {"tags": [{"label": "Alien franchise", "evidence": [1, 2]},
                       {"label": "family comedy", "evidence": [4, 5]},
                       {"label": "ungrounded guess", "evidence": []}]}
    engine = ScriptedEngine([json.dumps(answer)])
    agent = InterestAgent(world, catalog, engine, AgentConfig())
    tags = agent.free_tags("ann")
    assert [t.label for t in tags] == ["alien franchise", "family comedy"]
    assert tags[0].evidence == [ann[0].id, ann[1].id] and tags[1].evidence == [ann[3].id, ann[4].id]
    [request] = engine.requests  # one constrained request: the schema bounds labels and evidence numbers
    props = request.json_schema["$defs"]["LLMFreeTag"]["properties"]
    assert props["label"]["maxLength"] == 32 and props["evidence"]["items"]["enum"] == [1, 2, 3, 4, 5]
    assert '[1] 1997-10-01 00:00 "Rated \\"Alien (1979)\\"' in request.prompt  # the action is in the text

    proposed = {t.label: t.evidence for t in tags}
    proposed["another user's tag"] = [_rows(world, "bob")[0].id]  # the graph grounds again: not ann's
    g = interest_graph("ann", ann, ann[-1].timestamp, free_tags=proposed)
    path = write_graph(g, tmp_path / "ann.graphml")
    back = read_graph(path)
    node = back.nodes["tag:alien franchise"]
    assert node["source"] == "free" and node["origin"] == "proposed" and node["n_behaviors"] == 2
    assert node["evidence"] == f"{ann[0].id} {ann[1].id}"
    assert back.nodes["tag:Sci-Fi"]["origin"] == "attributes" and back.nodes["tag:Sci-Fi"]["source"] == "category"
    assert back.has_edge("user:ann", "tag:alien franchise") and back.has_edge("item:m1", "tag:alien franchise")
    assert back.has_edge("item:m11", "tag:family comedy") and not back.has_edge("item:m1", "tag:family comedy")
    assert "tag:ungrounded guess" not in back and "tag:another user's tag" not in back
    # the proposed tag's tie to ann is decayed like the others: the old sci-fi evidence weighs less now
    assert back.nodes["tag:alien franchise"]["strength"] < back.nodes["tag:family comedy"]["strength"]


def test_without_free_tags_the_graph_is_unchanged(world):
    ann = _rows(world, "ann")
    plain = interest_graph("ann", ann, ann[-1].timestamp)
    empty = interest_graph("ann", ann, ann[-1].timestamp, free_tags={})
    assert sorted(plain.nodes(data=True)) == sorted(empty.nodes(data=True))
    assert all(d["origin"] == "attributes" for _, d in plain.nodes(data=True) if d["kind"] == "tag")


def test_a_failed_answer_is_reported_per_user(world):
    ann, bob = _rows(world, "ann"), _rows(world, "bob")
    good = json.dumps({"tags": [{"label": "drama", "evidence": [1]}]})
    engine = ScriptedEngine([good, "not json", "not json", "not json"])
    out = propose_free_tags(engine, [("bob", bob), ("ann", ann)])  # ann fails all 3 attempts
    assert out[0] == [FreeTag(label="drama", evidence=[bob[0].id])]
    assert not isinstance(out[1], list) and out[1].attempts == 3


def test_bad_calls(world, catalog):
    with pytest.raises(EngineError):
        InterestAgent(world, catalog, None, AgentConfig()).free_tags("ann")
    with pytest.raises(UnknownUserError):
        InterestAgent(world, catalog, ScriptedEngine([]), AgentConfig()).free_tags("nobody")
