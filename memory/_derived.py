"""The derived half of a store: per-user states in a byte-bounded LRU, in front of index files, in front of SQLite.

SQLite is the durable record; a user's :class:`UserState` (FAISS index + columns) is derived from it and can
always be rebuilt. A read takes the cached state, else the user's index file, else rebuilds from SQLite and
writes the file. Writers bring the cache up to date after each commit. Index-file failures cost only a
rebuild later, so they are counted, never raised.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from memory._cache import StateCache
from memory._db import Database
from memory._ingest import Inserted, new_columns
from memory._models import Behavior
from memory._snapshot import read_snapshot, snapshot_path, write_snapshot
from memory._state import UserState, build_state, extend_state

__all__ = ["DerivedStates"]


class DerivedStates:
    """Every user's derived state for one open store (thread-safe).

    Args:
        index_dir: Folder of the per-user index files.
        db: The store's database (the source a state is rebuilt from).
        dim: Embedding dimension.
        attribute_keys: The attribute keys profiles read (fixed for an open store).
        max_bytes: Memory budget of the cache.
    """

    def __init__(self, index_dir: Path, db: Database, dim: int, attribute_keys: Sequence[str], max_bytes: int) -> None:
        self._index_dir = index_dir
        self._db = db
        self._dim = dim
        self._keys = tuple(attribute_keys)
        self._cache = StateCache(max_bytes)
        self._files_lock = threading.Lock()
        self._stats = {"index_loads": 0, "index_rebuilds": 0, "index_writes": 0, "index_write_errors": 0}

    def get(self, user_key: int, version: int) -> UserState | None:
        """The user's state: cached, else from its index file, else rebuilt from SQLite (``None``: no rows)."""
        state = self._cache.get(user_key)
        if state is not None:
            return state
        state = read_snapshot(self._index_dir, user_key, version, self._dim, self._keys)
        if state is not None:
            self._stats["index_loads"] += 1
        else:
            loaded = self._db.load_columns(user_key, self._dim, self._keys)
            if loaded is None:
                return None
            version, cols = loaded
            state = build_state(user_key, version, self._dim, self._keys, cols, dirty=True)
            self._stats["index_rebuilds"] += 1
            if self._persist(state):
                state = _clean(state)
        self._put(state)
        return state

    def added(self, batch: list[Behavior], inserted: Inserted, vectors: dict[int, np.ndarray]) -> None:
        """After an insert commit: extend a cached state that is exactly one version behind, drop the rest."""
        for ukey, rows in inserted.new_rows.items():
            old = self._cache.committed(ukey, inserted.versions[ukey])
            if old is None:
                continue
            try:
                cols = new_columns(batch, rows, vectors, self._keys)
                self._put(extend_state(old, inserted.versions[ukey], cols))
            except Exception:  # derived data only: the state was already dropped, the next read rebuilds it
                continue

    def deleted(self, user_key: int, version: int | None) -> None:
        """After a delete commit (``version`` ``None``: user removed): drop the cached state and the index file."""
        self._cache.committed(user_key, version)
        with self._files_lock:
            snapshot_path(self._index_dir, user_key).unlink(missing_ok=True)

    def flush(self) -> int:
        """Write the index files of cached users changed since their last write; returns how many."""
        written = 0
        for state in self._cache.dirty_states():
            if self._persist(state):
                written += 1
                self._cache.mark_clean(state, _clean(state))
        return written

    def close(self) -> None:
        """Empty the cache, writing the index files of changed users."""
        for state in self._cache.drain():
            if state.dirty:
                self._persist(state)

    def stats(self) -> dict[str, int]:
        """Cached users and bytes, index files loaded/rebuilt/written."""
        return {"cached_users": len(self._cache), "cache_bytes": self._cache.nbytes, **self._stats}

    def _put(self, state: UserState) -> None:
        _, evicted = self._cache.put(state)
        for old in evicted:
            if old.dirty:
                self._persist(old)

    def _persist(self, state: UserState) -> bool:
        """Write a state's index file unless a newer version was committed (failures counted, not raised)."""
        with self._files_lock:
            if not self._cache.is_current(state.user_key, state.version):
                return False
            try:
                write_snapshot(self._index_dir, state)
            except OSError:
                self._stats["index_write_errors"] += 1
                return False
            self._stats["index_writes"] += 1
            return True


def _clean(state: UserState) -> UserState:
    return replace(state, dirty=False)
