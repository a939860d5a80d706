"""A user's derived, in-memory state: the FAISS index and the per-behavior arrays retrieval scores on.

States are immutable once built (copy-on-write): a writer builds a new state and swaps it into the cache,
so readers never see a half-updated index and need no lock while searching.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memory._time import US_PER_HOUR

__all__ = ["Columns", "UserState", "build_state", "extend_state", "extract_tags"]

_US_PER_DAY = 24 * US_PER_HOUR
# 1970-01-01 was a Thursday; Monday = 0 as in datetime.weekday().
_EPOCH_WEEKDAY = 3


def extract_tags(attributes: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    """The attribute values a behavior contributes to profiles.

    The first of ``keys`` present in ``attributes`` is used: a list of strings, or one string split on
    ``|`` (the MovieLens genre format). Duplicates are dropped, order kept.
    """
    for key in keys:
        value = attributes.get(key)
        if value is None:
            continue
        items = value.split("|") if isinstance(value, str) else value if isinstance(value, list) else [value]
        out: list[str] = []
        for item in items:
            if isinstance(item, str) and item.strip() and item.strip() not in out:
                out.append(item.strip())
        return out
    return []


@dataclass
class Columns:
    """Behaviors of one user in column form, ordered by id (ascending)."""

    ids: np.ndarray  # int64
    ts_us: np.ndarray  # int64
    weights: np.ndarray  # float32
    lat: np.ndarray  # float64, NaN when unknown
    lon: np.ndarray  # float64, NaN when unknown
    places: list[str | None]
    tags: list[list[str]]
    embeddings: np.ndarray  # float32 (n, dim), unit rows

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True)
class UserState:
    """Immutable derived state of one user at one ``version`` of the SQLite record.

    Attributes:
        user_key: Internal integer key of the user (never the user_id; used in file names).
        version: The user's version in SQLite this state reflects.
        dim: Vector dimension.
        attribute_keys: The ``MemoryConfig.attribute_keys`` the tags were extracted with.
        ids, ts_us, weights, lat, lon: Per-behavior arrays, in id order (= FAISS row order).
        hours, weekdays: UTC hour (0–23) and weekday (Monday = 0) per behavior.
        place_codes: Index into ``place_names`` per behavior, −1 when none.
        tag_indptr, tag_codes: CSR lists of indices into ``tag_names`` per behavior.
        order_desc: Positions sorted newest first (timestamp, then id, descending).
        index: ``IndexIDMap2(IndexFlatIP)`` holding the unit vectors under their ids.
        vectors: Read-only view of the index's vectors, row i = ``ids[i]`` (no copy).
        dirty: Whether the on-disk index file is older than this state.
    """

    user_key: int
    version: int
    dim: int
    attribute_keys: tuple[str, ...]
    ids: np.ndarray
    ts_us: np.ndarray
    weights: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    hours: np.ndarray
    weekdays: np.ndarray
    place_names: tuple[str, ...]
    place_codes: np.ndarray
    tag_names: tuple[str, ...]
    tag_indptr: np.ndarray
    tag_codes: np.ndarray
    order_desc: np.ndarray
    index: Any
    vectors: np.ndarray
    dirty: bool = False
    _keep: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def nbytes(self) -> int:
        """Approximate memory held by this state (for the cache budget)."""
        arrays = (self.ids, self.ts_us, self.weights, self.lat, self.lon, self.hours, self.weekdays,
                  self.place_codes, self.tag_indptr, self.tag_codes, self.order_desc, self.vectors)
        # id map of IndexIDMap2 (8 B) and its reverse hash map (~32 B) per vector, plus fixed overhead.
        return sum(a.nbytes for a in arrays) + 40 * len(self) + 2048


def _codes(values: Sequence[str | None]) -> tuple[tuple[str, ...], np.ndarray]:
    names: dict[str, int] = {}
    codes = np.full(len(values), -1, dtype=np.int32)
    for i, v in enumerate(values):
        if v is not None:
            codes[i] = names.setdefault(v, len(names))
    return tuple(names), codes


def _csr(lists: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    names: dict[str, int] = {}
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    flat: list[int] = []
    for i, items in enumerate(lists):
        for item in items:
            flat.append(names.setdefault(item, len(names)))
        indptr[i + 1] = len(flat)
    return tuple(names), indptr, np.asarray(flat, dtype=np.int32)


def make_index(dim: int, vectors: np.ndarray, ids: np.ndarray) -> tuple[Any, np.ndarray, Any]:
    """Build ``IndexIDMap2(IndexFlatIP)`` over unit vectors; return it, a view of its vectors, and the flat index."""
    import faiss

    flat = faiss.IndexFlatIP(dim)
    index = faiss.IndexIDMap2(flat)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))
    return index, index_vectors(index, dim), flat


def index_vectors(index: Any, dim: int) -> np.ndarray:
    """A read-only numpy view of the vectors inside an ``IndexIDMap2(IndexFlat)`` (valid while it is unchanged)."""
    import faiss

    n = int(index.ntotal)
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)
    flat = faiss.downcast_index(index.index)
    view = faiss.rev_swig_ptr(flat.get_xb(), n * dim).reshape(n, dim)
    view.flags.writeable = False
    return view


def derive(
    user_key: int,
    version: int,
    dim: int,
    attribute_keys: tuple[str, ...],
    *,
    ids: np.ndarray,
    ts_us: np.ndarray,
    weights: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    place_names: tuple[str, ...],
    place_codes: np.ndarray,
    tag_names: tuple[str, ...],
    tag_indptr: np.ndarray,
    tag_codes: np.ndarray,
    index: Any,
    dirty: bool,
) -> UserState:
    """Assemble a state from its stored parts, computing the cheap derived arrays."""
    ts = np.asarray(ts_us, dtype=np.int64)
    hours = ((ts // US_PER_HOUR) % 24).astype(np.int8)
    weekdays = (((ts // _US_PER_DAY) + _EPOCH_WEEKDAY) % 7).astype(np.int8)
    order_desc = np.lexsort((-np.asarray(ids), -ts)).astype(np.int64)
    return UserState(
        user_key=user_key, version=version, dim=dim, attribute_keys=attribute_keys,
        ids=ids, ts_us=ts, weights=weights, lat=lat, lon=lon, hours=hours, weekdays=weekdays,
        place_names=place_names, place_codes=place_codes, tag_names=tag_names, tag_indptr=tag_indptr,
        tag_codes=tag_codes, order_desc=order_desc, index=index, vectors=index_vectors(index, dim),
        dirty=dirty, _keep=index,
    )


def build_state(
    user_key: int, version: int, dim: int, attribute_keys: tuple[str, ...], cols: Columns, *, dirty: bool
) -> UserState:
    """Build a state from columns (rows ordered by id)."""
    index, _, _ = make_index(dim, cols.embeddings, cols.ids)
    place_names, place_codes = _codes(cols.places)
    tag_names, tag_indptr, tag_codes = _csr(cols.tags)
    return derive(
        user_key, version, dim, attribute_keys,
        ids=np.asarray(cols.ids, dtype=np.int64), ts_us=cols.ts_us,
        weights=np.asarray(cols.weights, dtype=np.float32),
        lat=np.asarray(cols.lat, dtype=np.float64), lon=np.asarray(cols.lon, dtype=np.float64),
        place_names=place_names, place_codes=place_codes, tag_names=tag_names, tag_indptr=tag_indptr,
        tag_codes=tag_codes, index=index, dirty=dirty,
    )


def state_columns(state: UserState) -> Columns:
    """The columns a state was built from (vectors copied out of the index)."""
    places = [state.place_names[c] if c >= 0 else None for c in state.place_codes]
    tags = [
        [state.tag_names[c] for c in state.tag_codes[state.tag_indptr[i] : state.tag_indptr[i + 1]]]
        for i in range(len(state))
    ]
    return Columns(state.ids, state.ts_us, state.weights, state.lat, state.lon, places, tags,
                   np.array(state.vectors, dtype=np.float32))


def extend_state(state: UserState, version: int, new: Columns) -> UserState:
    """A new state with ``new`` rows (ids greater than all existing) appended; ``state`` is unchanged."""
    old = state_columns(state)
    merged = Columns(
        ids=np.concatenate([old.ids, new.ids]).astype(np.int64),
        ts_us=np.concatenate([old.ts_us, new.ts_us]).astype(np.int64),
        weights=np.concatenate([old.weights, new.weights]).astype(np.float32),
        lat=np.concatenate([old.lat, new.lat]),
        lon=np.concatenate([old.lon, new.lon]),
        places=old.places + new.places,
        tags=old.tags + new.tags,
        embeddings=np.vstack([old.embeddings, new.embeddings]),
    )
    return build_state(state.user_key, version, state.dim, state.attribute_keys, merged, dirty=True)
