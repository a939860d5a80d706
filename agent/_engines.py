"""One place that chooses the LLM engine: a ``vllm serve`` at a URL, or the embedded in-process model."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._engine import ChoiceScores, Completion, GenerationRequest, LLMEngine

__all__ = ["BackgroundEngine", "make_engine"]


def make_engine(url: str | None = None, *, background: bool = False, **vllm_options: Any) -> LLMEngine:
    """The engine Tide answers with: an :class:`agent.OpenAIEngine` on ``url``, else the embedded vLLM.

    Both engines are context managers, so callers write ``with make_engine(url) as engine: ...`` and the
    engine is closed on every path.

    Args:
        url: the OpenAI-compatible base URL of a running ``vllm serve`` (``http://HOST:PORT/v1``); ``None``
            or empty starts :meth:`agent.VLLMEngine.from_defaults` on the embedded model.
        background: Start it in a background thread and return (a :class:`BackgroundEngine`): the caller
            fits models or fills memory while vLLM starts (~65 s of its ~85 s on 2 cores; vLLM is imported
            first, in the caller's thread, ~20 s); the first call waits.
        **vllm_options: :class:`agent.VLLMEngineConfig` fields (``seed``, ``dtype``, ``model``: a model
            folder such as a tuned one, ...) for the embedded engine; ignored with a URL, whose server was
            configured when it started.

    Raises:
        EngineUnavailableError: the server cannot be reached, or vLLM cannot start (with ``background``: at
            the engine's first use).
    """
    if background:
        if not url:  # imports stay in this thread (see agent._vllm.import_vllm); the start runs in another
            from ._vllm import import_vllm

            import_vllm()
        return BackgroundEngine(lambda: make_engine(url, **vllm_options))
    if url:
        from ._openai import OpenAIEngine

        return OpenAIEngine.from_url(url)
    from ._vllm import VLLMEngine

    model = vllm_options.pop("model", None)  # a model folder (e.g. a tuned one) instead of the embedded model
    return VLLMEngine.from_model(model, **vllm_options) if model else VLLMEngine.from_defaults(**vllm_options)


class BackgroundEngine:
    """An :class:`LLMEngine` that starts in a background thread; every call first waits until it is up.

    Starting the embedded vLLM takes a minute or more on a small CPU, mostly spawning and importing its
    processes; a job that has other work before its first LLM call (loading data, fitting baselines,
    filling memory) hides that minute. A failed start is raised at the first call, and again at each
    later one. ``close`` waits for the start to finish, then closes the engine.
    """

    def __init__(self, start: Callable[[], LLMEngine]) -> None:
        self._engine: LLMEngine | None = None
        self._error: BaseException | None = None
        self._t0 = time.perf_counter()
        #: seconds from construction until the engine was up (None while starting or after a failure)
        self.start_seconds: float | None = None
        self._thread = threading.Thread(target=self._run, args=(start,), name="tide-engine-start", daemon=True)
        self._thread.start()

    def _run(self, start: Callable[[], LLMEngine]) -> None:
        try:
            self._engine = start()
            self.start_seconds = time.perf_counter() - self._t0
        except BaseException as exc:  # re-raised in the caller's thread at first use
            self._error = exc

    def ready(self) -> LLMEngine:
        """The started engine, waiting for it if needed.

        Raises:
            EngineUnavailableError: (or whatever the start raised) the engine did not start.
        """
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._engine is not None
        return self._engine

    @property
    def started(self) -> bool:
        """Whether the start has finished (successfully or not); never waits."""
        return not self._thread.is_alive()

    @property
    def model_name(self) -> str:
        return self.ready().model_name

    @property
    def description(self) -> dict[str, Any]:
        return self.ready().description

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return self.ready().generate(requests)

    def score_choices(self, prompts: Sequence[str], labels: Sequence[str]) -> list[ChoiceScores]:
        return self.ready().score_choices(prompts, labels)

    def close(self) -> None:
        self._thread.join()
        if self._engine is not None:
            self._engine.close()

    def __getattr__(self, name: str) -> Any:
        # the started engine's own extras (tokenizer, label_token_ids, ...); private names stay private
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.ready(), name)

    def __enter__(self) -> BackgroundEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
