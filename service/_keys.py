"""API keys: random tokens shown once, stored only as their sha256, each with a scope.

A scope is ``admin`` (every user) or a set of user ids. The keys live in a small SQLite file
(``keys.db`` in the store directory by default) so ``tide keys create|revoke`` work while a server runs:
the server reads the table on every request, so a revocation takes effect at once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ._errors import KeyNotFoundError, ServiceError

__all__ = ["ADMIN", "ApiKey", "KeyStore", "hash_token"]

ADMIN = "admin"
TOKEN_PREFIX = "tide_"
# 32 random bytes: guessing is hopeless, and sha256 without a salt is enough for high-entropy tokens
TOKEN_BYTES = 32
MAX_KEY_USERS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


def hash_token(token: str) -> str:
    """The stored form of a token: its sha256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key as stored (never the token itself).

    Attributes:
        key_id: Public id (shown in listings, used to revoke).
        name: A label given at creation.
        users: ``None`` for an admin key, else the user ids it may touch.
        created_at: When it was created (UTC).
        revoked_at: When it was revoked, if it was.
    """

    key_id: str
    name: str
    users: frozenset[str] | None
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def admin(self) -> bool:
        """Whether the key may touch every user."""
        return self.users is None

    def allows(self, user_id: str) -> bool:
        """Whether the key may read or change ``user_id``."""
        return self.users is None or user_id in self.users

    @property
    def scope(self) -> str | list[str]:
        """``"admin"`` or the sorted user ids (the JSON form)."""
        return ADMIN if self.users is None else sorted(self.users)


class KeyStore:
    """The API keys of one service, in SQLite (thread-safe: one connection per thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._conn() as conn:
                conn.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise ServiceError(f"cannot open the key store {self.path}: {exc}") from exc

    @classmethod
    def for_store(cls, store_dir: str | Path) -> KeyStore:
        """The key store kept in a memory store's directory (``keys.db``)."""
        return cls(Path(store_dir) / "keys.db")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    def create(self, name: str, users: Iterable[str] | None) -> tuple[str, ApiKey]:
        """Create a key; returns ``(token, key)``. The token is shown only here.

        Args:
            name: A label (1-100 characters).
            users: ``None`` for an admin key, else the user ids (at least one) it may touch.

        Raises:
            ServiceError: Bad name or scope, or the database failed.
        """
        if not 1 <= len(name) <= 100:
            raise ServiceError("a key name needs 1-100 characters")
        scope: frozenset[str] | None = None
        if users is not None:
            scope = frozenset(u.strip() for u in users if u.strip())
            if not scope or len(scope) > MAX_KEY_USERS:
                raise ServiceError(f"a scoped key needs 1-{MAX_KEY_USERS} user ids (or admin)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        key = ApiKey(key_id=secrets.token_hex(6), name=name, users=scope, created_at=datetime.now(UTC))
        try:
            self._conn().execute(
                "INSERT INTO api_keys (key_id, token_sha256, name, scope, created_at) VALUES (?, ?, ?, ?, ?)",
                (key.key_id, hash_token(token), name, json.dumps(key.scope), key.created_at.isoformat()))
        except sqlite3.Error as exc:
            raise ServiceError(f"cannot store the key: {exc}") from exc
        return token, key

    def lookup(self, token: str) -> ApiKey | None:
        """The key a token belongs to (revoked ones too), or ``None``."""
        row = self._conn().execute(
            "SELECT key_id, name, scope, created_at, revoked_at FROM api_keys WHERE token_sha256 = ?",
            (hash_token(token),)).fetchone()
        return None if row is None else _key(row)

    def list(self) -> list[ApiKey]:
        """Every key, oldest first."""
        rows = self._conn().execute(
            "SELECT key_id, name, scope, created_at, revoked_at FROM api_keys ORDER BY created_at").fetchall()
        return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (idempotent); it answers 401 from then on.

        Raises:
            KeyNotFoundError: No such key.
        """
        self._conn().execute("UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?",
                             (datetime.now(UTC).isoformat(), key_id))
        for key in self.list():
            if key.key_id == key_id:
                return key
        raise KeyNotFoundError(key_id)

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _key(row: tuple) -> ApiKey:
    scope = json.loads(row[2])
    return ApiKey(key_id=row[0], name=row[1], users=None if scope == ADMIN else frozenset(scope),
                  created_at=datetime.fromisoformat(row[3]),
                  revoked_at=None if row[4] is None else datetime.fromisoformat(row[4]))
