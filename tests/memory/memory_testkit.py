"""Helpers shared by the memory tests (imported by test modules; not a test module itself)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from memory import Behavior

T0 = datetime(1997, 9, 20, 12, 0, tzinfo=UTC)


class HashEmbedder:
    """A deterministic stand-in embedder (text hash → seeded Gaussian → unit vector).

    Used only where the model's semantics do not matter and its start-up cost would dominate: in child
    processes (SIGKILL, second writer). Everything else uses the real packaged embedder.
    """

    def __init__(self, dim: int = 32) -> None:
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def name(self) -> str:
        return f"test-hash-{self._dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self._dim)
            out[i] = v / np.linalg.norm(v)
        return out


def behavior(user: str = "u1", item: str | None = "i1", *, days: float = 0.0, text: str | None = None,
             action: str = "view", **extra: Any) -> Behavior:
    """A valid behavior ``days`` after :data:`T0`."""
    return Behavior(user_id=user, item_id=item, action=action, text=text or f"item {item}",
                    timestamp=T0 + timedelta(days=days), **extra)


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """``n`` random unit vectors."""
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)
