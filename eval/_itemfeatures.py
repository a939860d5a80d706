"""Semantic item features for the sequential models: one text vector per catalogue item.

Two sources: (a) the memory's sentence-transformers embedder (MiniLM) over each item's text, and (b) the
embedded LLM itself — mean-pooled last hidden states of the item text through vLLM's pooling runner. The
LLM vectors cost an engine start, so they are computed once per catalogue and cached under
``$TIDE_HOME/item-vectors/``, keyed by the model's fingerprint (sha256 of its ``manifest.json`` plus the
pooling recipe) and the catalogue's fingerprint (sha256 of every item id and text); a change in either
gives a new key and the stale file is removed when the new one is written.

The sequential models never see raw vectors: :meth:`ItemFeatures.matrix` returns rows in the model's
column order, mean-centred and L2-normalised (LLM hidden states share a large common direction that
would otherwise dominate), and the model learns a linear projection of them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval._data import Dataset, behavior_text
from eval._errors import DataFormatError, EvalError

__all__ = ["ItemFeatures", "cached_vectors", "catalogue_fingerprint", "item_texts", "llm_vectors_transformers"]

#: pooling recipe of the LLM vectors; part of the cache key so a recipe change invalidates old files
LLM_RECIPE = "vllm-pooling-mean-v1"
#: item texts are short ("Watched "Title" (year; genres)."); a cap keeps the pooling batch small
LLM_MAX_MODEL_LEN = 256
_CACHE_SUBDIR = "item-vectors"


def item_texts(dataset: Dataset, item_ids: Sequence[str] | None = None) -> list[str]:
    """Each item's text, as the memory and the agent's catalogue write it (``Watched "Title" (…).``)."""
    ids = list(item_ids) if item_ids is not None else dataset.item_ids
    missing = [i for i in ids if i not in dataset.items]
    if missing:
        raise DataFormatError(f"items {missing[:3]} are not in dataset {dataset.name!r}")
    return [behavior_text(dataset.items[i], None) for i in ids]


def catalogue_fingerprint(item_ids: Sequence[str], texts: Sequence[str]) -> str:
    """sha256 over every (item id, text) pair, in order."""
    h = hashlib.sha256()
    for item, text in zip(item_ids, texts, strict=True):
        h.update(item.encode())
        h.update(b"\x1f")
        h.update(text.encode())
        h.update(b"\x1e")
    return h.hexdigest()


def cached_vectors(
    texts: Sequence[str],
    compute: Callable[[list[str]], np.ndarray],
    *,
    model_fingerprint: str,
    catalogue: str,
    cache_dir: str | Path,
    source: str,
) -> tuple[np.ndarray, bool]:
    """Vectors of ``texts`` from the cache, or computed with ``compute`` and cached.

    The cache file is ``<cache_dir>/<source>/<model fp>-<catalogue fp>.npy``. Writing a new file removes
    the source's other files: they belong to an older model or catalogue.

    Args:
        texts: Item texts, in catalogue order.
        compute: Texts -> ``(len(texts), d)`` array; called only on a cache miss.
        model_fingerprint: Identifies the model and recipe that produced the vectors.
        catalogue: Catalogue fingerprint (:func:`catalogue_fingerprint`).
        cache_dir: Cache root.
        source: Sub-folder name (one per vector source).

    Returns:
        ``(vectors, hit)``: float32 vectors and whether they came from the cache.

    Raises:
        EvalError: ``compute`` returned the wrong number of rows or non-finite values.
    """
    folder = Path(cache_dir) / source
    key = f"{model_fingerprint[:16]}-{catalogue[:16]}"
    path = folder / f"{key}.npy"
    meta_path = folder / f"{key}.json"
    if path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            vectors = np.load(path, allow_pickle=False)
        except (OSError, ValueError):  # unreadable: recompute rather than trust it
            meta, vectors = {}, None
        if (
            vectors is not None
            and meta.get("model") == model_fingerprint
            and meta.get("catalogue") == catalogue
            and vectors.shape[0] == len(texts)
        ):
            return vectors.astype(np.float32, copy=False), True
    vectors = np.asarray(compute(list(texts)), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise EvalError(f"{source} vectors have shape {vectors.shape}, expected ({len(texts)}, d)")
    if not np.isfinite(vectors).all():
        raise EvalError(f"{source} vectors contain NaN or infinite values")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{key}.tmp.npy"
    np.save(tmp, vectors, allow_pickle=False)
    tmp.replace(path)
    tmp_meta = folder / f"{key}.json.tmp"
    tmp_meta.write_text(json.dumps({"model": model_fingerprint, "catalogue": catalogue,
                                    "shape": list(vectors.shape), "source": source}))
    tmp_meta.replace(meta_path)
    for old in folder.iterdir():  # an older model's or catalogue's vectors are stale now
        if old.name not in (path.name, meta_path.name) and not old.name.endswith(".tmp"):
            old.unlink(missing_ok=True)
    return vectors, False


@dataclass(frozen=True)
class ItemFeatures:
    """A fixed vector per item, for a sequential model's optional text input.

    Attributes:
        name: Source name recorded in results (``"text"``: MiniLM, ``"llm"``: the embedded LLM).
        item_ids: Items with a vector.
        vectors: ``(len(item_ids), d)`` float32 raw vectors.
        fingerprint: Model + catalogue fingerprint of the vectors (provenance).
        info: Extras (backend used, cache hit, fallback reason).
    """

    name: str
    item_ids: tuple[str, ...]
    vectors: np.ndarray
    fingerprint: str = ""
    info: dict[str, Any] | None = None

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def matrix(self, item_ids: Sequence[str]) -> np.ndarray:
        """Rows for ``item_ids`` (a model's column order), mean-centred and L2-normalised.

        Raises:
            EvalError: An item has no vector.
        """
        index = {item: row for row, item in enumerate(self.item_ids)}
        missing = [i for i in item_ids if i not in index]
        if missing:
            raise EvalError(f"{len(missing)} items have no {self.name} vector, e.g. {missing[:3]}")
        m = self.vectors[[index[i] for i in item_ids]].astype(np.float64)
        m -= m.mean(axis=0, keepdims=True)
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return (m / np.maximum(norms, 1e-12)).astype(np.float32)

    @classmethod
    def from_embedder(cls, dataset: Dataset, embedder: Any, name: str = "text") -> ItemFeatures:
        """Vectors of every item's text from a :class:`memory.Embedder` (e.g. the packaged MiniLM)."""
        ids = dataset.item_ids
        texts = item_texts(dataset, ids)
        fp = catalogue_fingerprint(ids, texts)
        return cls(name, tuple(ids), np.asarray(embedder.embed(texts), dtype=np.float32),
                   f"{embedder.name}:{fp[:16]}", {"backend": embedder.name})

    @classmethod
    def from_llm(cls, dataset: Dataset, *, model: str | Path | None = None, cache_dir: str | Path | None = None,
                 backend: str = "vllm", name: str = "llm") -> ItemFeatures:
        """Mean-pooled last hidden states of every item's text through the embedded LLM, cached on disk.

        Args:
            dataset: Its items are the catalogue.
            model: A prepared model folder with ``manifest.json``; default the embedded model
                (``agent.ensure_model()``, prepared on first use).
            cache_dir: Cache root; default ``$TIDE_HOME/item-vectors``.
            backend: ``"vllm"`` (the pooling runner) or ``"transformers"`` (mean pooling by hand).
            name: Source name in results.
        """
        import agent

        folder = Path(model) if model is not None else agent.ensure_model()
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            raise DataFormatError("the model folder has no manifest.json to fingerprint", path=str(folder))
        model_fp = hashlib.sha256(manifest.read_bytes() + f"|{LLM_RECIPE}|{backend}".encode()).hexdigest()
        ids = dataset.item_ids
        texts = item_texts(dataset, ids)
        cat_fp = catalogue_fingerprint(ids, texts)
        compute = (lambda t: llm_vectors_vllm(folder, t)) if backend == "vllm" else (
            lambda t: llm_vectors_transformers(folder, t))
        root = Path(cache_dir) if cache_dir is not None else agent.tide_home() / _CACHE_SUBDIR
        vectors, hit = cached_vectors(texts, compute, model_fingerprint=model_fp, catalogue=cat_fp,
                                      cache_dir=root, source=f"llm-{folder.name}")
        return cls(name, tuple(ids), vectors, f"{model_fp[:16]}-{cat_fp[:16]}",
                   {"backend": backend, "cache_hit": hit, "model": str(folder)})


def llm_vectors_vllm(model: str | Path, texts: list[str]) -> np.ndarray:
    """Mean-pooled last hidden states through ``vllm.LLM(runner="pooling", convert="embed")``.

    Raises:
        EvalError: vLLM cannot start a pooling engine on this model.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # like agent.VLLMEngine on CPU: one OpenMP pool over every core this process may use
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(str(c) for c in sorted(os.sched_getaffinity(0))))
    try:
        from vllm import LLM
        from vllm.config import PoolerConfig

        llm = LLM(model=str(model), runner="pooling", convert="embed", dtype="float32", enforce_eager=True,
                  max_model_len=LLM_MAX_MODEL_LEN, seed=0,
                  pooler_config=PoolerConfig(seq_pooling_type="MEAN", use_activation=False))
    except Exception as exc:
        raise EvalError(f"vLLM cannot start a pooling engine on {model}: {type(exc).__name__}: {exc}") from exc
    try:
        outputs = llm.embed(texts, use_tqdm=False)
        return np.array([o.outputs.embedding for o in outputs], dtype=np.float32)
    finally:
        del llm
        import gc

        gc.collect()


def llm_vectors_transformers(model: str | Path, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """The same vectors with transformers: mean of the last hidden states over each text's tokens."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model), local_files_only=True)
    net = AutoModel.from_pretrained(str(model), local_files_only=True, dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for b in range(0, len(texts), batch_size):
            enc = tok(texts[b: b + batch_size], return_tensors="pt", padding=True, truncation=True,
                      max_length=LLM_MAX_MODEL_LEN)
            hidden = net(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    return np.concatenate(out).astype(np.float32)
