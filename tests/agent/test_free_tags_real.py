"""Free tags once on the real embedded vLLM engine: the schema and the grounding hold (not the tags' content)."""

from __future__ import annotations

import pytest

from agent import AgentConfig, InterestAgent
from memory import interest_graph

pytestmark = pytest.mark.engine


def test_free_tags_on_the_real_engine(world, catalog, engine):
    agent = InterestAgent.from_defaults(world, catalog, engine=engine, config=AgentConfig(fallback=False))
    rows = world.recent("ann", k=world.count("ann"))
    own = {b.id for b in rows}
    tags = agent.free_tags("ann")
    assert 1 <= len(tags) <= 5
    for t in tags:
        assert 2 <= len(t.label) <= 32 and t.label == t.label.lower().strip()
        assert t.evidence and set(t.evidence) <= own
    g = interest_graph("ann", rows, max(b.timestamp for b in rows), free_tags={t.label: t.evidence for t in tags})
    proposed = [d for _, d in g.nodes(data=True) if d["kind"] == "tag" and d["origin"] == "proposed"]
    assert proposed and all({int(e) for e in d["evidence"].split()} <= own for d in proposed)
