"""The item catalog: ids, titles, descriptive text, categories, and its own vector index."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from memory import Embedder

from ._errors import AgentError

__all__ = ["Catalog", "CatalogItem"]


class CatalogItem(BaseModel):
    """One item that can be recommended."""

    model_config = ConfigDict(frozen=True)

    item_id: str = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1, max_length=300)
    text: str = Field(default="", max_length=2000)
    categories: tuple[str, ...] = ()


class Catalog:
    """Items plus their embeddings (rows L2-normalised, in item order) and popularity.

    Build with :meth:`from_items` (any item table) or :meth:`from_file` (JSONL/CSV with columns item_id,
    title, text, categories — categories ``|``-separated in CSV).
    """

    def __init__(self, items: Sequence[CatalogItem], vectors: np.ndarray, popularity: np.ndarray | None = None):
        if len(items) != len(vectors):
            raise AgentError(f"{len(items)} items but {len(vectors)} vectors")
        self.items = list(items)
        self.index = {it.item_id: i for i, it in enumerate(self.items)}
        if len(self.index) != len(self.items):
            raise AgentError("catalog item ids must be unique")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.popularity = (np.zeros(len(items)) if popularity is None
                           else np.asarray(popularity, dtype=np.float64))
        self.taxonomy = sorted({c for it in self.items for c in it.categories})
        self._faiss: Any = None

    @classmethod
    def from_items(cls, items: Iterable[CatalogItem | dict[str, Any]], embedder: Embedder,
                   popularity: Sequence[float] | None = None, batch_size: int = 256) -> Catalog:
        """Embed every item's ``text`` (or title when empty) with the memory's embedder."""
        parsed = [it if isinstance(it, CatalogItem) else CatalogItem(**it) for it in items]
        if not parsed:
            raise AgentError("a catalog needs at least one item")
        texts = [it.text or it.title for it in parsed]
        vecs = np.concatenate([embedder.embed(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)])
        return cls(parsed, vecs, popularity)

    @classmethod
    def from_file(cls, path: str | Path, embedder: Embedder) -> Catalog:
        path = Path(path)
        rows: list[dict[str, Any]] = []
        if path.suffix == ".jsonl":
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise AgentError(f"{path}:{n}: not JSON: {exc}") from exc
        else:
            with path.open(newline="") as fh:
                for row in csv.DictReader(fh):
                    row["categories"] = tuple(c for c in (row.get("categories") or "").split("|") if c)
                    rows.append(row)
        return cls.from_items(rows, embedder)

    def save(self, folder: str | Path) -> Path:
        """Write items (JSON), vectors and popularity (npz) atomically into ``folder``."""
        import os

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "catalog.tmp.npz"
        np.savez(tmp, vectors=self.vectors, popularity=self.popularity)
        items_tmp = folder / "items.tmp.json"
        items_tmp.write_text(json.dumps([it.model_dump(mode="json") for it in self.items]))
        os.replace(tmp, folder / "catalog.npz")
        os.replace(items_tmp, folder / "items.json")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Catalog:
        folder = Path(folder)
        try:
            items = [CatalogItem(**d) for d in json.loads((folder / "items.json").read_text())]
            arrays = np.load(folder / "catalog.npz")
        except (OSError, ValueError) as exc:
            raise AgentError(f"catalog at {folder} is unreadable: {exc}") from exc
        return cls(items, arrays["vectors"], arrays["popularity"])

    def __len__(self) -> int:
        return len(self.items)

    def get(self, item_id: str) -> CatalogItem | None:
        i = self.index.get(item_id)
        return None if i is None else self.items[i]

    def similarity(self, vector: np.ndarray) -> np.ndarray:
        """Cosine similarity of every item to a unit vector (one matrix-vector product)."""
        return self.vectors @ np.asarray(vector, dtype=np.float32)

    def search(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        """Nearest items by cosine through a FAISS inner-product index."""
        import faiss

        if self._faiss is None:
            self._faiss = faiss.IndexFlatIP(self.vectors.shape[1])
            self._faiss.add(self.vectors)
        scores, idx = self._faiss.search(np.asarray(vector, dtype=np.float32)[None, :], min(k, len(self)))
        return [(self.items[i].item_id, float(s)) for i, s in zip(idx[0], scores[0], strict=True) if i >= 0]
