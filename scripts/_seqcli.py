"""What ``scripts/sasrec_search.py`` and ``scripts/seq_models.py`` share: the ``--runs/--out/--lock`` options,
the heavy-work lock held across consecutive fits, and reading the search's JSONL records."""

from __future__ import annotations

import argparse
import fcntl
import json
import time
from pathlib import Path

__all__ = ["DEFAULT_LOCK", "HeavyLock", "add_run_args", "read_records"]

DEFAULT_LOCK = "/tmp/tide-heavy.lock"


def add_run_args(parser: argparse.ArgumentParser, *, runs: str | None, out: str | None) -> None:
    """Add ``--runs`` (finished fits), ``--out`` (result files) and ``--lock`` (the shared flock file)."""
    parser.add_argument("--runs", default=runs)
    parser.add_argument("--out", default=out)
    parser.add_argument("--lock", default=DEFAULT_LOCK, help="flock file held during each fit ('' = none)")


def read_records(path: Path) -> list[dict]:
    """The JSON records of a JSONL file, one a line (none when the file does not exist)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class HeavyLock:
    """The shared heavy-work flock, kept across consecutive fits for at most ``budget_s`` of holding.

    A fit starts only while the lock has been held for less than ``budget_s``; otherwise the lock is
    released (others get their turn) and taken again. With fits of <= 3 minutes a hold stays <= 10 minutes.
    """

    def __init__(self, path: str | None, budget_s: float = 400.0) -> None:
        self.path, self.budget_s = path, budget_s
        self.handle, self.since = None, 0.0

    def before_fit(self) -> None:
        if not self.path:
            return
        if self.handle is not None and time.monotonic() - self.since > self.budget_s:
            self.release()
        if self.handle is None:
            self.handle = open(self.path, "a")  # noqa: SIM115 - held across fits, closed in release()
            t0 = time.monotonic()
            fcntl.flock(self.handle, fcntl.LOCK_EX)
            self.since = time.monotonic()
            print(f"  (lock taken after {self.since - t0:.0f}s)", flush=True)

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
