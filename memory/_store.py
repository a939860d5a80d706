"""``MemoryStore``: each user's persistent, time-decayed memory of embedded behaviors.

Layout of a store directory::

    <path>/memory.db          SQLite (WAL): the durable record — behaviors and their float32 embeddings
    <path>/memory.db-wal|-shm SQLite's write-ahead log and shared memory
    <path>/index/xx/u<key>.tidx  per-user FAISS index files (derived; rebuilt when missing/stale/corrupt)
    <path>/LOCK               held (flock) by the one process that has the store open

Rules: one process opens a store at a time (a second gets :class:`StoreLockedError`); inside it any
number of threads may add, forget and read at once. Writes are serialised and atomic (one SQLite
transaction per ``add``/``forget``). Reads use per-thread connections and immutable per-user states kept in
a byte-bounded LRU.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from memory._cache import StateCache
from memory._config import MemoryConfig, ScoringWeights
from memory._context import QueryContext
from memory._db import Database
from memory._embedder import Embedder, SentenceTransformerEmbedder
from memory._errors import (
    EmbedderMismatchError,
    InvalidBehaviorError,
    InvalidQueryError,
    MemoryStoreError,
)
from memory._filters import make_filters
from memory._ingest import (
    DedupKey,
    Inserted,
    check_embeddings,
    dedup_key,
    embed_rows,
    insert_batch,
    new_columns,
    validate_record,
)
from memory._lock import StoreLock
from memory._models import Behavior, StoredBehavior
from memory._profile import build_profile
from memory._query import QueryEncoder
from memory._results import Profile, Retrieved
from memory._retrieve import score_state
from memory._snapshot import read_snapshot, snapshot_path, write_snapshot
from memory._state import UserState, build_state, extend_state
from memory._time import require_aware, to_us, utc_now

__all__ = ["MemoryStore"]

DB_NAME = "memory.db"
INDEX_DIR = "index"
# Sanity bound for k and exclude_recent (callers pass count(user) to read a whole history); larger values
# are almost certainly a unit bug (e.g. a timestamp passed as k).
MAX_K = 10_000_000


def _check_user_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not 1 <= len(user_id) <= 128:
        raise InvalidQueryError("must be a string of 1–128 characters", argument="user_id")
    return user_id


def _check_count(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= int(value) <= MAX_K:
        raise InvalidQueryError(f"must be an integer 0–{MAX_K}, got {value!r}", argument=argument)
    return int(value)


class MemoryStore:
    """Per-user persistent memory of behaviors with time-decayed retrieval and interest profiles.

    Build with :meth:`open`; use as a context manager or call :meth:`close`.
    """

    def __init__(
        self, directory: Path, embedder: Embedder, config: MemoryConfig, db: Database, lock: StoreLock
    ) -> None:
        """Use :meth:`open`."""
        self._dir = directory
        self._index_dir = directory / INDEX_DIR
        self._embedder = embedder
        self._config = config
        self._db = db
        self._lock = lock
        self._cache = StateCache(config.cache_max_bytes)
        self._files_lock = threading.Lock()
        self._encode = QueryEncoder(embedder)
        self._closed = False
        self._stats = {"index_loads": 0, "index_rebuilds": 0, "index_writes": 0, "index_write_errors": 0}

    # -- lifecycle -----------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | Path, embedder: Embedder | None = None, config: MemoryConfig | None = None
    ) -> MemoryStore:
        """Open (or create) the store in directory ``path``.

        Args:
            path: A directory (created if missing). It holds ``memory.db`` and the ``index`` folder.
            embedder: The embedder; ``None`` loads the packaged all-MiniLM-L6-v2 offline. A store remembers
                the embedder's name and dimension and refuses a different one.
            config: Settings; ``None`` means ``MemoryConfig()``.

        Returns:
            The open store.

        Raises:
            StoreLockedError: Another process (or another open store object) holds this store.
            EmbedderMismatchError: The store was built with another embedder.
            MemoryStoreError: ``path`` is not a directory or the database cannot be opened.
        """
        directory = Path(path)
        if directory.exists() and not directory.is_dir():
            raise MemoryStoreError(f"{directory} is not a directory; a memory store is a directory")
        if config is None:
            config = MemoryConfig()
        elif not isinstance(config, MemoryConfig):
            raise MemoryStoreError(f"config must be a MemoryConfig, got {type(config).__name__}")
        directory.mkdir(parents=True, exist_ok=True)
        lock = StoreLock(directory)
        try:
            if embedder is None:
                embedder = SentenceTransformerEmbedder.from_package(batch_size=config.embed_batch_size)
            elif not isinstance(embedder, Embedder):
                raise MemoryStoreError(f"embedder must provide dim, name and embed(); got {type(embedder).__name__}")
            db = Database(directory / DB_NAME, config.synchronous)
            try:
                stored = db.check_meta(embedder.name, int(embedder.dim))
                if stored is not None:
                    raise EmbedderMismatchError(stored, (embedder.name, int(embedder.dim)))
            except BaseException:
                db.close()
                raise
        except BaseException:
            lock.release()
            raise
        return cls(directory, embedder, config, db, lock)

    def close(self) -> None:
        """Write pending index files, close the database and release the process lock (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            for state in self._cache.drain():
                if state.dirty:
                    self._persist(state)
        finally:
            try:
                self._db.close()
            finally:
                self._lock.release()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise MemoryStoreError(f"memory store {self._dir} is closed")

    # -- properties ----------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The store directory."""
        return self._dir

    @property
    def embedder(self) -> Embedder:
        """The embedder in use (reuse it to embed queries and catalog items in the same space)."""
        return self._embedder

    @property
    def config(self) -> MemoryConfig:
        """The configuration (dump it next to results for provenance)."""
        return self._config

    #: settings read only when answering queries; changing them leaves stored data and indexes valid
    QUERY_SETTINGS = frozenset({
        "weights", "recency_half_life_days", "short_half_life_days", "long_half_life_days", "centroid_window",
        "profile_top_attributes", "profile_top_places", "profile_mass_fraction", "profile_min_shift", "context",
    })

    def reconfigure(self, **changes: Any) -> MemoryConfig:
        """Change query-time settings (half-lives, scoring weights, profile sizes) of an open store.

        This is how a harness tunes the decay half-lives on validation data without reopening or
        re-ingesting. Settings that shape what is stored (``attribute_keys``, ``synchronous``,
        ``cache_max_bytes``, ``embed_batch_size``) need a reopen and are refused.

        Returns:
            The new configuration.

        Raises:
            InvalidQueryError: An unknown or storage-shaping setting, or a value the config rejects.
        """
        self._check_open()
        bad = sorted(set(changes) - self.QUERY_SETTINGS)
        if bad:
            raise InvalidQueryError(f"cannot change on an open store (allowed: {', '.join(sorted(self.QUERY_SETTINGS))})",
                                    argument=", ".join(bad))
        try:
            new = MemoryConfig.model_validate({**self._config.model_dump(), **changes})
        except ValidationError as exc:
            raise InvalidQueryError(str(exc), argument=", ".join(sorted(changes))) from exc
        self._config = new
        return new

    def stats(self) -> dict[str, int]:
        """Counters: cached users and bytes, index files loaded/rebuilt/written."""
        return {"cached_users": len(self._cache), "cache_bytes": self._cache.nbytes, **self._stats}

    # -- writes --------------------------------------------------------------------------------------
    def add(
        self, behaviors: Iterable[Behavior | Mapping[str, Any]], *, embeddings: np.ndarray | None = None
    ) -> list[int]:
        """Store a batch of behaviors atomically: all of them or none.

        Texts are embedded in batches (each distinct text once) before the write transaction. A behavior
        whose ``(user_id, item_id, action, timestamp)`` is already stored (or repeated in the batch) is
        not stored again: its existing id is returned and it is not re-embedded.

        Args:
            behaviors: :class:`Behavior` objects or mappings with the same fields (validated here).
            embeddings: Optional precomputed vectors, shape ``(len(behaviors), embedder.dim)``, one per
                behavior; rows are L2-normalised. This lower-level path skips the embedder (used by the
                benchmark and by callers that embed elsewhere with the same model).

        Returns:
            The stable int64 id of each behavior, in input order.

        Raises:
            InvalidBehaviorError: A record is invalid (names the record index and field); nothing stored.
            MemoryStoreError: The embedder or the database failed; nothing stored.
        """
        self._check_open()
        if isinstance(behaviors, Behavior | Mapping | str | bytes) or not isinstance(behaviors, Iterable):
            raise InvalidBehaviorError("add() takes a sequence of behaviors, not a single one", field=None)
        batch = [validate_record(i, r) for i, r in enumerate(behaviors)]
        if not batch:
            return []
        given = None if embeddings is None else check_embeddings(embeddings, len(batch), self._embedder.dim)
        keys = [dedup_key(b) for b in batch]
        first: dict[DedupKey, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        known = self._db.existing_ids(first)  # an optimisation only; insert_batch re-checks under the lock
        todo = [i for key, i in first.items() if key not in known]
        vectors = embed_rows(self._embedder, batch, todo, given)
        with self._db.write_lock:
            self._check_open()
            inserted = insert_batch(self._db, batch, keys, todo, vectors)
            self._after_commit(batch, inserted, vectors)
        ids_by_key = {**known, **inserted.ids}
        return [ids_by_key[key] for key in keys]

    def _after_commit(self, batch: list[Behavior], inserted: Inserted, vectors: dict[int, np.ndarray]) -> None:
        """Bring cached states up to date: extend one that is exactly one version behind, drop the rest."""
        for ukey, rows in inserted.new_rows.items():
            old = self._cache.committed(ukey, inserted.versions[ukey])
            if old is None:
                continue
            try:
                cols = new_columns(batch, rows, vectors, self._config.attribute_keys)
                self._cache_put(extend_state(old, inserted.versions[ukey], cols))
            except Exception:  # derived data only: the state was already dropped, the next read rebuilds it
                continue

    def forget(self, user_id: str, before: datetime | None = None, ids: Iterable[int] | None = None) -> int:
        """Delete behaviors of one user for real (database rows, vectors and index files).

        With neither ``before`` nor ``ids`` every behavior of the user is deleted; with both, those matching
        both. Deleted rows are overwritten with zeros (SQLite ``secure_delete``) and the write-ahead log is
        checkpointed and truncated, so the text does not survive in the files. A user left with no
        behaviors is removed entirely (its user_id is gone from the file too). Ids of other users are ignored.

        Args:
            user_id: The user.
            before: Delete only behaviors strictly earlier than this (tz-aware).
            ids: Delete only behaviors with these ids.

        Returns:
            The number of behaviors deleted.

        Raises:
            InvalidQueryError: Bad arguments.
            MemoryStoreError: The database failed (nothing deleted) or the log could not be truncated.
        """
        self._check_open()
        _check_user_id(user_id)
        before_us = None if before is None else to_us(require_aware(before, "before"))
        id_list: list[int] | None = None
        if ids is not None:
            if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
                raise InvalidQueryError("must be an iterable of integer ids", argument="ids")
            id_list = list(ids)
            if any(isinstance(i, bool) or not isinstance(i, int | np.integer) for i in id_list):
                raise InvalidQueryError("must be an iterable of integer ids", argument="ids")
            id_list = [int(i) for i in id_list]
        with self._db.write_lock:
            self._check_open()
            info = self._db.user_key(user_id)
            if info is None:
                return 0
            ukey = info[0]
            deleted, version = self._db.delete(ukey, before_us, id_list)
            if not deleted:
                return 0
            self._cache.committed(ukey, version)
            with self._files_lock:
                snapshot_path(self._index_dir, ukey).unlink(missing_ok=True)
            self._db.truncate_wal()
        return deleted

    # -- reads ---------------------------------------------------------------------------------------
    def users(self) -> list[str]:
        """Ids of users with at least one behavior, sorted."""
        self._check_open()
        return self._db.users()

    def count(self, user_id: str) -> int:
        """Number of stored behaviors of ``user_id`` (0 for an unknown user)."""
        self._check_open()
        info = self._db.user_key(_check_user_id(user_id))
        return 0 if info is None else info[2]

    def recent(self, user_id: str, k: int = 20, before: datetime | None = None) -> list[StoredBehavior]:
        """The ``k`` newest behaviors of a user, newest first (equal times: higher id first).

        Args:
            user_id: The user.
            k: How many.
            before: Only behaviors strictly earlier than this (tz-aware); ``None``: no bound.

        Raises:
            InvalidQueryError: Bad arguments.
        """
        self._check_open()
        _check_user_id(user_id)
        k = _check_count(k, "k")
        before_us = None if before is None else to_us(require_aware(before, "before"))
        info = self._db.user_key(user_id)
        if info is None or k == 0:
            return []
        return self._db.recent(user_id, info[0], k, before_us)

    def retrieve(
        self,
        user_id: str,
        query: str | np.ndarray | Sequence[float] | None = None,
        k: int = 20,
        now: datetime | None = None,
        exclude_recent: int = 0,
        explain: bool = False,
        *,
        weights: ScoringWeights | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        hours_of_day: Iterable[int] | None = None,
        days_of_week: Iterable[int] | None = None,
        near: tuple[float, float, float] | None = None,
        context: QueryContext | None = None,
    ) -> list[Retrieved]:
        """The ``k`` behaviors of a user that matter most now: relevant, recent and important.

        Only behaviors with ``timestamp <= now`` exist for this call (no future leakage). Scoring is
        :func:`memory._scoring.score` over the remaining candidates.

        Args:
            user_id: The user.
            query: Text (embedded with the store's embedder), a vector of ``embedder.dim`` floats, or
                ``None``: the unit mean of the ``centroid_window`` newest visible behaviors stands for "now".
            k: How many results.
            now: The "as of" moment (tz-aware); ``None`` means wall-clock UTC now. Recency ages are
                measured from it.
            exclude_recent: Leave out the n newest visible behaviors (the first n of the visible history
                newest first — equal to ``recent(user_id, n)`` when ``now`` is not earlier than them), so
                long-range results are disjoint from a "recent" list shown beside them.
            explain: Attach each result's :class:`ScoreComponents`.
            weights: Override the configured scoring weights for this call.
            since: Keep behaviors at or after this time.
            until: Keep behaviors strictly before this time.
            hours_of_day: Keep behaviors whose UTC hour is in this set.
            days_of_week: Keep behaviors whose UTC weekday is in this set (Monday = 0).
            near: ``(lat, lon, radius_km)``: keep behaviors with coordinates within the radius.
            context: Also score by closeness to this context's hour of day, weekday and place (a fourth
                component weighted ``context.retrieval``, see ``memory._context``); ``None``: no context,
                and the ranking is exactly the context-free one.

        Returns:
            Up to ``k`` results, best first.

        Raises:
            InvalidQueryError: Bad arguments (naive datetimes, wrong query shape, …).
        """
        self._check_open()
        _check_user_id(user_id)
        k = _check_count(k, "k")
        exclude_recent = _check_count(exclude_recent, "exclude_recent")
        now_dt = utc_now() if now is None else require_aware(now, "now")
        if weights is None:
            weights = self._config.weights
        elif not isinstance(weights, ScoringWeights):
            raise InvalidQueryError("must be a ScoringWeights", argument="weights")
        filters = make_filters(since, until, hours_of_day, days_of_week, near)
        if context is not None and not isinstance(context, QueryContext):
            raise InvalidQueryError("must be a QueryContext or None", argument="context")
        qvec = self._encode(query) if query is not None else None
        info = self._db.user_key(user_id)
        if info is None or k == 0:
            return []
        state = self._state(info[0], info[1])
        if state is None or len(state) == 0:
            return []
        return score_state(self._db, user_id, state, qvec, now_dt, exclude_recent, k, filters, weights,
                           self._config, context, explain)

    def profile(self, user_id: str, now: datetime | None = None, *, context: QueryContext | None = None) -> Profile:
        """A user's short- and long-horizon interest profile as of ``now``.

        Args:
            user_id: The user.
            now: The "as of" moment (tz-aware); ``None`` means wall-clock UTC now. Later behaviors are ignored.
            context: Weigh each behavior's mass by closeness to this context's hour, weekday and place
                (``memory._context``): the interests of that moment and place. ``None``: no context.

        Returns:
            The profile (``n_behaviors == 0`` for an unknown user or nothing visible).

        Raises:
            InvalidQueryError: Bad arguments.
        """
        self._check_open()
        _check_user_id(user_id)
        now_dt = utc_now() if now is None else require_aware(now, "now")
        if context is not None and not isinstance(context, QueryContext):
            raise InvalidQueryError("must be a QueryContext or None", argument="context")
        info = self._db.user_key(user_id)
        state = None if info is None else self._state(info[0], info[1])
        return build_profile(user_id, state, now_dt, self._config, context)

    # -- internals -----------------------------------------------------------------------------------
    def _state(self, user_key: int, version: int) -> UserState | None:
        """The user's state: cached, else from its index file, else rebuilt from SQLite."""
        state = self._cache.get(user_key)
        if state is not None:
            return state
        dim, keys = self._embedder.dim, tuple(self._config.attribute_keys)
        state = read_snapshot(self._index_dir, user_key, version, dim, keys)
        if state is not None:
            self._stats["index_loads"] += 1
        else:
            loaded = self._db.load_columns(user_key, dim, keys)
            if loaded is None:
                return None
            version, cols = loaded
            state = build_state(user_key, version, dim, keys, cols, dirty=True)
            self._stats["index_rebuilds"] += 1
            if self._persist(state):
                state = _clean(state)
        self._cache_put(state)
        return state

    def _cache_put(self, state: UserState) -> None:
        _, evicted = self._cache.put(state)
        for old in evicted:
            if old.dirty:
                self._persist(old)

    def _persist(self, state: UserState) -> bool:
        """Write a state's index file unless a newer version was committed. Derived data: failures only cost
        a rebuild later, so they are counted, not raised."""
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

    def flush(self) -> int:
        """Write the index files of cached users changed since their last write.

        Returns:
            How many files were written.
        """
        self._check_open()
        written = 0
        for state in self._cache.dirty_states():
            if self._persist(state):
                written += 1
                self._cache.mark_clean(state, _clean(state))
        return written


def _clean(state: UserState) -> UserState:
    return replace(state, dirty=False)
