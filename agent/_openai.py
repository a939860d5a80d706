"""A remote engine: a ``vllm serve`` fleet behind its OpenAI-compatible API.

This is how Tide scales past one machine: run many vLLM replicas behind one URL and point Tide at it
(``--engine-url``). Requests use ``/v1/completions`` with the prompt rendered here exactly as
:class:`agent.VLLMEngine` renders it, so both engines give the same greedy text. Transport failures
(connection refused, timeouts, HTTP 5xx/429) are retried with exponential backoff inside a bounded total
time; a 4xx other than 429 is a bad request and fails at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from ._engine import (
    ChoiceScores,
    Completion,
    GenerationRequest,
    Message,
    normalise_choice_logprobs,
    render_base_prompt,
)
from ._errors import EngineError, EngineUnavailableError

__all__ = ["OpenAIEngine", "OpenAIEngineConfig"]

log = logging.getLogger(__name__)


class OpenAIEngineConfig(BaseModel):
    """Settings of the remote engine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1")
    model: str | None = Field(default=None, description="served model name; default: the first listed")
    api_key: str = "EMPTY"
    timeout_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    #: bound on the total time spent retrying one request (transport failures only)
    max_retry_s: float = Field(default=60.0, gt=0)
    concurrency: int = Field(default=16, ge=1)


class _Transient(Exception):
    """A failure worth retrying (transport error, 5xx, 429)."""


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _Transient)


class OpenAIEngine:
    """:class:`agent.LLMEngine` over HTTP to ``vllm serve`` (or any server speaking vLLM's extensions).

    Structured outputs use vLLM's ``structured_outputs`` request field; choice scoring uses
    ``logprob_token_ids`` with token ids read from the server's ``/tokenize``.
    """

    def __init__(self, config: OpenAIEngineConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        self._client = client or httpx.Client(
            timeout=config.timeout_s, headers={"Authorization": f"Bearer {config.api_key}"}
        )
        self._root = config.url.rstrip("/").removesuffix("/v1")
        self._model = config.model
        self._chat_template: bool | None = None
        self._label_ids: dict[str, int] = {}
        self.retries = 0  # transport retries performed, for tests and diagnostics

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> OpenAIEngine:
        """Connect to a server; checks it answers and learns the served model name.

        Raises:
            EngineUnavailableError: the server cannot be reached within the retry budget.
        """
        engine = cls(OpenAIEngineConfig(url=url, **overrides))
        if engine._model is None:
            data = engine._request("GET", "/v1/models")
            engine._model = data["data"][0]["id"]
        return engine

    # -- transport -------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self._root + path

        def once() -> dict[str, Any]:
            try:
                resp = self._client.request(method, url, json=body)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from exc
            if resp.status_code >= 500 or resp.status_code == 429:
                raise _Transient(f"HTTP {resp.status_code}: {resp.text[:200]}")
            if resp.status_code >= 400:
                raise EngineError(f"{method} {path} -> HTTP {resp.status_code}: {resp.text[:500]}")
            return resp.json()

        attempts = 0
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(self.config.max_attempts) | stop_after_delay(self.config.max_retry_s),
                wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
                retry=retry_if_exception(_is_transient),
                reraise=False,
            ):
                with attempt:
                    attempts += 1
                    if attempts > 1:
                        self.retries += 1
                    return once()
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise EngineUnavailableError(
                f"{self.config.url} unreachable after {attempts} attempt(s): {last}",
                url=self.config.url,
                attempts=attempts,
            ) from last
        raise AssertionError("unreachable")  # pragma: no cover

    # -- LLMEngine -------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self._model or "?"

    @property
    def description(self) -> dict[str, Any]:
        return {"engine": "openai", "url": self.config.url, "model": self.model_name}

    def _has_chat_template(self) -> bool:
        if self._chat_template is None:
            try:
                self._request("POST", "/tokenize", {"model": self._model,
                                                     "messages": [{"role": "user", "content": "x"}]})
                self._chat_template = True
            except EngineError:
                # vLLM answers 400 when the model has no chat template: use Tide's base format
                self._chat_template = False
        return self._chat_template

    def _prompt(self, messages: Sequence[Message]) -> str | None:
        return None if self._has_chat_template() else render_base_prompt(messages)

    def _one(self, request: GenerationRequest) -> Completion:
        body: dict[str, Any] = {
            "model": self._model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.json_schema is not None:
            body["structured_outputs"] = {"json": request.json_schema}
        elif request.choices is not None:
            body["structured_outputs"] = {"choice": list(request.choices)}
        if request.logprobs is not None:
            body["logprobs"] = request.logprobs
        prompt = request.prompt
        if prompt is None:
            assert request.messages is not None
            prompt = self._prompt(request.messages)
        if prompt is None:  # chat model: let the server apply its own template
            body["messages"] = [m.model_dump() for m in request.messages or ()]
            data = self._request("POST", "/v1/chat/completions", body)
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
            lps = None
            if request.logprobs is not None and choice.get("logprobs"):
                lps = [
                    {t["token"]: t["logprob"] for t in (step.get("top_logprobs") or [step])}
                    for step in choice["logprobs"]["content"]
                ]
        else:
            body["prompt"] = prompt
            data = self._request("POST", "/v1/completions", body)
            choice = data["choices"][0]
            text = choice["text"]
            lps = None
            if request.logprobs is not None and choice.get("logprobs"):
                lps = [dict(step) for step in choice["logprobs"].get("top_logprobs") or []]
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            logprobs=lps,
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        if not requests:
            return []
        # the server batches concurrent requests itself (continuous batching)
        with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(requests))) as pool:
            return list(pool.map(self._one, requests))

    def label_token_ids(self, labels: Sequence[str]) -> list[int]:
        ids = []
        for label in labels:
            if label not in self._label_ids:
                data = self._request("POST", "/tokenize", {"model": self._model, "prompt": " " + label,
                                                            "add_special_tokens": False})
                toks = data["tokens"]
                if len(toks) != 1:
                    raise EngineError(f"choice label {label!r} is {len(toks)} tokens; labels must be one token")
                self._label_ids[label] = int(toks[0])
            ids.append(self._label_ids[label])
        if len(set(ids)) != len(ids):
            raise EngineError(f"choice labels {list(labels)} do not map to distinct tokens")
        return ids

    def _score_one(self, prompt: str, labels: Sequence[str], ids: list[int]) -> ChoiceScores:
        body = {"model": self._model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0,
                "logprobs": len(ids), "logprob_token_ids": ids}
        data = self._request("POST", "/v1/completions", body)
        step = (data["choices"][0]["logprobs"].get("top_logprobs") or [{}])[0]
        by_label = {k.strip(): v for k, v in step.items()}
        return normalise_choice_logprobs(labels, [by_label.get(label, float("-inf")) for label in labels])

    def score_choices(self, prompts: Sequence[str], labels: Sequence[str]) -> list[ChoiceScores]:
        if not prompts:
            return []
        ids = self.label_token_ids(labels)
        with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(prompts))) as pool:
            return list(pool.map(lambda p: self._score_one(p, labels, ids), prompts))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
