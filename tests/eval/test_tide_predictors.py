"""Tide's predictors in the harness: memory never holds the future; the agent tunes on validation only.

Real store, real embedder and real FAISS on small synthetic data; a scripted engine stands in for the LLM
(the real engine is exercised in tests/agent).
"""

from __future__ import annotations

import json

import pytest

from agent import AgentConfig, ChoiceScores, Completion, InterestAgent
from eval import EvalError, leave_one_out, make_synthetic, run_evaluation
from eval._tide import AgentPredictor, MemoryPredictor, MemorySync, catalog_from_dataset


class FakeEngine:
    """Prefers the second candidate; answers interests with the first label the prompt offers."""

    def __init__(self):
        self.generated = 0
        self.scored = 0
        self.content_free = 0  # calibration's prior prompts (every candidate "N/A")
        self.offered: list[list[str]] = []

    model_name = "fake"
    description = {"engine": "fake"}

    def generate(self, requests):
        self.generated += len(requests)
        out = []
        for r in requests:
            # the grounded schema: one branch per offered label, citing only behaviors that carry it
            branches = [d for name, d in sorted(r.json_schema["$defs"].items()) if name.startswith("LLMInterest")]
            self.offered.append([b["properties"]["label"]["const"] for b in branches])
            first = branches[0]["properties"]
            body = json.dumps({"interests": [{"label": first["label"]["const"], "confidence": "high",
                                              "horizon": "short", "evidence": [first["evidence"]["items"].get("enum", [first["evidence"]["items"].get("const")])[0]]}]})
            out.append(Completion(text=body, finish_reason="stop", prompt_tokens=1, completion_tokens=1))
        return out

    def score_choices(self, prompts, labels):
        self.scored += len(prompts)
        self.content_free += sum('"N/A"' in p for p in prompts)
        probs = [0.01] * len(labels)
        probs[min(1, len(labels) - 1)] = 1.0
        s = sum(probs)
        return [ChoiceScores(labels=tuple(labels), probs=tuple(p / s for p in probs), label_mass=0.9) for _ in prompts]

    def close(self):
        pass


@pytest.fixture(scope="module")
def synth():
    ds, _ = make_synthetic(n_users=12, n_items=60, seed=3, min_events=8, max_events=12)
    return ds, leave_one_out(ds)


@pytest.fixture(scope="module")
def embedder():
    from memory import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder.from_package()


@pytest.fixture
def parts(synth, embedder, tmp_path):
    from memory import MemoryStore

    ds, split = synth
    store = MemoryStore.open(tmp_path / "m", embedder=embedder)
    engine = FakeEngine()
    agent = InterestAgent(store, catalog_from_dataset(ds, embedder), engine, AgentConfig())
    yield ds, split, store, agent, engine
    store.close()


def test_memory_holds_exactly_the_history_and_refuses_to_go_back(parts):
    ds, split, store, agent, _ = parts
    sync = MemorySync(store, ds)
    pred = MemoryPredictor(agent, sync)
    pred.fit(split)
    user = split.test_users[0]
    val, test = split.request(user, "val"), split.request(user, "test")
    [r] = pred.rank([val], 10)
    assert store.count(user) == len(val.history)
    assert not set(r.item_ids) & val.exclude and len(r.item_ids) == 10
    pred.rank([test], 10)
    assert store.count(user) == len(test.history) == len(val.history) + 1
    with pytest.raises(EvalError, match="leak"):
        pred.rank([val], 10)


