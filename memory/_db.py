"""The durable record: SQLite in WAL mode, one writer connection, one read connection per thread.

Schema: ``users`` (opaque user_id → integer key, a per-user version bumped by every write, a row count),
``behaviors`` (one row per behavior, its float32 embedding as a BLOB) and ``meta`` (embedder name/dim,
schema version). ``secure_delete`` is on, so deleted rows are overwritten with zeros in the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from memory._errors import MemoryStoreError
from memory._models import Location, StoredBehavior
from memory._state import Columns, extract_tags
from memory._time import from_us

__all__ = ["BEHAVIOR_COLUMNS", "Database", "row_to_behavior"]

SCHEMA_VERSION = "1"
# A WAL checkpoint after a deletion waits for in-flight reads of this process to finish; they take ms.
_CHECKPOINT_ATTEMPTS = 50
_CHECKPOINT_PAUSE_S = 0.02
# Writers wait this long for the write lock held by another connection of this process (ms).
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    user_key INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id  TEXT NOT NULL UNIQUE,
    version  INTEGER NOT NULL DEFAULT 0,
    n        INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS behaviors (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_key   INTEGER NOT NULL,
    item_id    TEXT,
    action     TEXT NOT NULL,
    text       TEXT NOT NULL,
    ts_us      INTEGER NOT NULL,
    lat        REAL,
    lon        REAL,
    place      TEXT,
    attributes TEXT NOT NULL,
    weight     REAL NOT NULL,
    embedding  BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS behaviors_dedup ON behaviors (user_key, ifnull(item_id, ''), action, ts_us);
CREATE INDEX IF NOT EXISTS behaviors_user_time ON behaviors (user_key, ts_us, id);
"""

BEHAVIOR_COLUMNS = "id, item_id, action, text, ts_us, lat, lon, place, attributes, weight"


def row_to_behavior(user_id: str, row: Sequence[Any]) -> StoredBehavior:
    """Rebuild a :class:`StoredBehavior` from a ``BEHAVIOR_COLUMNS`` row (validated when it was added)."""
    bid, item_id, action, text, ts_us, lat, lon, place, attributes, weight = row
    location = None
    if lat is not None or place is not None:
        location = Location.model_construct(lat=lat, lon=lon, place=place)
    return StoredBehavior.model_construct(
        id=bid, user_id=user_id, item_id=item_id, action=action, text=text, timestamp=from_us(ts_us),
        location=location, attributes=json.loads(attributes), weight=weight,
    )


