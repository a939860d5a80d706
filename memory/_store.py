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

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from memory._args import (
    QUERY_SETTINGS,
    check_context,
    check_count,
    check_ids,
    check_now,
    check_user_id,
    check_weights,
    optional_us,
    reconfigured,
)
from memory._config import MemoryConfig, ScoringWeights
from memory._context import QueryContext
from memory._db import Database
from memory._derived import DerivedStates
from memory._embedder import Embedder, SentenceTransformerEmbedder
from memory._errors import EmbedderMismatchError, InvalidBehaviorError, MemoryStoreError
from memory._filters import make_filters
from memory._ingest import DedupKey, check_embeddings, dedup_key, embed_rows, insert_batch, validate_record
from memory._lock import StoreLock
from memory._models import Behavior, StoredBehavior
from memory._profile import build_profile
from memory._query import QueryEncoder
from memory._results import Profile, Retrieved
from memory._retrieve import score_state

__all__ = ["MemoryStore"]

DB_NAME = "memory.db"
INDEX_DIR = "index"


class MemoryStore:
    """Per-user persistent memory of behaviors with time-decayed retrieval and interest profiles.

    Build with :meth:`open`; use as a context manager or call :meth:`close`.
    """

    def __init__(
        self, directory: Path, embedder: Embedder, config: MemoryConfig, db: Database, lock: StoreLock
    ) -> None:
        """Use :meth:`open`."""
        self._dir = directory
        self._embedder = embedder
        self._config = config
        self._db = db
        self._lock = lock
        # attribute_keys shape stored states, so reconfigure() refuses them: fixed for the open store
        self._states = DerivedStates(directory / INDEX_DIR, db, embedder.dim, config.attribute_keys,
                                     config.cache_max_bytes)
        self._encode = QueryEncoder(embedder)
        self._closed = False

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
            self._states.close()
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
    QUERY_SETTINGS = QUERY_SETTINGS

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
        self._config = reconfigured(self._config, changes, self.QUERY_SETTINGS)
        return self._config

    def stats(self) -> dict[str, int]:
        """Counters: cached users and bytes, index files loaded/rebuilt/written."""
        return self._states.stats()

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
            self._states.added(batch, inserted, vectors)
        ids_by_key = {**known, **inserted.ids}
        return [ids_by_key[key] for key in keys]

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
        check_user_id(user_id)
        before_us = optional_us(before, "before")
        id_list = check_ids(ids)
        with self._db.write_lock:
            self._check_open()
            info = self._db.user_key(user_id)
            if info is None:
                return 0
            ukey = info[0]
            deleted, version = self._db.delete(ukey, before_us, id_list)
            if not deleted:
                return 0
            self._states.deleted(ukey, version)
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
        info = self._db.user_key(check_user_id(user_id))
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
        check_user_id(user_id)
        k = check_count(k, "k")
        before_us = optional_us(before, "before")
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
        check_user_id(user_id)
        k = check_count(k, "k")
        exclude_recent = check_count(exclude_recent, "exclude_recent")
        now_dt = check_now(now)
        weights = check_weights(weights, self._config.weights)
        filters = make_filters(since, until, hours_of_day, days_of_week, near)
        check_context(context)
        qvec = self._encode(query) if query is not None else None
        info = self._db.user_key(user_id)
        if info is None or k == 0:
            return []
        state = self._states.get(info[0], info[1])
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
        check_user_id(user_id)
        now_dt = check_now(now)
        check_context(context)
        info = self._db.user_key(user_id)
        state = None if info is None else self._states.get(info[0], info[1])
        return build_profile(user_id, state, now_dt, self._config, context)

    def flush(self) -> int:
        """Write the index files of cached users changed since their last write.

        Returns:
            How many files were written.
        """
        self._check_open()
        return self._states.flush()
