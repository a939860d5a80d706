"""The agent's logic around the LLM, on a real store, real embedder and a scripted engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from agent_fakes import ScriptedEngine

from agent import (
    AgentConfig,
    EngineError,
    InterestAgent,
    StructuredOutputError,
)


def _agent(world, catalog, engine, **cfg):
    # ann's five behaviors all shown as recent ones, numbered [1]..[5] as the tests below read them
    cfg = {"n_recent": 6, "n_long": 4, **cfg}
    return InterestAgent.from_defaults(world, catalog, engine=engine, config=AgentConfig(**cfg))


def _interests(*labels, evidence=(1,)):
    return json.dumps({"interests": [{"label": lab, "confidence": "high", "horizon": "short",
                                      "evidence": list(evidence)} for lab in labels]})


def test_predict_ranks_unconsumed_items_and_maps_evidence(world, catalog):
    # ann's behaviors in prompt order: [1] Alien, [2] Aliens, [3] Terminator (sci-fi), [4] Toy Story,
    # [5] Jumanji (comedy)
    body = json.dumps({"interests": [
        {"label": "Comedy", "confidence": "high", "horizon": "short", "evidence": [4, 5, 5]},
        {"label": "Sci-Fi", "confidence": "medium", "horizon": "long", "evidence": [1, 2]}]})
    eng = ScriptedEngine([body])
    pred = _agent(world, catalog, eng, fusion_weight=0.0).predict("ann", k=5)
    ids = [i.item_id for i in pred.next_items]
    assert len(ids) == 5 and not {"m1", "m2", "m3", "m4", "m11"} & set(ids)
    assert [i.label for i in pred.interests] == ["Comedy", "Sci-Fi"]
    in_order = [b.id for b in reversed(world.recent("ann", k=5))]
    assert pred.interests[0].evidence == in_order[3:5] and pred.interests[1].evidence == in_order[:2]
    assert pred.provenance.templates["rank"] == "rank-v2" and pred.provenance.attempts == 1
    # the schema offered only ann's grounded labels, each citing only behaviors that carry it
    items = {d["properties"]["label"]["const"]: d["properties"]["evidence"]["items"]
             for d in eng.requests[0].json_schema["$defs"].values()}
    branches = {label: it.get("enum", [it.get("const")]) for label, it in items.items()}
    assert branches["Sci-Fi"] == [1, 2, 3] and branches["Comedy"] == [4, 5] and "Romance" not in branches
    assert not pred.provenance.cold_start and pred.provenance.fallback is None
    assert pred.drift.score is not None
    # the rank prompt lists the candidates as lettered choices, and names none of bob's behaviors
    prompt = eng.choice_prompts[0]
    assert "A: " in prompt and "Sense and Sensibility" not in prompt.split("Candidates:")[0]


def test_llm_choice_moves_the_ranking_with_fusion_weight(world, catalog):
    base = _agent(world, catalog, ScriptedEngine([_interests("Sci-Fi")]), fusion_weight=0.0).predict("ann", k=3)
    probs = [0.0] * 20
    probs[2] = 1.0  # the LLM is sure about candidate C
    eng = ScriptedEngine([_interests("Sci-Fi")], choice_probs=probs)
    fused = _agent(world, catalog, eng, fusion_weight=1.0).predict("ann", k=3)
    assert fused.next_items[0].item_id == base.next_items[2].item_id
    assert fused.next_items[0].llm_prob == pytest.approx(1.0)


def test_calibration_divides_out_a_pure_position_bias(world, catalog):
    base = _agent(world, catalog, ScriptedEngine([_interests("Sci-Fi")]), fusion_weight=0.0).predict("ann", k=5)
    probs = [0.01] * 20
    probs[2] = 1.0  # the LLM says C whatever the candidates are: no content signal at all
    biased = _agent(world, catalog, ScriptedEngine([_interests("Sci-Fi")], choice_probs=probs),
                    fusion_weight=1.0).predict("ann", k=5)
    assert biased.next_items[0].item_id == base.next_items[2].item_id  # uncalibrated: the bias ranks
    eng = ScriptedEngine([_interests("Sci-Fi")], choice_probs=probs)
    calibrated = _agent(world, catalog, eng, fusion_weight=0.5, calibrate=True).predict("ann", k=5)
    assert [i.item_id for i in calibrated.next_items] == [i.item_id for i in base.next_items]
    n = calibrated.provenance.retrieval["candidates"]  # 7: ann has seen 5 of the 12 movies
    assert calibrated.next_items[0].llm_prob == pytest.approx(0.01 / (1.0 + 0.01 * (n - 1)))  # raw, as the LLM said
    assert calibrated.provenance.retrieval["calibrate"] is True
    content_free = eng.choice_prompts[0]  # the prior's prompt: no history, every candidate N/A
    assert '"N/A"' in content_free and "Alien" not in content_free and len(eng.choice_prompts) == 2


def test_interest_labels_outside_taxonomy_are_retried(world, catalog):
    eng = ScriptedEngine([_interests("Knitting"), _interests("Drama")])
    pred = _agent(world, catalog, eng).predict("bob")
    assert [i.label for i in pred.interests] == ["Drama"]
    assert pred.provenance.attempts == 2 and "label" in pred.provenance.reasons[0]
    assert "Knitting" in eng.requests[1].prompt  # the failed answer was echoed back


def test_evidence_that_does_not_show_the_label_is_retried(world, catalog):
    # [1] is Alien (Horror, Sci-Fi): it cannot be the evidence of a Comedy interest
    eng = ScriptedEngine([_interests("Comedy", evidence=(1,)), _interests("Comedy", evidence=(4,))])
    pred = _agent(world, catalog, eng).predict("ann")
    assert [i.label for i in pred.interests] == ["Comedy"] and pred.provenance.attempts == 2
    assert pred.interests[0].evidence == [b.id for b in reversed(world.recent("ann", k=5))][3:4]


def test_retry_exhaustion_raises_with_details(world, catalog):
    eng = ScriptedEngine(["{}", "{}", "{}"])
    with pytest.raises(StructuredOutputError) as info:
        _agent(world, catalog, eng).predict("ann")
    assert info.value.attempts == 3 and info.value.raw_outputs == ["{}", "{}", "{}"]


def test_retry_exhaustion_falls_back_when_asked_and_says_so(world, catalog):
    eng = ScriptedEngine(["{}", "{}", "{}"])
    pred = _agent(world, catalog, eng).predict("ann", fallback=True)
    assert "interests invalid after 3 attempts" in pred.provenance.fallback
    assert pred.next_items and pred.interests  # retrieval ranking + profile interests


class BrokenEngine(ScriptedEngine):
    def score_choices(self, prompts, labels):
        raise EngineError("server down")


def test_engine_failure_raises_or_falls_back(world, catalog):
    with pytest.raises(EngineError, match="server down"):
        _agent(world, catalog, BrokenEngine([])).predict("ann")
    pred = _agent(world, catalog, BrokenEngine([]), fallback=True).predict("ann")
    assert pred.provenance.fallback.startswith("choice scoring failed")
    assert all(i.llm_prob is None for i in pred.next_items)


def test_cold_start_user_gets_popularity_flagged(world, catalog):
    eng = ScriptedEngine([])
    pred = _agent(world, catalog, eng).predict("nobody", k=3)
    assert pred.provenance.cold_start and "cold start" in pred.provenance.fallback
    assert [i.item_id for i in pred.next_items] == ["m1", "m2", "m3"]  # most popular first
    assert eng.requests == [] and eng.choice_prompts == []  # the LLM was not asked


def test_predict_many_batches_users_through_the_engine(world, catalog):
    eng = ScriptedEngine([_interests("Sci-Fi"), _interests("Drama")])
    preds = _agent(world, catalog, eng).predict_many(["ann", "bob"], progress=False)
    assert [p.user_id for p in preds] == ["ann", "bob"]
    assert len(eng.choice_prompts) == 2


def test_summarize_uses_llm_when_grounded(world, catalog):
    # the first sentence is rendered from the short-term profile; the model continues it, and text after the
    # second sentence is cut
    text = " Before that it was Sci-Fi: a clear shift in taste! It is a lovely day."
    eng = ScriptedEngine([text])
    summary = _agent(world, catalog, eng).summarize("ann")
    assert summary.generated_by == "llm"
    opening = "Lately this person has mostly chosen Comedy and Adventure, with some Animation."
    assert summary.text == opening + " Before that it was Sci-Fi: a clear shift in taste!"
    assert summary.facts.n_behaviors == 5 and [n for n, _ in summary.facts.short_top[:3]] == [
        "Comedy", "Adventure", "Animation"]
    req = eng.requests[0]
    assert req.prompt.endswith("Paragraph: " + opening) and req.json_schema is None


@pytest.mark.parametrize("bad, reason", [
    (" Comedy and Romance.", "not in the facts: Romance"),  # ann never watched a romance
    (" Sci-Fi, Horror, Action, and Sci-Fi before that.", "lists sci-fi twice"),  # a list that loops
    (" Lately this person has mostly chosen Comedy and Adventure, with some Animation.", "repeats a sentence"),
    (" It is a lovely day.", "names none of the user's top interests"),  # the model's own words say nothing
    (" Comedy and Sci-Fi, on Tuesdays", "no complete sentence"),
])
def test_summary_that_invents_loops_or_trails_off_is_retried(world, catalog, bad, reason):
    good = " Before that, Sci-Fi."
    summary = _agent(world, catalog, ScriptedEngine([bad, good])).summarize("ann")
    assert summary.generated_by == "llm" and summary.provenance.attempts == 2
    assert reason in summary.provenance.reasons[0]


def test_summarize_falls_back_to_template_when_ungrounded(world, catalog):
    off = " the weather today, which is lovely and the sea is calm and blue."
    summary = _agent(world, catalog, ScriptedEngine([off] * 3)).summarize("ann")
    assert summary.generated_by == "template" and "failed validation" in summary.provenance.fallback
    top = summary.facts.short_top[0][0]
    assert top in summary.text and summary.provenance.attempts == 3


def test_chat_is_grounded_in_this_users_memory(world, catalog):
    eng = ScriptedEngine(["  Yes, mostly science fiction.\n"])
    reply = _agent(world, catalog, eng).chat("ann", [{"role": "user", "content": "Does she like sci-fi?"}])
    assert reply.text == "Yes, mostly science fiction."
    ann_ids = {b.id for b in world.recent("ann", k=10)}
    assert reply.evidence and set(reply.evidence) <= ann_ids
    system = eng.requests[0].messages[0].content
    assert "Alien" in system and "Sense and Sensibility" not in system


def test_chat_requires_a_user_question(world, catalog):
    with pytest.raises(ValueError, match="user message"):
        _agent(world, catalog, ScriptedEngine([])).chat("ann", [{"role": "assistant", "content": "hi"}])


def test_chat_without_an_engine_says_so(world, catalog):
    from agent import EngineUnavailableError

    agent = InterestAgent(world, catalog, None, AgentConfig())  # e.g. the item head ranks, no LLM engine
    with pytest.raises(EngineUnavailableError, match="chat needs an LLM engine"):
        agent.chat("ann", [{"role": "user", "content": "Does she like sci-fi?"}])
    assert agent.summarize("ann").provenance.fallback == "no engine"  # a summary still works


def test_repeated_labels_are_merged_not_rejected(world, catalog):
    body = json.dumps({"interests": [
        {"label": "Sci-Fi", "confidence": "high", "horizon": "short", "evidence": [1]},
        {"label": "Sci-Fi", "confidence": "low", "horizon": "long", "evidence": [2, 1]}]})
    pred = _agent(world, catalog, ScriptedEngine([body])).predict("ann")
    assert [(i.label, i.confidence) for i in pred.interests] == [("Sci-Fi", "high")]
    assert len(pred.interests[0].evidence) == 2 and pred.provenance.attempts == 1


class _NextItemScorer:
    """Stands in for ItemHeadScorer (logic only; the real one: tests/agent/test_itemhead.py): puts all of
    the next-item mass on ``favourite`` among the unconsumed items."""

    def __init__(self, catalog, favourite):
        self.item_ids = [it.item_id for it in catalog.items][::-1]  # its own item order, not the catalogue's
        self.index = {i: j for j, i in enumerate(self.item_ids)}
        self.favourite = favourite
        self.info = {"name": "stand-in", "kind": "item-head"}
        self.scored: list[list[str]] = []

    def scores(self, histories):
        import numpy as np

        self.scored.extend(list(h) for h in histories)
        return np.array([[3.0 if i == self.favourite else -1.0 for i in self.item_ids] for _ in histories])

    def next_item_probs(self, history, exclude=()):
        import numpy as np

        p = np.array([1.0 if i == self.favourite else 1e-3 for i in self.item_ids])
        p[[self.item_ids.index(i) for i in exclude if i in self.item_ids]] = 0
        return p / p.sum()

    def candidate_probs(self, history, candidates):
        import numpy as np

        p = np.array([1.0 if c == self.favourite else 1e-3 for c in candidates])
        return p / p.sum()


def test_item_head_scores_candidates_and_states_interests_without_generation(world, catalog):
    eng = ScriptedEngine([])  # no answer scripted: neither a choice prompt nor an interest generation may happen
    base = _agent(world, catalog, eng, fusion_weight=1.0, interest_source="item-head", item_head_interests=1)
    scored = base.score_candidates(["ann"])
    favourite = catalog.items[scored[0].candidates[-1]]  # the candidate stage's last: the head moves it first
    agent = base.with_item_head(_NextItemScorer(catalog, favourite.item_id))
    pred = agent.predict("ann", k=5)
    assert pred.next_items[0].item_id == favourite.item_id and eng.choice_prompts == [] and eng.requests == []
    assert len(pred.interests) == 1 and pred.interests[0].label in favourite.categories
    assert pred.provenance.tuned["kind"] == "item-head"
    # the LLM source stays the default: then the engine writes the interests
    llm = base.with_config(interest_source="llm").with_item_head(agent.item_head)
    assert not llm.interests_from_item_head and agent.interests_from_item_head
    with pytest.raises(AssertionError, match="ran out"):
        llm.predict("ann", k=5)


def test_item_head_brings_an_item_into_the_candidates_only_with_its_weight(world, catalog):
    base = _agent(world, catalog, ScriptedEngine([]), retrieval={"n_candidates": 2})
    scored = base.score_candidates(["ann"])[0]
    order = [int(i) for i in np.argsort(-scored.retrieval) if np.isfinite(scored.retrieval[i])]
    last = catalog.items[order[-1]]  # the candidate stage's last unconsumed item
    head = _NextItemScorer(catalog, last.item_id)
    unweighted = base.with_config(retrieval={"w_llm": 0.0}).with_item_head(head).score_candidates(["ann"])[0]
    assert unweighted.candidates == scored.candidates and head.scored == []  # w_llm 0: the head is not asked
    weighted = base.with_config(retrieval={"w_llm": 4.0}).with_item_head(head).score_candidates(["ann"])[0]
    assert weighted.candidates[0] == order[-1] and weighted.candidates[1] == scored.candidates[0]
    assert head.scored == [weighted.context.history]
    assert not np.isfinite(weighted.retrieval[[catalog.index[i] for i in ("m1", "m2", "m3", "m4", "m11")]]).any()
