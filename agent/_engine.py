"""The engine layer: what the agent asks of an LLM, independent of where the LLM runs.

An :class:`LLMEngine` serves *batches* of :class:`GenerationRequest` and answers each with a
:class:`Completion`. Two implementations ship: :class:`agent.VLLMEngine` (in-process ``vllm.LLM``) and
:class:`agent.OpenAIEngine` (a ``vllm serve`` fleet behind a URL). Both build their prompts with
:func:`render_messages`, so the same request gives the same greedy text on either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BASE_FORMAT_VERSION",
    "ChoiceScores",
    "Completion",
    "GenerationRequest",
    "LLMEngine",
    "Message",
    "render_base_prompt",
    "render_messages",
]

#: Version of the plain completion format used for base models (no chat template). Recorded in provenance.
BASE_FORMAT_VERSION = "base-v1"


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=200_000)


class GenerationRequest(BaseModel):
    """One generation request.

    Exactly one of ``prompt`` and ``messages`` is set. At most one of ``json_schema`` and ``choices``
    constrains the output. ``max_tokens`` is required: an unbounded generation is never what we want.
    """

    model_config = ConfigDict(frozen=True)

    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    max_tokens: int = Field(ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None
    choices: tuple[str, ...] | None = None
    logprobs: int | None = Field(default=None, ge=0, le=20)

    @model_validator(mode="after")
    def _one_input(self) -> GenerationRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("set exactly one of prompt and messages")
        if self.json_schema is not None and self.choices is not None:
            raise ValueError("set at most one of json_schema and choices")
        if self.choices is not None and not self.choices:
            raise ValueError("choices must not be empty")
        return self


class Completion(BaseModel):
    """The answer to one :class:`GenerationRequest`."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    #: per generated token, the top alternatives as {token text: logprob}; only when requested.
    logprobs: list[dict[str, float]] | None = None


class ChoiceScores(BaseModel):
    """Probabilities of a fixed set of labels as the next token after a prompt (one forward pass)."""

    labels: tuple[str, ...]
    probs: tuple[float, ...]
    #: total raw probability mass the model put on the labels before renormalisation; low values mean the
    #: model did not expect a label there (a formatting problem, not a preference).
    label_mass: float

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.labels, self.probs, strict=True))


@runtime_checkable
class LLMEngine(Protocol):
    """What the agent needs from an LLM server. Implementations must be safe to call with large batches."""

    @property
    def model_name(self) -> str: ...

    @property
    def description(self) -> dict[str, Any]:
        """Engine kind, model, and settings, for provenance."""
        ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Serve a batch; the i-th completion answers the i-th request."""
        ...

    def score_choices(self, prompts: Sequence[str], labels: Sequence[str]) -> list[ChoiceScores]:
        """For each prompt, the probability of each label as the next token, renormalised over labels."""
        ...

    def close(self) -> None: ...


def render_base_prompt(messages: Sequence[Message]) -> str:
    """Render messages in Tide's plain completion format for base models (``base-v1``).

    A base model has no chat template, so the conversation is written as a transcript that a pretrained
    model continues naturally::

        <system text>

        User: <text>
        Assistant: <text>
        User: <text>
        Assistant:

    The returned prompt ends with ``"Assistant:"`` so the model writes the next assistant turn. Engines
    stop generation at ``"\\nUser:"`` for free text.
    """
    parts: list[str] = []
    for m in messages:
        if m.role == "system":
            parts.append(m.content.strip() + "\n")
        elif m.role == "user":
            parts.append(f"User: {m.content.strip()}")
        else:
            parts.append(f"Assistant: {m.content.strip()}")
    return "\n".join(parts) + "\nAssistant:"


def render_messages(messages: Sequence[Message], chat_template: Any | None) -> str:
    """Render messages with the model's own chat template when it has one, else :func:`render_base_prompt`.

    Args:
        messages: the conversation.
        chat_template: a tokenizer with a chat template (``apply_chat_template``), or ``None``.
    """
    if chat_template is not None and getattr(chat_template, "chat_template", None):
        return chat_template.apply_chat_template(
            [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
        )
    return render_base_prompt(messages)


def normalise_choice_logprobs(labels: Sequence[str], logprobs: Sequence[float]) -> ChoiceScores:
    """Turn the raw next-token log-probabilities of the labels into probabilities that sum to one."""
    finite = [lp if math.isfinite(lp) else -1e9 for lp in logprobs]
    top = max(finite)
    weights = [math.exp(lp - top) for lp in finite]
    total = sum(weights)
    mass = sum(math.exp(lp) for lp in finite if lp > -1e8)
    return ChoiceScores(
        labels=tuple(labels), probs=tuple(w / total for w in weights), label_mass=min(1.0, mass)
    )
