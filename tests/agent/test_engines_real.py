"""The real embedded model on the real engines: in-process vLLM and `vllm serve` agree."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel

from agent import GenerationRequest, Message, OpenAIEngine, generate_structured, schema_for
from agent._model import VERIFY_PROMPT, load_manifest

pytestmark = pytest.mark.engine


class Genre(BaseModel):
    genre: Literal["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi"]
    confidence: Literal["low", "medium", "high"]


MSGS = (Message(role="system", content="You describe movies."),
        Message(role="user", content="Which genre is Alien (1979)?"))
REQUESTS = [
    GenerationRequest(prompt=VERIFY_PROMPT, max_tokens=12),
    GenerationRequest(messages=MSGS, max_tokens=16, stop=("\nUser:",)),
    GenerationRequest(prompt="Movie: Alien (1979). Answer in JSON:", max_tokens=40, json_schema=schema_for(Genre)),
    GenerationRequest(prompt="Is Heat (1995) a comedy? Answer:", max_tokens=4, choices=("yes", "no")),
]
CHOICE_PROMPT = ("A user watched Alien, Aliens and The Terminator. Which movie next?\n"
                 "A: Toy Story\nB: Predator\nC: Sense and Sensibility\nAnswer:")


def test_vllm_greedy_equals_transformers_reference(engine, model_path):
    manifest = load_manifest(model_path)
    [out] = engine.generate([GenerationRequest(prompt=VERIFY_PROMPT, max_tokens=manifest["verify_tokens"])])
    assert out.text == manifest["reference_continuation"]
    assert out.finish_reason == "length" and out.completion_tokens == manifest["verify_tokens"]


def test_both_engines_give_the_same_greedy_results(engine, server_url):
    local = engine.generate(REQUESTS)
    with OpenAIEngine.from_url(server_url) as remote:
        served = remote.generate(REQUESTS)
        remote_scores = remote.score_choices([CHOICE_PROMPT], ["A", "B", "C"])[0]
    assert [c.text for c in local] == [c.text for c in served]
    assert [c.finish_reason for c in local] == [c.finish_reason for c in served]
    assert Genre.model_validate_json(local[2].text)
    assert local[3].text in {"yes", "no"}
    local_scores = engine.score_choices([CHOICE_PROMPT], ["A", "B", "C"])[0]
    assert local_scores.probs == pytest.approx(remote_scores.probs, abs=1e-3)


def test_choice_scores_form_a_distribution(engine):
    scores = engine.score_choices([CHOICE_PROMPT, CHOICE_PROMPT + " B"], ["A", "B", "C"])
    for s in scores:
        assert sum(s.probs) == pytest.approx(1.0)
        assert 0.0 < s.label_mass <= 1.0
    assert scores[0].probs != scores[1].probs


def test_structured_output_on_the_real_engine(engine):
    prompts = [f"Movie: {t}. Answer in JSON:" for t in ("Alien (1979)", "Toy Story (1995)", "Heat (1995)")]
    results = generate_structured(engine, Genre, [GenerationRequest(prompt=p, max_tokens=40) for p in prompts])
    assert all(isinstance(r.value, Genre) for r in results)


def test_multi_token_label_is_rejected(engine):
    from agent import EngineError

    with pytest.raises(EngineError, match="one token"):
        engine.score_choices(["x"], ["A", "Supercalifragilistic"])
