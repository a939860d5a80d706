"""Errors raised by the agent package; all derive from :class:`core.TideError`."""

from __future__ import annotations

from typing import Any

from core import TideError

__all__ = [
    "AgentError",
    "EngineError",
    "EngineUnavailableError",
    "FeedbackError",
    "ModelPreparationError",
    "StructuredOutputError",
    "TideError",
    "UnknownItemError",
    "UnknownUserError",
]


class AgentError(TideError):
    """Base class for errors of the agent package."""


class ModelPreparationError(AgentError):
    """The embedded model could not be prepared or verified.

    Attributes:
        reason: a short machine-readable reason (``missing-package``, ``checksum``, ``disk-full``, ...).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class EngineError(AgentError):
    """The LLM engine failed to serve a request (not a validation failure of its output)."""


class EngineUnavailableError(EngineError):
    """The engine could not be reached or started (after bounded retries for remote engines).

    Attributes:
        url: the server URL, when the engine is remote.
        attempts: how many transport attempts were made.
    """

    def __init__(self, message: str, *, url: str | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts


class StructuredOutputError(AgentError):
    """Every attempt to obtain a valid structured output failed.

    Attributes:
        attempts: number of attempts made.
        raw_outputs: the raw text of every attempt, in order.
        reasons: why each attempt was rejected (validation error text or ``finish_reason=length``).
        output_model: name of the pydantic model that was requested.
    """

    def __init__(self, output_model: str, raw_outputs: list[str], reasons: list[str]) -> None:
        self.output_model = output_model
        self.raw_outputs = raw_outputs
        self.reasons = reasons
        self.attempts = len(raw_outputs)
        last = reasons[-1] if reasons else "no attempt"
        super().__init__(
            f"no valid {output_model} after {self.attempts} attempt(s); last reason: {last[:300]}"
        )

    @property
    def last_output(self) -> str | None:
        return self.raw_outputs[-1] if self.raw_outputs else None

    def details(self) -> dict[str, Any]:
        return {
            "output_model": self.output_model,
            "attempts": self.attempts,
            "raw_outputs": self.raw_outputs,
            "reasons": self.reasons,
        }


class UnknownUserError(AgentError, KeyError):
    """The user has no memory and the caller asked for no cold-start fallback."""


class UnknownItemError(AgentError, KeyError):
    """The item is not in the agent's catalogue (feedback must name an item the agent can recommend)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class FeedbackError(AgentError, ValueError):
    """A feedback signal that cannot be stored: unknown signal, naive or malformed time, bad place.

    Attributes:
        field: The offending argument (``signal``, ``at`` or ``place``).
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
