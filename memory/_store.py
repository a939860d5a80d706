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

import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from memory._cache import StateCache
from memory._config import MemoryConfig, ScoringWeights
from memory._db import Database
from memory._embedder import Embedder, SentenceTransformerEmbedder, normalise_rows
from memory._errors import (
    EmbedderMismatchError,
    InvalidBehaviorError,
    InvalidQueryError,
    MemoryStoreError,
)
from memory._filters import make_filters
from memory._lock import StoreLock
from memory._models import Behavior, StoredBehavior, describe_record
from memory._profile import build_profile
from memory._results import Profile, Retrieved, ScoreComponents
from memory._scoring import HOURS_PER_DAY, rank, score
from memory._snapshot import read_snapshot, snapshot_path, write_snapshot
from memory._state import Columns, UserState, build_state, extend_state, extract_tags
from memory._time import US_PER_HOUR, require_aware, to_us, utc_now

__all__ = ["MemoryStore"]

DB_NAME = "memory.db"
INDEX_DIR = "index"
# Query texts repeat (the agent asks about the same items); embedding one costs milliseconds on CPU.
QUERY_CACHE_SIZE = 1024
# A WAL checkpoint after forget waits for in-flight reads of this process to finish; they take ms.
_CHECKPOINT_ATTEMPTS = 50
_CHECKPOINT_PAUSE_S = 0.02
# Upper bound for k and exclude_recent: beyond this a caller wants an export, not a retrieval.
MAX_K = 100_000