def _connect(path: Path, synchronous: str, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA secure_delete = ON")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


class Database:
    """SQLite access for one store (one process). Thread-safe: writes serialise on a lock."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self.path = path
        self._synchronous = synchronous
        self.write_lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        try:
            self._writer = _connect(path, synchronous, readonly=False)
            mode = self._writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise MemoryStoreError(f"cannot put {path} in WAL mode (got {mode!r})")
            self._writer.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise MemoryStoreError(f"cannot open memory database {path}: {exc}") from exc

    # -- connections ---------------------------------------------------------------------------------
    def reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (autocommit; WAL readers never block the writer)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, self._synchronous, readonly=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def transaction(self, failure: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error.

        Takes :attr:`write_lock` (re-entrant, so a caller may already hold it) and yields the write
        connection. Every write of the store goes through here, so a write is all or nothing.

        Args:
            failure: What failed, for the error message (``"could not delete (nothing was deleted)"``).

        Raises:
            MemoryStoreError: SQLite failed (in ``BEGIN``, the body or ``COMMIT``); nothing was written.
        """
        with self.write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise MemoryStoreError(f"{failure}: {exc}") from exc

    @property
    def writer(self) -> sqlite3.Connection:
        """The single write connection; use under :attr:`write_lock`, writes inside :meth:`transaction`."""
        return self._writer

    def close(self) -> None:
        """Close every connection."""
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self.write_lock:
            self._writer.close()

    # -- meta ----------------------------------------------------------------------------------------
    def check_meta(self, embedder_name: str, dim: int) -> tuple[str, int] | None:
        """Record the embedder on first use; return the stored ``(name, dim)`` if it differs."""
        with self.write_lock:
            conn = self._writer
            rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if not rows:
                with self.transaction(f"could not initialise memory database {self.path}") as tx:
                    tx.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("schema", SCHEMA_VERSION), ("embedder", embedder_name), ("dim", str(dim))],
                    )
                return None
            if rows.get("schema") != SCHEMA_VERSION:
                raise MemoryStoreError(f"unsupported memory schema {rows.get('schema')!r} in {self.path}")
            stored = (rows["embedder"], int(rows["dim"]))
            return None if stored == (embedder_name, dim) else stored

    # -- reads ---------------------------------------------------------------------------------------
    def user_key(self, user_id: str) -> tuple[int, int, int] | None:
        """``(user_key, version, n)`` of a user, or ``None`` if unknown."""
        row = self.reader().execute("SELECT user_key, version, n FROM users WHERE user_id = ?", (user_id,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def users(self) -> list[str]:
        """User ids with at least one behavior, sorted."""
        rows = self.reader().execute("SELECT user_id FROM users WHERE n > 0 ORDER BY user_id").fetchall()
        return [r[0] for r in rows]

    def load_columns(self, user_key: int, dim: int, attribute_keys: Sequence[str]) -> tuple[int, Columns] | None:
        """Read a user's version and all behaviors in one consistent snapshot.

        Returns:
            ``(version, columns)`` or ``None`` if the user no longer exists.
        """
        conn = self.reader()
        conn.execute("BEGIN")
        try:
            row = conn.execute("SELECT version FROM users WHERE user_key = ?", (user_key,)).fetchone()
            if row is None:
                return None
            rows = conn.execute(
                "SELECT id, ts_us, weight, lat, lon, place, attributes, embedding FROM behaviors "
                "WHERE user_key = ? ORDER BY id",
                (user_key,),
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        n = len(rows)
        emb = np.frombuffer(b"".join(r[7] for r in rows), dtype="<f4").reshape(n, dim) if n else np.zeros((0, dim))
        cols = Columns(
            ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
            ts_us=np.fromiter((r[1] for r in rows), dtype=np.int64, count=n),
            weights=np.fromiter((r[2] for r in rows), dtype=np.float32, count=n),
            lat=np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64),
            lon=np.array([np.nan if r[4] is None else r[4] for r in rows], dtype=np.float64),
            places=[r[5] for r in rows],
            tags=[extract_tags(json.loads(r[6]), attribute_keys) for r in rows],
            embeddings=np.ascontiguousarray(emb, dtype=np.float32),
        )
        return row[0], cols

    def fetch(self, user_id: str, user_key: int, ids: Sequence[int]) -> list[StoredBehavior]:
        """The behaviors with ``ids`` of one user, in the order of ``ids``."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.reader().execute(
            f"SELECT {BEHAVIOR_COLUMNS} FROM behaviors WHERE user_key = ? AND id IN ({marks})",
            (user_key, *ids),
        ).fetchall()
        by_id = {r[0]: r for r in rows}
        return [row_to_behavior(user_id, by_id[i]) for i in ids if i in by_id]

    def recent(self, user_id: str, user_key: int, k: int, before_us: int | None) -> list[StoredBehavior]:
        """Up to ``k`` newest behaviors strictly before ``before_us``, newest first (ties: higher id first)."""
        bound = (1 << 62) if before_us is None else before_us
        rows = self.reader().execute(
            f"SELECT {BEHAVIOR_COLUMNS} FROM behaviors WHERE user_key = ? AND ts_us < ? "
            "ORDER BY ts_us DESC, id DESC LIMIT ?",
            (user_key, bound, k),
        ).fetchall()
        return [row_to_behavior(user_id, r) for r in rows]

    def existing_ids(self, keys: Iterable[tuple[str, str, str, int]]) -> dict[tuple[str, str, str, int], int]:
        """Ids of already stored behaviors by dedup key ``(user_id, item_id or '', action, ts_us)``."""
        conn = self.reader()
        found: dict[tuple[str, str, str, int], int] = {}
        user_keys: dict[str, int | None] = {}
        for key in keys:
            uid = key[0]
            if uid not in user_keys:
                row = conn.execute("SELECT user_key FROM users WHERE user_id = ?", (uid,)).fetchone()
                user_keys[uid] = None if row is None else row[0]
            ukey = user_keys[uid]
            if ukey is None:
                continue
            row = conn.execute(
                "SELECT id FROM behaviors WHERE user_key = ? AND ifnull(item_id, '') = ? AND action = ? AND ts_us = ?",
                (ukey, key[1], key[2], key[3]),
            ).fetchone()
            if row is not None:
                found[key] = row[0]
        return found

    # -- deletion ------------------------------------------------------------------------------------
    def delete(self, user_key: int, before_us: int | None, ids: Sequence[int] | None) -> tuple[int, int | None]:
        """Delete a user's behaviors matching every given condition, in one transaction.

        A user left with no behaviors loses its ``users`` row too.

        Returns:
            ``(rows deleted, new version)``; the version is ``None`` when the user row was removed.

        Raises:
            MemoryStoreError: SQLite failed; nothing was deleted.
        """
        version: int | None = None
        with self.transaction("could not delete (nothing was deleted)") as conn:
            where = "user_key = ?"
            params: list[Any] = [user_key]
            if before_us is not None:
                where += " AND ts_us < ?"
                params.append(before_us)
            if ids is not None:
                where += " AND id IN (SELECT value FROM json_each(?))"
                params.append(json.dumps(list(ids)))
            deleted = conn.execute(f"DELETE FROM behaviors WHERE {where}", params).rowcount
            if deleted:
                remaining, version = conn.execute(
                    "UPDATE users SET n = n - ?, version = version + 1 WHERE user_key = ? RETURNING n, version",
                    (deleted, user_key),
                ).fetchone()
                if remaining <= 0:
                    conn.execute("DELETE FROM users WHERE user_key = ?", (user_key,))
                    version = None
        return deleted, version

    def truncate_wal(self) -> None:
        """Checkpoint the WAL into the database and truncate it, so no old page image (with deleted text)
        stays in ``-wal``. Waits briefly for in-flight reads of this process.

        Raises:
            MemoryStoreError: Reads kept the log busy for too long (the deletion itself is committed).
        """
        for _ in range(_CHECKPOINT_ATTEMPTS):
            busy, _, _ = self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(_CHECKPOINT_PAUSE_S)
        raise MemoryStoreError(
            "deleted rows are committed but the write-ahead log could not be truncated (a read is still open); "
            "old page images may remain in memory.db-wal until the next forget or close"
        )
