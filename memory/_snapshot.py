"""Per-user index files: derived data written atomically, verified on load, rebuilt when in doubt.

File layout (little-endian)::

    b"TIDEIDX1" | uint32 header length | header (JSON) | payload

The JSON header names the user key, the SQLite version the file reflects, the dimension, the attribute
keys, the place/tag vocabularies, each payload part's dtype and size, and a CRC-32 of the payload. The
payload is the raw arrays followed by ``faiss.serialize_index`` of the ``IndexIDMap2``. No pickle.
A file that is missing, truncated, corrupt, from another version or another configuration is ignored and
the caller rebuilds from SQLite. Files are named by the internal integer user key, never by user_id.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np

from memory._state import UserState, derive

__all__ = ["read_snapshot", "snapshot_path", "write_snapshot"]

MAGIC = b"TIDEIDX1"
FORMAT = 1
_LEN = struct.Struct("<I")
# Spread files over 256 folders so no directory holds 100k entries.
_FANOUT = 256
_ARRAYS = ("ids", "ts_us", "weights", "lat", "lon", "place_codes", "tag_indptr", "tag_codes")
_DTYPES = {"ids": "<i8", "ts_us": "<i8", "weights": "<f4", "lat": "<f8", "lon": "<f8",
           "place_codes": "<i4", "tag_indptr": "<i8", "tag_codes": "<i4"}


def snapshot_path(root: Path, user_key: int) -> Path:
    """Where the index file of ``user_key`` lives under the store's ``index`` folder."""
    return root / f"{user_key % _FANOUT:02x}" / f"u{user_key}.tidx"


def write_snapshot(root: Path, state: UserState) -> Path:
    """Write a state's index file atomically (temp file + rename; no fsync — it is derived data).

    Args:
        root: The store's index folder.
        state: The state to persist.

    Returns:
        The file path.
    """
    import faiss

    parts = [np.ascontiguousarray(getattr(state, name), dtype=_DTYPES[name]).tobytes() for name in _ARRAYS]
    parts.append(faiss.serialize_index(state.index).tobytes())
    payload = b"".join(parts)
    header = {
        "format": FORMAT,
        "user_key": state.user_key,
        "version": state.version,
        "n": len(state),
        "dim": state.dim,
        "attribute_keys": list(state.attribute_keys),
        "place_names": list(state.place_names),
        "tag_names": list(state.tag_names),
        "sizes": [len(p) for p in parts],
        "crc32": zlib.crc32(payload),
    }
    head = json.dumps(header, ensure_ascii=False).encode("utf-8")
    path = snapshot_path(root, state.user_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(MAGIC + _LEN.pack(len(head)) + head + payload)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_snapshot(
    root: Path, user_key: int, version: int, dim: int, attribute_keys: tuple[str, ...]
) -> UserState | None:
    """Load a state from its index file if the file is intact and current.

    Returns:
        The state, or ``None`` when the file is missing, corrupt, stale or built with other settings.
    """
    import faiss

    path = snapshot_path(root, user_key)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        if data[:8] != MAGIC:
            return None
        (hlen,) = _LEN.unpack_from(data, 8)
        header = json.loads(data[12 : 12 + hlen].decode("utf-8"))
        payload = memoryview(data)[12 + hlen :]
        if (
            header.get("format") != FORMAT
            or header.get("user_key") != user_key
            or header.get("version") != version
            or header.get("dim") != dim
            or tuple(header.get("attribute_keys", ())) != tuple(attribute_keys)
            or len(payload) != sum(header["sizes"])
            or zlib.crc32(payload) != header["crc32"]
        ):
            return None
        n = int(header["n"])
        arrays: dict[str, np.ndarray] = {}
        offset = 0
        for name, size in zip(_ARRAYS, header["sizes"], strict=False):
            arrays[name] = np.frombuffer(payload[offset : offset + size], dtype=_DTYPES[name]).copy()
            offset += size
        index = faiss.deserialize_index(np.frombuffer(payload[offset:], dtype=np.uint8).copy())
        if not isinstance(index, faiss.IndexIDMap2) or index.ntotal != n or index.d != dim:
            return None
        if not np.array_equal(faiss.vector_to_array(index.id_map), arrays["ids"]):
            return None
        return derive(
            user_key, version, dim, tuple(attribute_keys),
            ids=arrays["ids"], ts_us=arrays["ts_us"], weights=arrays["weights"], lat=arrays["lat"],
            lon=arrays["lon"], place_names=tuple(header["place_names"]), place_codes=arrays["place_codes"],
            tag_names=tuple(header["tag_names"]), tag_indptr=arrays["tag_indptr"], tag_codes=arrays["tag_codes"],
            index=index, dirty=False,
        )
    except Exception:  # any decoding failure means "rebuild from SQLite"
        return None