DedupKey = tuple[str, str, str, int]


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
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_lock = threading.Lock()
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
        if isinstance(behaviors, Behavior | Mapping | str | bytes):
            raise InvalidBehaviorError("add() takes a sequence of behaviors, not a single one", field=None)
        records = list(behaviors)
        batch = [self._validate(i, r) for i, r in enumerate(records)]
        if not batch:
            return []
        given = self._check_embeddings(embeddings, len(batch))
        keys: list[DedupKey] = [(b.user_id, b.item_id or "", b.action, to_us(b.timestamp)) for b in batch]
        first: dict[DedupKey, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        known = self._db.existing_ids(first)
        todo = [i for key, i in first.items() if key not in known]
        vectors = self._vectors_for(batch, todo, given)
        with self._db.write_lock:
            self._check_open()
            assigned, new_rows, versions = self._insert(batch, keys, todo, vectors)
            self._after_commit(batch, new_rows, versions, vectors)
        ids_by_key = {**known, **assigned}
        return [ids_by_key[key] for key in keys]

    def _validate(self, index: int, record: object) -> Behavior:
        if isinstance(record, Behavior):
            return record
        if isinstance(record, Mapping):
            if not all(isinstance(key, str) for key in record):
                raise InvalidBehaviorError("field names must be strings", index=index)
            try:
                return Behavior(**record)
            except InvalidBehaviorError as exc:
                raise InvalidBehaviorError(exc.reason, field=exc.field, index=index, record=exc.record) from None
        raise InvalidBehaviorError(
            f"expected a Behavior or a mapping, got {type(record).__name__}", index=index,
            record=describe_record(record),
        )

    def _check_embeddings(self, embeddings: np.ndarray | None, n: int) -> np.ndarray | None:
        if embeddings is None:
            return None
        arr = np.asarray(embeddings)
        if arr.shape != (n, self._embedder.dim) or not np.issubdtype(arr.dtype, np.floating):
            raise InvalidBehaviorError(
                f"expected a float array of shape ({n}, {self._embedder.dim}), got {arr.dtype} {arr.shape}",
                field="embeddings",
            )
        bad = ~np.isfinite(arr).all(axis=1) | (np.linalg.norm(np.nan_to_num(arr), axis=1) < 1e-12)
        if bad.any():
            raise InvalidBehaviorError("embedding is not finite or has zero norm", field="embeddings",
                                       index=int(np.argmax(bad)))
        return normalise_rows(arr)

    def _vectors_for(self, batch: list[Behavior], todo: list[int], given: np.ndarray | None) -> dict[int, np.ndarray]:
        """Unit vectors for the rows to insert, embedding each distinct text once."""
        if given is not None:
            return {i: given[i] for i in todo}
        texts: dict[str, int] = {}
        for i in todo:
            texts.setdefault(batch[i].text, len(texts))
        if not texts:
            return {}
        try:
            out = np.asarray(self._embedder.embed(list(texts)))
        except Exception as exc:
            raise MemoryStoreError(f"embedder {self._embedder.name!r} failed: {exc}") from exc
        if out.shape != (len(texts), self._embedder.dim):
            raise MemoryStoreError(
                f"embedder returned shape {out.shape}, expected ({len(texts)}, {self._embedder.dim})"
            )
        out = normalise_rows(out)
        return {i: out[texts[batch[i].text]] for i in todo}

    def _insert(
        self, batch: list[Behavior], keys: list[DedupKey], todo: list[int], vectors: dict[int, np.ndarray]
    ) -> tuple[dict[DedupKey, int], dict[int, list[tuple[int, int]]], dict[int, int]]:
        """One transaction. Returns ids by key, new ``(position, id)`` rows per user key, new versions."""
        conn = self._db.writer
        assigned: dict[DedupKey, int] = {}
        new_rows: dict[int, list[tuple[int, int]]] = {}
        versions: dict[int, int] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                user_keys: dict[str, int] = {}
                for i in todo:
                    b = batch[i]
                    ukey = user_keys.get(b.user_id)
                    if ukey is None:
                        conn.execute("INSERT INTO users (user_id) VALUES (?) ON CONFLICT (user_id) DO NOTHING",
                                     (b.user_id,))
                        ukey = conn.execute("SELECT user_key FROM users WHERE user_id = ?", (b.user_id,)).fetchone()[0]
                        user_keys[b.user_id] = ukey
                    loc = b.location
                    row = conn.execute(
                        "INSERT INTO behaviors (user_key, item_id, action, text, ts_us, lat, lon, place, attributes,"
                        " weight, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                        " RETURNING id",
                        (ukey, b.item_id, b.action, b.text, keys[i][3],
                         None if loc is None else loc.lat, None if loc is None else loc.lon,
                         None if loc is None else loc.place,
                         json.dumps(b.attributes, ensure_ascii=False, separators=(",", ":")), float(b.weight),
                         vectors[i].astype("<f4").tobytes()),
                    ).fetchone()
                    if row is None:  # stored by a commit that raced our pre-check
                        row = conn.execute(
                            "SELECT id FROM behaviors WHERE user_key = ? AND ifnull(item_id, '') = ? AND action = ?"
                            " AND ts_us = ?", (ukey, *keys[i][1:]),
                        ).fetchone()
                    else:
                        new_rows.setdefault(ukey, []).append((i, row[0]))
                    assigned[keys[i]] = row[0]
                for ukey, rows in new_rows.items():
                    versions[ukey] = conn.execute(
                        "UPDATE users SET version = version + 1, n = n + ? WHERE user_key = ? RETURNING version",
                        (len(rows), ukey),
                    ).fetchone()[0]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise MemoryStoreError(f"could not store the batch (nothing was stored): {exc}") from exc
        return assigned, new_rows, versions

    def _after_commit(
        self, batch: list[Behavior], new_rows: dict[int, list[tuple[int, int]]], versions: dict[int, int],
        vectors: dict[int, np.ndarray],
    ) -> None:
        """Bring cached states up to date (extend if one version behind, else drop)."""
        keys = self._config.attribute_keys
        for ukey, rows in new_rows.items():
            old = self._cache.committed(ukey, versions[ukey])
            if old is None:
                continue
            try:
                behaviors = [batch[i] for i, _ in rows]
                cols = Columns(
                    ids=np.array([bid for _, bid in rows], dtype=np.int64),
                    ts_us=np.array([to_us(b.timestamp) for b in behaviors], dtype=np.int64),
                    weights=np.array([b.weight for b in behaviors], dtype=np.float32),
                    lat=np.array([np.nan if b.location is None or b.location.lat is None else b.location.lat
                                  for b in behaviors], dtype=np.float64),
                    lon=np.array([np.nan if b.location is None or b.location.lon is None else b.location.lon
                                  for b in behaviors], dtype=np.float64),
                    places=[None if b.location is None else b.location.place for b in behaviors],
                    tags=[extract_tags(b.attributes, keys) for b in behaviors],
                    embeddings=np.stack([vectors[i] for i, _ in rows]).astype(np.float32),
                )
                self._cache_put(extend_state(old, versions[ukey], cols))
            except Exception:  # derived data only: the state was dropped, the next read rebuilds it
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
            conn = self._db.writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    where, params = "user_key = ?", [ukey]
                    if before_us is not None:
                        where += " AND ts_us < ?"
                        params.append(before_us)
                    if id_list is not None:
                        where += " AND id IN (SELECT value FROM json_each(?))"
                        params.append(json.dumps(id_list))
                    deleted = conn.execute(f"DELETE FROM behaviors WHERE {where}", params).rowcount
                    version: int | None = None
                    if deleted:
                        remaining, version = conn.execute(
                            "UPDATE users SET n = n - ?, version = version + 1 WHERE user_key = ? RETURNING n, version",
                            (deleted, ukey),
                        ).fetchone()
                        if remaining <= 0:
                            conn.execute("DELETE FROM users WHERE user_key = ?", (ukey,))
                            version = None
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise MemoryStoreError(f"could not delete (nothing was deleted): {exc}") from exc
            if not deleted:
                return 0
            self._cache.committed(ukey, version)
            with self._files_lock:
                snapshot_path(self._index_dir, ukey).unlink(missing_ok=True)
            self._truncate_wal()
        return deleted

    def _truncate_wal(self) -> None:
        conn = self._db.writer
        for _ in range(_CHECKPOINT_ATTEMPTS):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(_CHECKPOINT_PAUSE_S)
        raise MemoryStoreError(
            "deleted rows are committed but the write-ahead log could not be truncated (a read is still open); "
            "old page images may remain in memory.db-wal until the next forget or close"
        )

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
        now_us = to_us(now_dt)
        if weights is None:
            weights = self._config.weights
        elif not isinstance(weights, ScoringWeights):
            raise InvalidQueryError("must be a ScoringWeights", argument="weights")
        filters = make_filters(since, until, hours_of_day, days_of_week, near)
        qvec = self._query_vector(query) if query is not None else None
        info = self._db.user_key(user_id)
        if info is None or k == 0:
            return []
        state = self._state(info[0], info[1])
        if state is None or len(state) == 0:
            return []
        visible = state.order_desc[state.ts_us[state.order_desc] <= now_us]
        if len(visible) <= exclude_recent:
            return []
        candidate = np.zeros(len(state), dtype=bool)
        candidate[visible[exclude_recent:]] = True
        if filters.active:
            candidate &= filters.mask(state)
        cpos = np.flatnonzero(candidate)
        if not len(cpos):
            return []
        if qvec is None:
            qvec = self._centroid(state, visible)
        sims = self._similarities(state, qvec)
        ages = (now_us - state.ts_us[cpos]) / US_PER_HOUR
        bd = score(sims[cpos], ages, state.weights[cpos], weights, self._config.recency_half_life_days * HOURS_PER_DAY)
        top = rank(bd, state.ts_us[cpos], state.ids[cpos], k)
        found = {b.id: b for b in self._db.fetch(user_id, state.user_key, state.ids[cpos[top]].tolist())}
        out = []
        for j in top:
            behavior = found.get(int(state.ids[cpos[j]]))
            if behavior is None:  # forgotten between the index read and the row fetch
                continue
            components = None
            if explain:
                components = ScoreComponents(
                    relevance=float(bd.relevance[j]), recency=float(bd.recency[j]), importance=float(bd.importance[j]),
                    relevance_norm=float(bd.relevance_norm[j]), recency_norm=float(bd.recency_norm[j]),
                    importance_norm=float(bd.importance_norm[j]), age_hours=float(bd.age_hours[j]),
                )
            out.append(Retrieved(behavior=behavior, score=float(bd.score[j]), components=components))
        return out

    def profile(self, user_id: str, now: datetime | None = None) -> Profile:
        """A user's short- and long-horizon interest profile as of ``now``.

        Args:
            user_id: The user.
            now: The "as of" moment (tz-aware); ``None`` means wall-clock UTC now. Later behaviors are ignored.

        Returns:
            The profile (``n_behaviors == 0`` for an unknown user or nothing visible).

        Raises:
            InvalidQueryError: Bad arguments.
        """
        self._check_open()
        _check_user_id(user_id)
        now_dt = utc_now() if now is None else require_aware(now, "now")
        info = self._db.user_key(user_id)
        state = None if info is None else self._state(info[0], info[1])
        return build_profile(user_id, state, now_dt, self._config)

    # -- internals -----------------------------------------------------------------------------------
    def _query_vector(self, query: object) -> np.ndarray:
        dim = self._embedder.dim
        if isinstance(query, str):
            if not query.strip():
                raise InvalidQueryError("query text must not be blank", argument="query")
            with self._query_lock:
                cached = self._query_cache.get(query)
                if cached is not None:
                    self._query_cache.move_to_end(query)
                    return cached
            vec = normalise_rows(np.asarray(self._embedder.embed([query])).reshape(1, dim))[0]
            vec.flags.writeable = False
            with self._query_lock:
                self._query_cache[query] = vec
                while len(self._query_cache) > QUERY_CACHE_SIZE:
                    self._query_cache.popitem(last=False)
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

    def _centroid(self, state: UserState, visible: np.ndarray) -> np.ndarray:
        recent = visible[: self._config.centroid_window]
        mean = state.vectors[recent].astype(np.float64).mean(axis=0)
        norm = float(np.linalg.norm(mean))
        # Opposite vectors can cancel out; the newest behavior then stands for "now".
        return (mean / norm).astype(np.float32) if norm > 1e-6 else np.array(state.vectors[recent[0]])

    @staticmethod
    def _similarities(state: UserState, query: np.ndarray) -> np.ndarray:
        """Cosine of every behavior to ``query``, by position, via the user's FAISS index."""
        n = len(state)
        dist, labels = state.index.search(query.reshape(1, -1).astype(np.float32), n)
        sims = np.empty(n, dtype=np.float32)
        sims[np.searchsorted(state.ids, labels[0])] = dist[0]
        return sims

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
