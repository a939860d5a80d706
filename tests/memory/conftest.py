"""Fixtures for the memory tests: one real embedder per session, real SQLite/FAISS stores in tmp_path."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from memory_testkit import behavior

from memory import Behavior, MemoryConfig, MemoryStore, SentenceTransformerEmbedder


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2, loaded once per test session (offline)."""
    return SentenceTransformerEmbedder.from_package()


@pytest.fixture
def store(tmp_path, embedder) -> Iterator[MemoryStore]:
    """A fresh store in ``tmp_path/store`` with the real embedder."""
    with MemoryStore.open(tmp_path / "store", embedder=embedder, config=MemoryConfig()) as s:
        yield s


@pytest.fixture(scope="session")
def _shared_history() -> list[Behavior]:
    genres = [["Drama"], ["Comedy"], ["Sci-Fi", "Horror"], ["Drama", "Romance"]]
    titles = ["a quiet family drama", "a slapstick comedy", "aliens attack a space station", "a love story in Paris"]
    return [
        behavior("alice", f"m{i}", days=i, text=titles[i % 4], attributes={"genres": genres[i % 4]})
        for i in range(12)
    ]


@pytest.fixture
def history(_shared_history) -> Iterator[list[Behavior]]:
    """A small shared history; fails the test that mutates it."""
    before = copy.deepcopy(_shared_history)
    yield _shared_history
    assert _shared_history == before, "test mutated the shared history fixture"
