"""The agent's success paths once on the real embedded vLLM engine."""

from __future__ import annotations

import pytest

from agent import AgentConfig, InterestAgent

pytestmark = pytest.mark.engine


def test_predict_summarize_chat_on_the_real_engine(world, catalog, engine):
    agent = InterestAgent.from_defaults(world, catalog, engine=engine, config=AgentConfig(fallback=False))
    preds = agent.predict_many(["ann", "bob"], k=5, progress=False)
    for p in preds:
        assert len(p.next_items) == 5
        assert all(i.llm_prob is not None for i in p.next_items)
        assert 1 <= len(p.interests) <= 3 and {i.label for i in p.interests} <= set(catalog.taxonomy)
        user_ids = {b.id for b in world.recent(p.user_id, k=10)}
        assert all(set(i.evidence) <= user_ids for i in p.interests)
        assert p.provenance.engine["engine"] == "vllm" and p.provenance.attempts >= 1
    summary = agent.summarize("ann")
    assert summary.text and len(summary.text) <= 2000
    assert summary.generated_by in {"llm", "template"}
    reply = agent.chat("ann", [{"role": "user", "content": "What kind of movies does this user like?"}])
    assert reply.text and reply.evidence
