"""The agent's stages through its public hooks: immutable settings, the candidate stage, the choice prompt,
permutation debiasing. Real store, real embedder; a scripted engine stands in for the LLM."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from agent_fakes import ScriptedEngine
from pydantic import ValidationError

import prompts
from agent import (
    CHOICE_LABELS,
    AgentConfig,
    InterestAgent,
    ScoredUser,
    choice_orders,
    render_choice_prompt,
)

ANN_SEEN = {"m1", "m2", "m3", "m4", "m11"}


def _agent(world, catalog, engine, **cfg):
    return InterestAgent.from_defaults(world, catalog, engine=engine, config=AgentConfig(**cfg))


def _interests(label="Sci-Fi"):
    return json.dumps({"interests": [{"label": label, "confidence": "high", "horizon": "short", "evidence": [1]}]})


def _shown(prompt: str) -> list[str]:
    """The candidate titles of a choice prompt, in the order shown (``A: "Title" (...)``)."""
    lines = prompt.split("Candidates:\n")[1].split("\n\n")[0].splitlines()
    return [line.split(": ", 1)[1].split('" (')[0].strip('"') for line in lines]


def test_with_config_returns_a_new_agent_and_leaves_the_original_unchanged(world, catalog):
    agent = _agent(world, catalog, ScriptedEngine([]), fusion_weight=0.2)
    new = agent.with_config(fusion_weight=0.7, retrieval={"w_co": 0.0})
    assert new is not agent
    assert new.config.fusion_weight == 0.7 and new.config.retrieval.w_co == 0.0
    assert new.config.retrieval.w_short == agent.config.retrieval.w_short  # nested: only the named field changes
    assert agent.config.fusion_weight == 0.2 and agent.config.retrieval.w_co == AgentConfig().retrieval.w_co
    assert new.store is agent.store and new.catalog is agent.catalog and new.engine is agent.engine
    assert new.transitions is agent.transitions is not None
    replaced = agent.with_config(AgentConfig(n_recent=3))
    assert replaced.config == AgentConfig(n_recent=3) and agent.config.n_recent == AgentConfig().n_recent


def test_config_is_frozen_and_updates_are_validated(world, catalog):
    agent = _agent(world, catalog, ScriptedEngine([]))
    with pytest.raises(ValidationError, match="frozen"):
        agent.config.fusion_weight = 1.0
    with pytest.raises(ValidationError, match="frozen"):
        agent.config.retrieval.w_co = 1.0
    with pytest.raises(AttributeError):
        agent.config = AgentConfig()
    with pytest.raises(ValidationError, match="fusion_weight"):
        agent.with_config(fusion_weight=2.0)
    with pytest.raises(ValidationError, match="nonsense"):
        agent.with_config(nonsense=1)
    with pytest.raises(ValidationError, match="n_candidates"):
        agent.with_config(retrieval={"n_candidates": 21})  # more than the choice labels
    assert agent.config == AgentConfig()


def test_a_derived_agent_predicts_like_one_built_with_its_config(world, catalog):
    direct = _agent(world, catalog, ScriptedEngine([_interests()]), fusion_weight=0.0, n_recent=4)
    derived = _agent(world, catalog, ScriptedEngine([_interests()])).with_config(fusion_weight=0.0, n_recent=4)
    a, b = direct.predict("ann", k=6), derived.predict("ann", k=6)
    assert [(i.item_id, i.score) for i in a.next_items] == [(i.item_id, i.score) for i in b.next_items]
    assert a.provenance.retrieval == b.provenance.retrieval and b.provenance.retrieval["n_recent"] == 4


def test_score_candidates_is_the_retrieval_stage(world, catalog):
    agent = _agent(world, catalog, ScriptedEngine([]), fusion_weight=0.0)
    ann, bob = agent.score_candidates(["ann", "bob"])
    assert isinstance(ann, ScoredUser) and (ann.context.user_id, bob.context.user_id) == ("ann", "bob")
    ids = [catalog.items[i].item_id for i in ann.candidates]
    assert len(ids) == len(catalog) - len(ANN_SEEN) and not ANN_SEEN & set(ids)  # n_candidates (20) > unseen (7)
    assert all(np.isneginf(ann.retrieval[catalog.index[i]]) for i in ANN_SEEN)
    assert list(ann.retrieval[ann.candidates]) == sorted(ann.retrieval[ann.candidates], reverse=True)
    assert ann.top(3) == ann.candidates[:3]
    np.testing.assert_array_equal(agent.retrieval_scores([ann.context, bob.context]),
                                  np.stack([ann.retrieval, bob.retrieval]))
    # composing the public hooks without the LLM gives what predict gives with fusion weight 0
    pred = _agent(world, catalog, ScriptedEngine([_interests()]), fusion_weight=0.0).predict("ann", k=5)
    assert [i.item_id for i in agent.fuse(ann, None, 5)] == [i.item_id for i in pred.next_items]
    [few] = agent.with_config(retrieval={"n_candidates": 3}).score_candidates(["ann"])
    assert few.candidates == ann.candidates[:3]
    [given] = agent.score_candidates(["ann"], histories=[["m1"]], excludes=[["m1", "m5"]])
    assert given.context.history == ["m1"] and {"m1", "m5"}.isdisjoint(
        catalog.items[i].item_id for i in given.candidates)


def test_choice_prompt_shows_the_candidates_in_the_given_order(world, catalog):
    agent = _agent(world, catalog, ScriptedEngine([]))
    [s] = agent.score_candidates(["ann"])
    items = [catalog.items[i] for i in s.candidates]
    own = agent.choice_prompt(s)
    assert own == render_choice_prompt(s.context, items) and own.endswith("Answer:")
    assert _shown(own) == [it.title for it in items]
    order = list(reversed(range(len(items))))
    assert _shown(agent.choice_prompt(s, order)) == [items[j].title for j in order]
    assert _shown(render_choice_prompt(s.context, items[:2])) == [items[0].title, items[1].title]
    with pytest.raises(ValueError, match="at most 20"):
        render_choice_prompt(s.context, items * 3)


def test_choice_orders_are_balanced_cyclic_shifts():
    assert choice_orders(5, 1).tolist() == [[0, 1, 2, 3, 4]]
    assert choice_orders(6, 2).tolist() == [[0, 1, 2, 3, 4, 5], [3, 4, 5, 0, 1, 2]]
    full = choice_orders(4, 9)  # capped at n: every candidate at every position once
    assert full.shape == (4, 4) and all(sorted(col) == [0, 1, 2, 3] for col in full.T)
    assert len(CHOICE_LABELS) == 20 and CHOICE_LABELS[:3] == ("A", "B", "C")


def test_permutation_averages_out_a_pure_position_bias(world, catalog):
    probs = [0.01] * 20
    probs[0] = 1.0  # the LLM says A whatever the candidates are
    one = _agent(world, catalog, ScriptedEngine([], choice_probs=probs))
    [s] = one.score_candidates(["ann"])
    n = len(s.candidates)
    [single] = one.choice_probs([s])
    assert single.orders.shape == (1, n) and single.per_candidate()[0] == single.probs[0, 0]  # the bias ranks A
    eng = ScriptedEngine([], choice_probs=probs)
    [both] = _agent(world, catalog, eng, choice_orders=2).choice_probs([s])
    assert len(eng.choice_prompts) == 2 and _shown(eng.choice_prompts[1])[0] == catalog.items[
        s.candidates[n // 2]].title
    avg = both.per_candidate()
    assert avg[0] == pytest.approx(avg[n // 2]) and avg[0] > avg[1]  # each was shown first once
    assert avg.sum() == pytest.approx(1.0)
    eng2 = ScriptedEngine([_interests()], choice_probs=probs)
    pred = _agent(world, catalog, eng2, choice_orders=2, fusion_weight=1.0).predict("ann", k=3)
    assert pred.provenance.retrieval["choice_orders"] == 2 and len(eng2.choice_prompts) == 2
    assert pred.next_items[0].llm_prob == pytest.approx(avg.max())


def test_stage_modules_do_not_import_the_agent():
    """No arrow back up: the stages and the summary take explicit inputs (no TYPE_CHECKING import either)."""
    import agent as package

    root = Path(package.__file__).parent
    for name in ("_summary", "_retrieval", "_rerank", "_interests", "_config", "_context", "_candidates"):
        tree = ast.parse((root / f"{name}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "_agent" not in imported and "agent._agent" not in imported, name


def test_behavior_lines_are_compact_and_lose_nothing():
    from datetime import UTC, datetime

    from agent._context import behavior_lines
    from memory import StoredBehavior

    def b(i, day, action, text):
        return StoredBehavior(id=i, user_id="u", item_id=f"m{i}", action=action, text=text,
                              timestamp=datetime(1997, 11, day, 12, tzinfo=UTC))

    lines = behavior_lines([b(1, 13, "rated", 'Rated "Alien" 5/5.'), b(2, 13, "watched", 'Rated "Heat" 2/5.'),
                            b(3, 14, "rated", 'Rated "Fargo" 4/5.')], start=7)
    assert [x["idx"] for x in lines] == [7, 8, 9]
    assert [x["when"] for x in lines] == ["1997-11-13", "", "1997-11-14"]  # a date only where it changes
    assert [x["action"] for x in lines] == ["", "watched", ""]  # an action only where the text does not say it
    text = prompts.render("free_tags", behaviors=lines, max_tags=3, max_chars=30)
    assert '[7] 1997-11-13 "Rated \\"Alien\\" 5/5."' in text and '[8] watched "Rated \\"Heat\\" 2/5."' in text
