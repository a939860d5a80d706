"""Fixtures for the agent tests: one real in-process vLLM engine and one real `vllm serve` per session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from agent import ChoiceScores, Completion, GenerationRequest, VLLMEngine, ensure_model

SERVER_START_TIMEOUT_S = 420


@pytest.fixture(scope="session")
def model_path() -> Path:
    return ensure_model()


@pytest.fixture(scope="session")
def engine(model_path) -> Iterator[VLLMEngine]:
    """The real embedded engine (float32, eager), started once per test session."""
    eng = VLLMEngine.from_model(model_path)
    yield eng
    eng.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_url(model_path, tmp_path_factory) -> Iterator[str]:
    """A real `vllm serve` (OpenAI API) on 127.0.0.1 with the embedded model, same settings as `engine`."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_path),
        "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--enforce-eager", "--seed", "0",
        "--max-model-len", "4096", "--max-num-seqs", "64",
        "--structured-outputs-config", '{"backend":"xgrammar","disable_any_whitespace":true}',
    ]
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vllm serve did not start in {SERVER_START_TIMEOUT_S} s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


class ScriptedEngine:
    """A fake engine answering from a script, for retry/parse logic only (never to claim vLLM works)."""

    def __init__(self, texts: Sequence[str | tuple[str, str]], choice_probs: Sequence[float] | None = None):
        self._texts = list(texts)
        self.requests: list[GenerationRequest] = []
        self.choice_prompts: list[str] = []
        self._choice_probs = choice_probs

    @property
    def model_name(self) -> str:
        return "scripted"

    @property
    def description(self) -> dict:
        return {"engine": "scripted"}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        out = []
        for r in requests:
            self.requests.append(r)
            if not self._texts:
                raise AssertionError("scripted engine ran out of answers")
            item = self._texts.pop(0)
            text, reason = (item, "stop") if isinstance(item, str) else item
            out.append(Completion(text=text, finish_reason=reason, prompt_tokens=1, completion_tokens=len(text)))
        return out

    def score_choices(self, prompts: Sequence[str], labels: Sequence[str]) -> list[ChoiceScores]:
        self.choice_prompts.extend(prompts)
        probs = list(self._choice_probs or [1.0 / len(labels)] * len(labels))[: len(labels)]
        total = sum(probs)
        return [ChoiceScores(labels=tuple(labels), probs=tuple(p / total for p in probs), label_mass=0.5)
                for _ in prompts]

    def close(self) -> None:
        pass
