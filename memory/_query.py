"""Turning a ``retrieve`` query into a unit vector, and scoring every behavior of a user against it."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from memory._embedder import Embedder, normalise_rows
from memory._errors import InvalidQueryError, MemoryStoreError
from memory._state import UserState

__all__ = ["QueryEncoder", "centroid", "similarities"]

# Query texts repeat (the agent asks about the same items); embedding one costs milliseconds on CPU.
QUERY_CACHE_SIZE = 1024
# A mean of unit vectors shorter than this has cancelled out and has no usable direction.
_MIN_CENTROID_NORM = 1e-6


class QueryEncoder:
    """Validates text/vector queries and embeds texts, with a small LRU of recent query texts."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, query: object) -> np.ndarray:
        """A read-only unit float32 vector for ``query`` (text or ``dim`` numbers).

        Raises:
            InvalidQueryError: Blank text, wrong length, non-finite or zero vector, or another type.
        """
        dim = self._embedder.dim
        if isinstance(query, str):
            if not query.strip():
                raise InvalidQueryError("query text must not be blank", argument="query")
            with self._lock:
                cached = self._cache.get(query)
                if cached is not None:
                    self._cache.move_to_end(query)
                    return cached
            vec = normalise_rows(np.asarray(self._embedder.embed([query])).reshape(1, dim))[0]
            vec.flags.writeable = False
            with self._lock:
                self._cache[query] = vec
                while len(self._cache) > QUERY_CACHE_SIZE:
                    self._cache.popitem(last=False)
            return vec
        try:
            arr = np.asarray(query, dtype=np.float32)
        except (TypeError, ValueError):
            raise InvalidQueryError(f"expected text, a vector or None, got {type(query).__name__}",
                                    argument="query") from None
        if arr.size != dim or arr.ndim > 2:
            raise InvalidQueryError(f"a query vector needs {dim} values, got shape {arr.shape}", argument="query")
        try:
            return normalise_rows(arr.reshape(1, dim))[0]
        except MemoryStoreError as exc:
            raise InvalidQueryError(str(exc), argument="query") from None


def centroid(state: UserState, newest_first: np.ndarray, window: int) -> np.ndarray:
    """Unit mean of the ``window`` newest vectors (the newest one alone if they cancel out)."""
    recent = newest_first[:window]
    mean = state.vectors[recent].astype(np.float64).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm).astype(np.float32) if norm > _MIN_CENTROID_NORM else np.array(state.vectors[recent[0]])


def similarities(state: UserState, query: np.ndarray) -> np.ndarray:
    """Cosine of every behavior to ``query``, by position, from an exhaustive search of the user's FAISS index."""
    import faiss

    n = len(state)
    # Per-user indexes are small: OpenMP hand-off costs more than it saves, and on a busy machine a worker
    # thread that is descheduled stalls the search for a whole time slice (p99 of ~10 ms instead of ~10 µs).
    # omp_set_num_threads only changes the calling thread's setting, so this is safe under threads.
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        dist, labels = state.index.search(query.reshape(1, -1).astype(np.float32), n)
    finally:
        faiss.omp_set_num_threads(previous)
    sims = np.empty(n, dtype=np.float32)
    sims[np.searchsorted(state.ids, labels[0])] = dist[0]
    return sims
