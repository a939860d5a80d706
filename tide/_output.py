"""Where the CLI writes: results on stdout, everything else (logs, progress, library chatter) on stderr.

vLLM logs to stdout by default, its engine core runs in a child process, and native code (OpenMP, oneDNN)
writes to file descriptor 1 directly, so environment settings alone cannot keep stdout clean. While a
command works, :func:`command` points fd 1 at stderr at the OS level (child processes inherit that) and
hands the command a stream on the real stdout for its result: ``tide predict --json | jq .`` sees exactly
one JSON document.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

import typer
from rich.console import Console

__all__ = ["Output", "command", "configure_logging", "progress_console"]

#: -v count -> level of every library logger (vLLM, transformers, sentence-transformers, torch, ...).
LEVELS = {0: logging.WARNING, 1: logging.INFO}
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

#: Progress (spinners, status lines) and error messages go to stderr.
progress_console = Console(stderr=True)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (an in-process runner swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(verbose: int) -> None:
    """Library logs to stderr: WARNING and above by default, INFO with ``-v``, DEBUG with ``-vv``.

    Set before vLLM or transformers is imported (every command imports them lazily), so their own
    logging set-up reads these values; the environment also reaches vLLM's engine-core process.
    """
    level = LEVELS.get(verbose, logging.DEBUG)
    name = logging.getLevelName(level)
    os.environ["VLLM_LOGGING_LEVEL"] = name
    # vLLM's handler writes to stdout unless told otherwise (the fd guard catches it too; this is cleaner).
    os.environ["VLLM_LOGGING_STREAM"] = "ext://sys.stderr"
    os.environ["TRANSFORMERS_VERBOSITY"] = name.lower()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)
    if not verbose:
        # third-party deprecation chatter and the libraries' own bars ("Loading weights") are not for a user
        # of the command, whose progress Tide shows itself; -v shows them
        warnings.simplefilter("ignore")
        os.environ["PYTHONWARNINGS"] = "ignore"  # and in vLLM's engine-core and worker processes
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read by huggingface_hub and transformers at import


class Output:
    """A command's result stream (the real stdout): text, rich tables, or exactly one JSON document."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        # soft wrap: a result line piped to a file or a program is not broken at 80 columns
        self.console = Console(file=stream, soft_wrap=True)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        self.console.print(*objects, **kwargs)

    def json(self, obj: Any) -> None:
        """Write one JSON document (``obj`` is a JSON string already, or anything ``json`` can dump)."""
        text = obj if isinstance(obj, str) else json.dumps(obj, indent=2, default=str)
        self.stream.write(text.rstrip("\n") + "\n")
        self.stream.flush()


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[TextIO]:
    """Point fd 1 (and ``sys.stdout``) at stderr for the block; yield a stream on the real stdout."""
    sys.stdout.flush()
    try:
        fd, err = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        # an in-process runner (tests): sys.stdout is not an OS file, so Python-level redirection is all
        real = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            yield real
        return
    saved = os.dup(fd)  # not inheritable: child processes see only the redirected fd 1
    os.dup2(err, fd)
    real = open(saved, "w", encoding="utf-8", closefd=False)  # noqa: SIM115 - closed in finally
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield real
    finally:
        real.flush()
        real.close()
        sys.stdout.flush()  # what a library wrote to the old stream object belongs on stderr
        os.dup2(saved, fd)
        os.close(saved)


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's to fix (bad input, a missing file, a server down): message, exit 1."""
    from core import TideError

    return (TideError, ValueError, OSError)


@contextlib.contextmanager
def command(what: str) -> Iterator[Output]:
    """Run a command's work with stdout guarded; a user-facing error becomes one line on stderr, exit 1.

    Args:
        what: the command's name, for the error message (``predict failed: ...``).
    """
    expected = user_errors()
    with _stdout_to_stderr() as real:
        try:
            yield Output(real)
        except expected as exc:
            progress_console.print(f"[red]{what} failed:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from exc