def test_agent_tunes_fusion_on_validation_without_generating_interests(parts, tmp_path):
    ds, split, _, agent, engine = parts
    sync = MemorySync(agent.store, ds)
    memory = MemoryPredictor(agent, sync)
    agent_pred = AgentPredictor(agent, sync, candidates=memory)
    result = run_evaluation(ds, [memory, agent_pred], split, users=6, seed=0, out_dir=tmp_path / "out",
                            n_bootstrap=50, progress=False, sampled_negatives=0)
    summary = result.summary.to_dict()  # as summary.json holds it
    tuning = summary["models"]["agent"]["tuning"]
    grid = [(w, c) for w in agent_pred.tunable["fusion_weight"] for c in agent_pred.tunable["calibrate"]]
    assert [(r["params"]["fusion_weight"], r["params"]["calibrate"]) for r in tuning["results"]] == grid
    # one LLM pass per (user, stage) despite twelve grid points (+ one content-free prompt per candidate
    # count for calibration); interests only for the test stage
    # (validation users whose target is not among their candidates get no choice prompt: see below)
    # (and test users none when validation kept the reference: fusion weight 0, so the choice weighs nothing)
    assert tuning["reference"] == {"fusion_weight": 0.0, "calibrate": False}
    assert engine.scored - engine.content_free == 12 - agent_pred.skipped_prompts - agent_pred.skipped_choice
    assert agent_pred.skipped_choice == (6 if tuning["best"]["fusion_weight"] == 0 else 0)
    assert 1 <= engine.content_free <= 2 and engine.generated == 6
    # the agent re-ranked the memory model's fitted and tuned candidate stage, with its own tuned LLM settings
    tuned = agent_pred.current_agent
    assert tuned.transitions is memory.agent.transitions is not None
    assert tuned.config.retrieval == memory.agent.config.retrieval
    assert tuned.config.retrieval.w_co == summary["models"]["memory"]["tuning"]["best"]["w_co"]
    assert tuned.config.fusion_weight == tuning["best"]["fusion_weight"]
    assert agent.transitions is None and agent.config == AgentConfig()  # the agent passed in is unchanged
    assert summary["models"]["agent"]["valid_rate"] == 1.0
    # each user chose among their own grounded labels (a few of the taxonomy, never all of it)
    taxonomy = agent.catalog.taxonomy
    assert all(2 <= len(offered) <= agent.config.interest_labels < len(taxonomy) for offered in engine.offered)
    assert sorted(r.info["interests"][0] for r in result.rankings["agent"]) == sorted(o[0] for o in engine.offered)
    assert (tmp_path / "out" / "rankings.jsonl").exists()


def test_agent_skips_validation_prompts_that_cannot_move_the_target(parts):
    ds, split, _, agent, engine = parts
    sync = MemorySync(agent.store, ds)
    memory = MemoryPredictor(agent, sync)
    memory.fit(split)
    users = [u for u in split.test_users if u in split.val][:2]
    requests = [split.request(u, "val") for u in users]
    full = AgentPredictor(agent, sync, candidates=memory).rank(requests, 30)  # every user prompted
    n = agent.config.retrieval.n_candidates
    inside, outside = full[0].info["candidates"][3], full[1].item_ids[n + 4]
    assert outside not in full[1].info["candidates"]
    pred = AgentPredictor(agent, sync, candidates=memory)
    pred.set_stage("val", targets={users[0]: inside, users[1]: outside})
    before = engine.scored
    ranked = pred.rank(requests, 30)
    assert engine.scored - before == 1 and pred.skipped_prompts == 1  # only the user whose target can move
    # the targets' ranks are what full work gives (the LLM re-orders only the candidates)
    assert ranked[0].item_ids.index(inside) == full[0].item_ids.index(inside)
    assert ranked[1].item_ids.index(outside) == full[1].item_ids.index(outside) == n + 4
    assert ranked[0].item_ids == full[0].item_ids  # a prompted user is ranked exactly as without targets
    pred.set_stage("test")  # test ranking never skips: the same requests are prompted again
    pred.rank(requests, 30)
    assert engine.scored - before == 2 and pred.skipped_prompts == 1  # user 0 answered from the cache


def test_memory_tunes_the_decay_half_life_in_the_shared_store(parts):
    ds, _, store, agent, _ = parts
    pred = MemoryPredictor(agent, MemorySync(store, ds))
    assert "short_half_life_days" in pred.tunable
    pred.set_params(w_co=3.0, short_half_life_days=1 / 24)
    assert store.config.short_half_life_days == 1 / 24  # a store setting: the agent sees it too
    assert pred.agent.config.retrieval.w_co == 3.0 and pred.agent.store is store
    assert agent.config.retrieval.w_co == AgentConfig().retrieval.w_co  # a new agent; the given one is unchanged
    assert pred.config["memory"]["short_half_life_days"] == 1 / 24
    with pytest.raises(ValueError, match="long_half_life_days"):
        pred.set_params(short_half_life_days=1000.0)  # must stay below the long horizon


def test_agent_reports_its_candidate_stage_recall(parts, tmp_path):
    ds, split, _, agent, _ = parts
    sync = MemorySync(agent.store, ds)
    result = run_evaluation(ds, [AgentPredictor(agent, sync)], split, users=4, seed=0, out_dir=tmp_path / "o",
                            n_bootstrap=20, progress=False, sampled_negatives=0, tune=False)
    rec = result.summary.to_dict()["models"]["agent"]["candidate_recall"]
    hits = [split.test[u].item_id in r.info["candidates"] for u, r in zip(result.users, result.rankings["agent"], strict=True)]
    assert rec["n"] == agent.config.retrieval.n_candidates and rec["mean"] == pytest.approx(sum(hits) / len(hits))
    assert f"recall@{rec['n']}" in (tmp_path / "o" / "results.md").read_text()
    # deeper cut-offs: the candidates, then the retriever's order (the agent's ranking past its candidates)
    # k defaults to 50: every cut-off above the candidates fits in every ranking
    assert set(rec["deeper"]) == {str(m) for m in (20, 30, 50) if m > rec["n"]} and "30" in rec["deeper"]
    for m, deeper in rec["deeper"].items():
        held = [split.test[u].item_id in r.info["candidates"] or split.test[u].item_id in r.item_ids[:int(m)]
                for u, r in zip(result.users, result.rankings["agent"], strict=True)]
        assert int(m) > rec["n"] and deeper["mean"] == pytest.approx(sum(held) / len(held))
        assert deeper["mean"] >= rec["mean"]
        assert f"recall@{m}" in (tmp_path / "o" / "results.md").read_text()


