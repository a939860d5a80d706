"""Database.transaction: the one write transaction of the store (commit, rollback, SQLite errors)."""

from __future__ import annotations

import sqlite3

import pytest

from memory import MemoryStoreError
from memory._db import Database


def _users(db: Database) -> list[str]:
    return [r[0] for r in db.reader().execute("SELECT user_id FROM users ORDER BY user_id").fetchall()]


def test_commits_on_success_and_rolls_back_on_any_error(tmp_path) -> None:
    db = Database(tmp_path / "m.db", "NORMAL")
    try:
        with db.transaction("insert") as conn:
            conn.execute("INSERT INTO users (user_id) VALUES ('u1')")
        assert _users(db) == ["u1"]
        with pytest.raises(KeyError):
            with db.transaction("insert") as conn:
                conn.execute("INSERT INTO users (user_id) VALUES ('u2')")
                raise KeyError("a bug in the caller")
        assert _users(db) == ["u1"] and not db.writer.in_transaction
    finally:
        db.close()


def test_sqlite_errors_become_store_errors_and_nothing_is_written(tmp_path) -> None:
    db = Database(tmp_path / "m.db", "NORMAL")
    try:
        with pytest.raises(MemoryStoreError, match="could not store") as info:
            with db.transaction("could not store") as conn:
                conn.execute("INSERT INTO users (user_id) VALUES ('u1')")
                conn.execute("INSERT INTO users (user_id) VALUES ('u1')")  # UNIQUE violated
        assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
        assert _users(db) == [] and not db.writer.in_transaction
        with db.transaction("nested use of the lock") as conn:  # the lock is re-entrant and was released
            conn.execute("INSERT INTO users (user_id) VALUES ('u3')")
        assert _users(db) == ["u3"]
    finally:
        db.close()
