"""Errors raised by the evaluation harness.

``EvalError`` is this package's root and subclasses the project-wide :class:`core.TideError`, so callers
can catch everything Tide raises at once.
"""

from __future__ import annotations

from core import TideError

__all__ = ["DataFormatError", "EvalError", "NotFittedError", "SplitError"]


class EvalError(TideError):
    """Root of every error raised by ``eval``."""


class DataFormatError(EvalError):
    """A data file is missing or not in a format we can read.

    Attributes:
        path: The offending file or folder.
        line: 1-based line number where the problem was found, when known.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = f" ({path}" + (f", line {line}" if line is not None else "") + ")" if path else ""
        super().__init__(message + where)
        self.path = path
        self.line = line


class SplitError(EvalError):
    """A split cannot be built or queried (unknown user, bad cut, empty result)."""


class NotFittedError(EvalError):
    """A predictor was asked to rank before ``fit`` (or ``load``) was called."""
