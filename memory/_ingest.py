"""The write path of ``add``: validate a batch, embed each distinct text once, insert it in one transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np

from memory._db import Database
from memory._embedder import Embedder, normalise_rows
from memory._errors import InvalidBehaviorError, MemoryStoreError
from memory._models import Behavior, describe_record
from memory._state import Columns, extract_tags
from memory._time import to_us

__all__ = ["DedupKey", "Inserted", "check_embeddings", "dedup_key", "embed_rows", "insert_batch", "new_columns",
           "validate_record"]

DedupKey = tuple[str, str, str, int]
# Rows shorter than this have no direction; a precomputed vector like that is a caller bug.
_MIN_NORM = 1e-12


def dedup_key(b: Behavior) -> DedupKey:
    """``(user_id, item_id or '', action, timestamp µs)``: the identity of a behavior."""
    return (b.user_id, b.item_id or "", b.action, to_us(b.timestamp))


def validate_record(index: int, record: object) -> Behavior:
    """A :class:`Behavior` from a record of a batch, or an error naming the record and the field."""
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
        f"expected a Behavior or a mapping, got {type(record).__name__}", index=index, record=describe_record(record)
    )


def check_embeddings(embeddings: object, n: int, dim: int) -> np.ndarray:
    """Validate precomputed vectors (one per record) and return them L2-normalised."""
    arr = np.asarray(embeddings)
    if arr.shape != (n, dim) or not np.issubdtype(arr.dtype, np.floating):
        raise InvalidBehaviorError(f"expected a float array of shape ({n}, {dim}), got {arr.dtype} {arr.shape}",
                                   field="embeddings")
    bad = ~np.isfinite(arr).all(axis=1) | (np.linalg.norm(np.nan_to_num(arr), axis=1) < _MIN_NORM)
    if bad.any():
        raise InvalidBehaviorError("embedding is not finite or has zero norm", field="embeddings",
                                   index=int(np.argmax(bad)))
    return normalise_rows(arr)


def embed_rows(
    embedder: Embedder, batch: Sequence[Behavior], todo: Sequence[int], given: np.ndarray | None
) -> dict[int, np.ndarray]:
    """Unit vectors for the rows ``todo``: from ``given``, else embedding each distinct text once."""
    if given is not None:
        return {i: given[i] for i in todo}
    texts: dict[str, int] = {}
    for i in todo:
        texts.setdefault(batch[i].text, len(texts))
    if not texts:
        return {}
    try:
        out = np.asarray(embedder.embed(list(texts)))
    except Exception as exc:  # a model failure of any kind: nothing is stored, say which embedder
        raise MemoryStoreError(f"embedder {embedder.name!r} failed: {exc}") from exc
    if out.shape != (len(texts), embedder.dim):
        raise MemoryStoreError(f"embedder returned shape {out.shape}, expected ({len(texts)}, {embedder.dim})")
    out = normalise_rows(out)
    return {i: out[texts[batch[i].text]] for i in todo}


class Inserted:
    """Outcome of :func:`insert_batch`.

    Attributes:
        ids: Id of every inserted or found key.
        new_rows: Per user key, ``(batch position, id)`` of the rows actually inserted.
        versions: Per user key with new rows, its version after the commit.
    """

    def __init__(self) -> None:
        self.ids: dict[DedupKey, int] = {}
        self.new_rows: dict[int, list[tuple[int, int]]] = {}
        self.versions: dict[int, int] = {}


def insert_batch(
    db: Database, batch: Sequence[Behavior], keys: Sequence[DedupKey], todo: Sequence[int],
    vectors: Mapping[int, np.ndarray],
) -> Inserted:
    """Insert rows ``todo`` of ``batch`` in one transaction.

    Raises:
        MemoryStoreError: SQLite failed; the transaction was rolled back, nothing is stored.
    """
    out = Inserted()
    with db.transaction("could not store the batch (nothing was stored)") as conn:
        user_keys: dict[str, int] = {}
        for i in todo:
            b = batch[i]
            ukey = user_keys.get(b.user_id)
            if ukey is None:
                conn.execute("INSERT INTO users (user_id) VALUES (?) ON CONFLICT (user_id) DO NOTHING", (b.user_id,))
                ukey = conn.execute("SELECT user_key FROM users WHERE user_id = ?", (b.user_id,)).fetchone()[0]
                user_keys[b.user_id] = ukey
            loc = b.location
            row = conn.execute(
                "INSERT INTO behaviors (user_key, item_id, action, text, ts_us, lat, lon, place, attributes,"
                " weight, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                (ukey, b.item_id, b.action, b.text, keys[i][3],
                 None if loc is None else loc.lat, None if loc is None else loc.lon,
                 None if loc is None else loc.place,
                 json.dumps(b.attributes, ensure_ascii=False, separators=(",", ":")), float(b.weight),
                 vectors[i].astype("<f4").tobytes()),
            ).fetchone()
            if row is None:  # stored by a commit that raced the caller's pre-check
                row = conn.execute(
                    "SELECT id FROM behaviors WHERE user_key = ? AND ifnull(item_id, '') = ? AND action = ?"
                    " AND ts_us = ?", (ukey, *keys[i][1:]),
                ).fetchone()
            else:
                out.new_rows.setdefault(ukey, []).append((i, row[0]))
            out.ids[keys[i]] = row[0]
        for ukey, rows in out.new_rows.items():
            out.versions[ukey] = conn.execute(
                "UPDATE users SET version = version + 1, n = n + ? WHERE user_key = ? RETURNING version",
                (len(rows), ukey),
            ).fetchone()[0]
    return out


def new_columns(
    batch: Sequence[Behavior], rows: Sequence[tuple[int, int]], vectors: Mapping[int, np.ndarray],
    attribute_keys: Sequence[str],
) -> Columns:
    """Columns of freshly inserted rows ``(batch position, id)``, to extend a cached user state."""
    behaviors = [batch[i] for i, _ in rows]

    def coord(b: Behavior, name: str) -> float:
        value = None if b.location is None else getattr(b.location, name)
        return np.nan if value is None else value

    return Columns(
        ids=np.array([bid for _, bid in rows], dtype=np.int64),
        ts_us=np.array([to_us(b.timestamp) for b in behaviors], dtype=np.int64),
        weights=np.array([b.weight for b in behaviors], dtype=np.float32),
        lat=np.array([coord(b, "lat") for b in behaviors], dtype=np.float64),
        lon=np.array([coord(b, "lon") for b in behaviors], dtype=np.float64),
        places=[None if b.location is None else b.location.place for b in behaviors],
        tags=[extract_tags(b.attributes, attribute_keys) for b in behaviors],
        embeddings=np.stack([vectors[i] for i, _ in rows]).astype(np.float32),
    )