def test_memory_sync_embeds_each_distinct_text_once_and_stores_what_the_embedder_says(synth, embedder, tmp_path):
    from eval._tide import dataset_behaviors
    from memory import MemoryStore

    class Counting:
        def __init__(self, inner):
            self.inner, self.texts = inner, []
            self.dim, self.name = inner.dim, inner.name

        def embed(self, texts):
            self.texts.extend(texts)
            return self.inner.embed(texts)

    ds, split = synth
    counting = Counting(embedder)
    synced = MemoryStore.open(tmp_path / "sync", embedder=counting)
    plain = MemoryStore.open(tmp_path / "plain", embedder=embedder)
    try:
        sync = MemorySync(synced, ds, progress=False)
        users = split.test_users
        for start in range(0, len(users), 3):  # several batches: texts repeat across them
            sync.sync([split.request(u, "val") for u in users[start: start + 3]])
        sync.sync([split.request(u, "test") for u in users])
        texts = [b.text for u in users for b in dataset_behaviors(ds, u)[: len(split.request(u, "test").history)]]
        assert len(counting.texts) == len(set(counting.texts)) == len(set(texts)) == sync.embedded
        assert len(set(texts)) < len(texts)  # the synthetic data repeats texts, so the cache was used
        for u in users:
            plain.add(dataset_behaviors(ds, u)[: len(split.request(u, "test").history)])
        for u in users[:4]:
            a, b = synced.retrieve(u, "a film", k=5, now=None), plain.retrieve(u, "a film", k=5, now=None)
            assert [r.behavior.text for r in a] == [r.behavior.text for r in b]
            assert [r.score for r in a] == pytest.approx([r.score for r in b], abs=1e-5)
    finally:
        synced.close()
        plain.close()


def test_memory_sync_names_a_failing_embedder_and_adds_nothing(synth, embedder, tmp_path):
    from memory import MemoryStore

    class Broken:
        dim, name = embedder.dim, embedder.name

        def embed(self, texts):
            raise RuntimeError("out of memory")

    ds, split = synth
    store = MemoryStore.open(tmp_path / "m", embedder=Broken())
    try:
        user = split.test_users[0]
        sync = MemorySync(store, ds, progress=False)
        for _ in range(2):  # not recorded as held: the retry tries again instead of skipping the user
            with pytest.raises(EvalError, match="embedder .* failed: out of memory"):
                sync.sync([split.request(user, "val")])
        assert store.count(user) == 0
    finally:
        store.close()


def test_agent_with_no_llm_weight_asks_no_choice_at_test(parts):
    ds, split, _, agent, engine = parts
    sync = MemorySync(agent.store, ds)
    memory = MemoryPredictor(agent, sync)
    memory.fit(split)
    users = split.test_users[:3]
    pred = AgentPredictor(agent, sync, candidates=memory)
    pred.set_params(fusion_weight=0.0, calibrate=False)
    pred.set_stage("test")
    scored, generated = engine.scored, engine.generated
    ranked = pred.rank([split.request(u, "test") for u in users], 20)
    assert engine.scored == scored and pred.skipped_choice == 3  # no choice prompt ...
    assert engine.generated - generated == 3  # ... but every user's interests
    assert not any(r.info["llm_choice"] for r in ranked)
    plain = memory.rank([split.request(u, "test") for u in users], 20)
    assert [r.item_ids for r in ranked] == [r.item_ids for r in plain]  # the candidate stage's own ranking
    pred.set_params(fusion_weight=0.5)  # a weight again: the choice is asked (not read from the cache)
    again = pred.rank([split.request(u, "test") for u in users], 20)
    assert engine.scored - scored == 3 and all(r.info["llm_choice"] for r in again)


