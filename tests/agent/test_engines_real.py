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


IN_PROCESS_CHILD = """
import json, multiprocessing, os, sys
from agent import GenerationRequest, VLLMEngine
if __name__ == "__main__":
    eng = VLLMEngine.from_model(sys.argv[1], dtype="float32", in_process=True)
    [out] = eng.generate([GenerationRequest(prompt=sys.argv[2], max_tokens=12)])
    [scores] = eng.score_choices([sys.argv[3]], ["A", "B", "C"])
    print("RESULT " + json.dumps({"text": out.text, "probs": scores.probs,
                                  "children": len(multiprocessing.active_children()),
                                  "env": os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")}))
    eng.close()
"""


def test_in_process_engine_answers_as_the_default_one_without_child_processes(engine, model_path, tmp_path):
    # in its own process: an in-process engine binds that process's threads and keeps its memory
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "child.py"
    script.write_text(IN_PROCESS_CHILD)
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
    env["PYTHONPATH"] = str(root)
    res = subprocess.run([sys.executable, str(script), str(model_path), VERIFY_PROMPT, CHOICE_PROMPT],
                         capture_output=True, text=True, timeout=600, env=env, cwd=root)
    lines = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    assert res.returncode == 0 and lines, res.stderr[-3000:]
    got = json.loads(lines[0][len("RESULT "):])
    assert got["children"] == 0  # no engine-core or worker process
    assert got["env"] is None  # the setting does not leak to later engines of the process
    [out] = engine.generate([GenerationRequest(prompt=VERIFY_PROMPT, max_tokens=12)])
    assert got["text"] == out.text
    [scores] = engine.score_choices([CHOICE_PROMPT], ["A", "B", "C"])
    assert got["probs"] == pytest.approx(scores.probs, abs=1e-3)
