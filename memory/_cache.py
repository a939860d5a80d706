"""A byte-bounded LRU of user states, with the version guard that keeps stale states out."""

from __future__ import annotations

import threading
from collections import OrderedDict

from memory._state import UserState

__all__ = ["StateCache"]

# Marks a user whose record was deleted outright: no state of it may be cached again.
_GONE = 2**62


class StateCache:
    """Least-recently-used user states within a memory budget.

    The cache also remembers, for every user written in this process, the latest committed version, so a
    reader that loaded an older version while a writer committed cannot put a stale state back.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._states: OrderedDict[int, UserState] = OrderedDict()
        self._bytes = 0
        self._committed: dict[int, int] = {}
        self.lock = threading.Lock()

    def get(self, user_key: int) -> UserState | None:
        """The cached state, marked most recently used."""
        with self.lock:
            state = self._states.get(user_key)
            if state is not None:
                self._states.move_to_end(user_key)
            return state

    def put(self, state: UserState) -> tuple[bool, list[UserState]]:
        """Cache ``state`` unless a newer version is committed or cached.

        Returns:
            Whether it was cached, and the states evicted to make room (the caller persists dirty ones).
        """
        with self.lock:
            if self._committed.get(state.user_key, -1) > state.version:
                return False, []
            current = self._states.get(state.user_key)
            if current is not None:
                if current.version >= state.version:
                    self._states.move_to_end(state.user_key)
                    return False, []
                self._bytes -= current.nbytes
            self._states[state.user_key] = state
            self._states.move_to_end(state.user_key)
            self._bytes += state.nbytes
            evicted: list[UserState] = []
            while self._bytes > self._max_bytes and len(self._states) > 1:
                _, old = self._states.popitem(last=False)
                self._bytes -= old.nbytes
                evicted.append(old)
            if self._bytes > self._max_bytes:
                # A budget smaller than one state: keep nothing rather than exceed it.
                self._states.pop(state.user_key)
                self._bytes -= state.nbytes
                evicted.append(state)
            return True, evicted

    def committed(self, user_key: int, version: int | None) -> UserState | None:
        """Record a commit of ``user_key`` at ``version`` (``None``: user deleted) and drop stale states.

        The cached state is always removed, so no reader sees it after the commit.

        Returns:
            The removed state if it was exactly one version behind (the writer may extend it and ``put``
            the result), else ``None``.
        """
        with self.lock:
            self._committed[user_key] = _GONE if version is None else version
            state = self._states.pop(user_key, None)
            if state is None:
                return None
            self._bytes -= state.nbytes
            return state if version is not None and state.version == version - 1 else None

    def is_current(self, user_key: int, version: int) -> bool:
        """Whether ``version`` is not older than the latest committed one known."""
        with self.lock:
            return self._committed.get(user_key, -1) <= version

    def dirty_states(self) -> list[UserState]:
        """Cached states whose index file is out of date."""
        with self.lock:
            return [s for s in self._states.values() if s.dirty]

    def mark_clean(self, old: UserState, new: UserState) -> None:
        """Replace ``old`` by its clean copy ``new`` if ``old`` is still the cached state."""
        with self.lock:
            if self._states.get(old.user_key) is old:
                self._states[old.user_key] = new

    def drain(self) -> list[UserState]:
        """Remove and return every cached state."""
        with self.lock:
            states = list(self._states.values())
            self._states.clear()
            self._bytes = 0
            return states

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._states)
