"""One place that chooses the LLM engine: a ``vllm serve`` at a URL, or the embedded in-process model."""

from __future__ import annotations

from typing import Any

from ._engine import LLMEngine

__all__ = ["make_engine"]


def make_engine(url: str | None = None, **vllm_options: Any) -> LLMEngine:
    """The engine Tide answers with: an :class:`agent.OpenAIEngine` on ``url``, else the embedded vLLM.

    Both engines are context managers, so callers write ``with make_engine(url) as engine: ...`` and the
    engine is closed on every path.

    Args:
        url: the OpenAI-compatible base URL of a running ``vllm serve`` (``http://HOST:PORT/v1``); ``None``
            or empty starts :meth:`agent.VLLMEngine.from_defaults` on the embedded model.
        **vllm_options: :class:`agent.VLLMEngineConfig` fields (``seed``, ``dtype``, ``model``: a model
            folder such as a tuned one, ...) for the embedded engine; ignored with a URL, whose server was
            configured when it started.

    Raises:
        EngineUnavailableError: the server cannot be reached, or vLLM cannot start.
    """
    if url:
        from ._openai import OpenAIEngine

        return OpenAIEngine.from_url(url)
    from ._vllm import VLLMEngine

    model = vllm_options.pop("model", None)  # a model folder (e.g. a tuned one) instead of the embedded model
    return VLLMEngine.from_model(model, **vllm_options) if model else VLLMEngine.from_defaults(**vllm_options)