class _HeadScorer:
    """Stands in for agent.ItemHeadScorer (the real one: tests/agent/test_itemhead.py): all next-item
    mass on one item of the catalogue."""

    info = {"name": "stand-in", "kind": "item-head"}

    def __init__(self, item_ids, favourite):
        self.item_ids, self.favourite = list(item_ids), favourite
        self.index = {i: j for j, i in enumerate(self.item_ids)}

    def scores(self, histories):
        import numpy as np

        return np.array([[1.0 if i == self.favourite else 0.0 for i in self.item_ids] for _ in histories])

    def next_item_probs(self, history, exclude=()):
        import numpy as np

        p = np.array([1.0 if i == self.favourite else 1e-4 for i in self.item_ids])
        p[[self.item_ids.index(i) for i in exclude if i in self.item_ids]] = 0
        return p / p.sum()

    def candidate_probs(self, history, candidates):
        import numpy as np

        p = np.array([1.0 if c == self.favourite else 1e-4 for c in candidates])
        return p / p.sum()


def test_agent_with_an_item_head_scores_and_states_interests_without_the_engine(parts):
    ds, split, _, agent, engine = parts
    sync = MemorySync(agent.store, ds)
    memory = MemoryPredictor(agent, sync)
    memory.fit(split)
    user = split.test_users[0]
    req = split.request(user, "test")
    plain = memory.rank([req], 20)[0]
    favourite = plain.item_ids[5]  # among the candidate stage's top 15, not first
    headed = agent.with_item_head(_HeadScorer([it.item_id for it in agent.catalog.items], favourite))
    memory_h = MemoryPredictor(headed, sync)
    memory_h.fit(split)
    pred = AgentPredictor(headed, sync, candidates=memory_h)
    pred.set_params(fusion_weight=1.0, calibrate=False)
    pred.set_stage("test")
    scored, generated = engine.scored, engine.generated
    [ranked] = pred.rank([req], 20)
    assert engine.scored == scored and engine.generated == generated  # neither a choice prompt nor generation
    assert ranked.info["llm_choice"] and ranked.item_ids[0] == favourite
    # the interests: all next-item mass is on the favourite, so the set worth most (expected F1) is its genres
    assert set(ranked.info["interests"]) == set(ds.items[favourite].genres[:3])


class _OracleHead:
    """Stands in for agent.ItemHeadScorer in the candidate stage (logic only): after any history, the
    dataset's own next item scores highest (a model that is always right)."""

    info = {"name": "oracle", "kind": "item-head"}

    def __init__(self, ds):
        self.seqs = {u: [e.item_id for e in evs] for u, evs in ds.sequences.items()}
        self.item_ids = sorted(ds.items)
        self.index = {i: j for j, i in enumerate(self.item_ids)}

    def _next(self, history):
        for seq in self.seqs.values():
            if seq[:len(history)] == list(history) and len(seq) > len(history):
                return seq[len(history)]
        return None

    def scores(self, histories):
        import numpy as np

        out = np.zeros((len(histories), len(self.item_ids)))
        for r, h in enumerate(histories):
            nxt = self._next(h)
            if nxt is not None:
                out[r, self.index[nxt]] = 1.0
        return out

    def candidate_probs(self, history, candidates):
        import numpy as np

        s = self.scores([history])[0]
        p = np.array([np.exp(5 * s[self.index[c]]) for c in candidates])
        return p / p.sum()

    def next_item_probs(self, history, exclude=()):
        import numpy as np

        p = np.exp(5 * self.scores([history])[0])
        p[[self.index[i] for i in exclude if i in self.index]] = 0
        return p / p.sum()


def test_agent_tunes_the_item_heads_catalogue_weight_on_validation_and_keeps_memory_llm_free(parts, tmp_path):
    ds, split, _, agent, engine = parts
    headed = agent.with_item_head(_OracleHead(ds))
    sync = MemorySync(agent.store, ds)
    memory = MemoryPredictor(headed, sync)
    pred = AgentPredictor(headed, sync, candidates=memory)
    assert pred.tune_reference == {"w_llm": 0.0, "fusion_weight": 0.0} and "calibrate" not in pred.tunable
    result = run_evaluation(ds, [memory, pred], split, users=12, seed=0, out_dir=tmp_path / "out",
                            n_bootstrap=200, progress=False, sampled_negatives=0)
    tuning = result.summary.to_dict()["models"]["agent"]["tuning"]
    assert len(tuning["results"]) == len(pred.tunable["w_llm"]) * len(pred.tunable["fusion_weight"])
    # an always-right head wins on validation, so its weight is kept; and then it is right on test too
    assert tuning["best"]["w_llm"] > 0 and tuning["against_reference"]["kept"] == "best grid point"
    top = [r.item_ids[0] for r in result.rankings["agent"]]
    assert top == [split.test[u].item_id for u in result.users]
    assert [r.item_ids[0] for r in result.rankings["memory"]] != top
    assert memory.current_agent.config.retrieval.w_llm == 0.0  # the memory baseline never reads the LLM
    assert engine.scored == 0 and engine.generated == 0  # the head scores and states interests: no engine call
