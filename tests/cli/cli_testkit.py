"""Helpers for the CLI tests: run `tide` as a real process and read its stderr."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_tide(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``python -m tide ARGS`` as a real process, stdout and stderr kept apart."""
    return subprocess.run([sys.executable, "-m", "tide", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


def stderr_lines(stderr: str) -> list[str]:
    """Non-blank pieces of stderr, split at newlines and at the carriage returns progress bars redraw with."""
    return [piece.strip() for piece in re.split(r"[\r\n]+", stderr) if piece.strip()]
