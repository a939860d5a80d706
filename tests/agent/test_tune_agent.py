"""An agent on a tuned model asks it in the format it was trained on and records it in provenance."""

from __future__ import annotations

import json

from agent_fakes import ScriptedEngine

from agent import AgentConfig, InterestAgent, rank_short_prompt


class _TunedEngine(ScriptedEngine):
    def __init__(self, folder, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.folder = folder

    @property
    def model_name(self) -> str:
        return str(self.folder)


def _tuned_folder(tmp_path):
    folder = tmp_path / "gemma-3-270m-tuned-abc"
    folder.mkdir()
    manifest = {"model": folder.name, "key": "abc", "kind": "lora-merged", "base": {"name": "gemma-3-270m"},
                "template": "rank_short", "data": {"fingerprint": "f" * 64, "config": {"history_items": 3}},
                "train": {"steps": 2}, "metrics": {"validation": {"tuned": {"rank": 9.0}}}, "files": {}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_tuned_model_gets_its_training_prompt_and_provenance(world, catalog, tmp_path):
    interests = json.dumps({"interests": [{"label": "Sci-Fi", "confidence": "high", "horizon": "short",
                                           "evidence": [1]}]})
    engine = _TunedEngine(_tuned_folder(tmp_path), [interests])
    agent = InterestAgent.from_defaults(world, catalog, engine=engine, config=AgentConfig())
    [s] = agent.score_candidates(["ann"])
    prompt = agent.choice_prompt(s)
    recent = [catalog.items[catalog.index[i]] for i in s.context.history[-3:]]
    assert prompt == rank_short_prompt(recent, [catalog.items[i] for i in s.candidates])
    pred = agent.predict("ann", k=3)
    assert pred.provenance.tuned is not None and pred.provenance.tuned["key"] == "abc"
    assert "rank_short" in pred.provenance.templates and engine.choice_prompts[0].startswith("Recently chosen")


def test_untuned_model_keeps_the_memory_prompt(world, catalog):
    interests = json.dumps({"interests": [{"label": "Sci-Fi", "confidence": "high", "horizon": "short",
                                           "evidence": [1]}]})
    agent = InterestAgent.from_defaults(world, catalog, engine=ScriptedEngine([interests]), config=AgentConfig())
    pred = agent.predict("ann", k=3)
    assert pred.provenance.tuned is None and "rank" in pred.provenance.templates
