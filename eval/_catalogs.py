"""The item catalogue a command serves from: MovieLens-100k (with its popularity) or an item file, cached.

Embedding ML-100k's 1682 titles takes a while on a CPU, so a catalogue is embedded once and kept under a
cache folder keyed by its source and the embedder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from core import item_counts
from eval._data import Dataset, load_ml100k, ml100k_default_path
from eval._errors import DataFormatError
from eval._tide import catalog_from_dataset

if TYPE_CHECKING:
    from agent import Catalog
    from memory import Embedder

__all__ = ["dataset_popularity", "load_catalog"]


def dataset_popularity(dataset: Dataset) -> dict[str, int]:
    """How often each item of ``dataset`` occurs among all its interactions (serving-time popularity).

    Evaluation never uses this (it would count test targets); it counts training sequences only.
    """
    ids = dataset.item_ids
    counts = item_counts(([e.item_id for e in seq] for seq in dataset.sequences.values()),
                         {item: col for col, item in enumerate(ids)})
    return {item: int(c) for item, c in zip(ids, counts, strict=True)}


def _source(spec: str) -> tuple[str, Path | None]:
    """``("ml-100k", folder or None)`` or ``("file", path)``."""
    if spec == "ml-100k":
        return "ml-100k", None
    path = Path(spec)
    if path.is_dir():
        return "ml-100k", path
    if path.is_file():
        return "file", path
    raise DataFormatError("catalogue not found: use 'ml-100k', an ml-100k folder or a JSONL/CSV item file",
                          path=spec)


def load_catalog(spec: str, embedder: Embedder, cache_dir: str | Path | None = None) -> Catalog:
    """The catalogue named by ``spec``, embedded with ``embedder`` (read from ``cache_dir`` when cached).

    Args:
        spec: ``"ml-100k"`` (the packaged MovieLens-100k), a GroupLens ml-100k folder, or a JSONL/CSV item
            file (``item_id,title,text,categories``; categories ``|``-separated in CSV).
        embedder: the memory store's embedder, so items and behaviors share one vector space.
        cache_dir: where embedded catalogues are kept (one sub-folder per source and embedder); ``None``
            embeds every time.

    Raises:
        DataFormatError: ``spec`` names nothing readable.
    """
    from agent import Catalog

    kind, path = _source(spec)
    if kind == "ml-100k":
        key = "ml-100k-" + hashlib.sha256(str(path or ml100k_default_path()).encode()).hexdigest()[:12]
    else:
        assert path is not None
        key = path.stem + "-" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    folder = Path(cache_dir) / f"{key}-{embedder.name.replace('/', '_')}" if cache_dir else None
    if folder is not None and (folder / "items.json").exists():
        return Catalog.load(folder)
    if kind == "ml-100k":
        ds = load_ml100k(path)
        catalog = catalog_from_dataset(ds, embedder, dataset_popularity(ds))
    else:
        catalog = Catalog.from_file(path, embedder)
    if folder is not None:
        catalog.save(folder)
    return catalog
