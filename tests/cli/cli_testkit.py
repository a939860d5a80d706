"""Helpers for the CLI tests: the small catalogue and histories, run `tide` as a real process, read its stderr."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

MOVIES = {
    "m1": ("Alien (1979)", ("Horror", "Sci-Fi")), "m2": ("Aliens (1986)", ("Action", "Sci-Fi")),
    "m3": ("The Terminator (1984)", ("Action", "Sci-Fi")), "m4": ("Toy Story (1995)", ("Animation", "Comedy")),
    "m5": ("Babe (1995)", ("Comedy", "Drama")), "m6": ("Heat (1995)", ("Action", "Crime")),
    "m7": ("Predator (1987)", ("Action", "Sci-Fi")), "m8": ("Sense and Sensibility (1995)", ("Drama", "Romance")),
    "m9": ("Scream (1996)", ("Horror", "Thriller")), "m10": ("Fargo (1996)", ("Crime", "Drama")),
    "m11": ("Jumanji (1995)", ("Adventure", "Comedy")), "m12": ("Contact (1997)", ("Drama", "Sci-Fi")),
}
T0 = datetime(1997, 10, 1, 12, tzinfo=UTC)
#: (user, item, day): `ann` likes sci-fi and drifts to comedy, `bob` watches drama, `cy` action
HISTORY = [("ann", "m1", 0), ("ann", "m2", 1), ("ann", "m3", 2), ("ann", "m4", 30), ("ann", "m11", 31),
           ("bob", "m8", 0), ("bob", "m10", 1), ("bob", "m5", 2), ("cy", "m6", 3), ("cy", "m7", 4)]


def run_tide(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``python -m tide ARGS`` as a real process, stdout and stderr kept apart."""
    return subprocess.run([sys.executable, "-m", "tide", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


def stderr_lines(stderr: str) -> list[str]:
    """Non-blank pieces of stderr, split at newlines and at the carriage returns progress bars redraw with."""
    return [piece.strip() for piece in re.split(r"[\r\n]+", stderr) if piece.strip()]
