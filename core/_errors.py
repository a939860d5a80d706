"""The root of Tide's exception tree."""

from __future__ import annotations

__all__ = ["TideError"]


class TideError(Exception):
    """Root of every error raised by Tide on purpose (memory, prompts, agent, eval, the CLI).

    Each package subclasses it (``MemoryStoreError``, ``PromptError``, ``AgentError``, ``EvalError``), so a
    caller can catch everything the project raises with one ``except TideError``.
    """
