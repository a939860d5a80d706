"""The LLM as a sequential recommender with an item head (E4SRec-style): tuned on every position at once.

The letter re-ranker (``_tune``) learns from one answer token per forward pass and, on a CPU, from a few
thousand examples: it learnt nothing (docs/results/tune.md). Here the history is written as text, one
``Title (year)`` per line after a fixed header, and the LLM's final hidden state after *each* line predicts
the next item through an **item head**: one vector per catalogue item (initialised from the LLM's own
state after the item's title read alone) and a popularity bias, scored by cosine times a learnt scale, a
softmax over the catalogue with the items already seen masked (Tide's protocol). A 50-item window is one
forward pass and ~47 training targets. LoRA (``peft``) on the top decoder layers; the head is trained in
full.

Training (``agent._itemhead_tune``) reads plain per-user training sequences and refuses any forbidden item or
``(user, item)`` pair (a split's validation and test targets), like :func:`agent.build_examples`. The result
is cached under ``$TIDE_HOME/models/<base>-itemhead-<key>/`` (``key``: base checksums + data fingerprint +
config) as the LoRA adapter, ``item_head.safetensors`` and a manifest (configs, training facts, validation
metrics, every file's sha256); a run checkpoints into a work folder named by the same key and resumes there.

At inference (:class:`ItemHeadScorer`) the adapter is merged into the base in memory and the user's last
``window`` items are read in one forward pass (torch, in-process; no vLLM backend returns the hidden state
this needs together with generation).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ._catalog import CatalogItem
from ._errors import ModelPreparationError
from ._itemhead_backbone import HEADER, RATED_LINE, _Backbone
from ._model import load_manifest, model_dir, verify_files
from ._tune import _base_sha
from ._tune_data import TuneDataError, check_forbidden
from ._vllm import default_dtype

__all__ = ["CatalogScores", "ItemHeadConfig", "ItemHeadScorer", "item_head_key", "rating_level", "training_windows"]

log = logging.getLogger(__name__)

KIND = "item-head"
_CKPT = "checkpoint.pt"
_INIT = "head_init.pt"
_HEAD = "item_head.safetensors"
_ITEMS = "items.json"
_BRANCH = "branch.safetensors"
#: histories whose scores the scorer keeps (oldest dropped first; 1,682 floats each on ML-100k)
_CACHE_SIZE = 1024
# The decoder's dtype when scoring: "auto" = bfloat16 where the CPU computes it natively (AVX512-BF16 or AMX;
# agent.default_dtype), else float32. On a CPU with AVX512-BF16 bfloat16 was 2.2x faster per user and ranked
# validation targets as float32 does (NDCG@10 +0.0003 [-0.0028, +0.0038], 300 users; bench/itemhead_dtype.py);
# without native support it is emulated, and slower (an AVX2-only CPU reads a 551-token history in ~1 s in float32).
SCORER_DTYPE = "auto"
# Shorter reads of the same history whose logits the scorer averages with the full window's (test-time
# augmentation over history lengths; the head was trained on every position of its windows). () reads the full
# window only. (5,) was better on two validation samples of the test-like split (NDCG@10 of the LLM alone
# +0.012 and +0.008, 200 and 543 users) but reached p < 0.05 on neither, so it is off (docs/RESULTS.md,
# 2026-12-03, late morning; scripts/item_head_views.py).
SCORER_SHORT_VIEWS: tuple[int, ...] = ()


class ItemHeadConfig(BaseModel):
    """Settings of the item-head tuning (all part of the cache key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Settings added after the first models were trained: the value that behaves as before the setting existed,
    #: and the settings that mean nothing while it holds. A config at that value keys as before
    #: (:func:`item_head_key`), and a manifest written before the setting was added meant that value.
    ADDED_LATER: ClassVar[dict[str, tuple[Any, tuple[str, ...]]]] = {
        "lr_decay": ("none", ()),
        "standardize": (False, ()),
        "train_dtype": ("float32", ()),
        "residual": (None, ()),
        "ratings": (False, ()),
        "item_ids": (False, ("id_learning_rate", "id_scale")),
        "lora_dropout": (0.0, ()),
        "lora_layer_decay": (1.0, ()),
        "branch": (None, ("branch_learning_rate",)),
    }

    #: LoRA rank (alpha = 2 x rank). On every user's validation target (the test-like head, the LLM alone over the
    #: catalogue): 8 -> NDCG@10 0.1188, 16 -> 0.1226, 32 -> 0.1123 (docs/RESULTS.md, 2026-12-05, late night)
    rank: int = Field(default=16, ge=1, le=128)
    #: LoRA on the top this-many decoder layers (the layers below run without autograd): 3 -> 0.1134, 6 -> 0.1226,
    #: 12 -> 0.1033, 18 -> 0.1050 (measured as the rank above)
    top_layers: int = Field(default=6, ge=1)
    #: 2.5e-4 -> 0.1213, 5e-4 -> 0.1226, 1e-3 -> 0.0542 (measured as the rank above)
    learning_rate: float = Field(default=5e-4, gt=0, le=1e-1)
    #: the film vectors' and popularity bias's own rate: 3e-3 -> 0.1226, 1e-2 -> 0.1222 (measured as the rank above;
    #: docs/RESULTS.md, 2026-12-06, morning)
    head_learning_rate: float = Field(default=3e-3, gt=0, le=1e-1)
    #: items per training window and per history read at inference: 50 -> 0.1226, 100 -> 0.1191 (measured as the
    #: rank above; docs/RESULTS.md, 2026-12-06, morning)
    window: int = Field(default=50, ge=4, le=200)
    #: dropout on the LoRA path's input during training (peft's ``lora_dropout``; none at inference, where the
    #: LoRA is merged). QLoRA used 0.1 for models up to 13B, LlamaRec and TALLRec 0.05. On the branch head, 0 ->
    #: 0.1281, 0.1 -> 0.1226 (-0.0055, p 0.098; measured as the rank above; docs/RESULTS.md, 2026-12-06, afternoon)
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    #: layer-wise learning-rate decay (ELECTRA, DeBERTa-v3): the LoRA of the k-th tuned layer below the top one
    #: learns at ``learning_rate * lora_layer_decay ** k``, so the layers nearest the head move most and the lower
    #: ones, whose change every layer above must absorb, least. 1: one rate for all. On the branch head, 1 -> 0.1281,
    #: 0.8 -> 0.1272 (-0.0009, p 0.76; measured as the rank above; docs/RESULTS.md, 2026-12-06, evening)
    lora_layer_decay: float = Field(default=1.0, gt=0.0, le=1.0)
    #: a window's first this-many items are context only (no target)
    min_history: int = Field(default=3, ge=1)
    #: windows per user, newest first, back to back (100: every training item is a target). 100 with a linear
    #: decay beat 3 with a constant rate on validation (400 users, the LLM alone over the catalogue: NDCG@10
    #: 0.091 vs 0.081; scripts/item_head_catalogue.py, docs/results/item-head-catalogue-evening.json)
    windows_per_user: int = Field(default=100, ge=1, le=100)
    #: 2 (linear decay over both) beat 1 on every user's validation target (the LLM alone over the catalogue:
    #: NDCG@10 0.122 vs 0.105, p 0.002 / Wilcoxon 0.0006; docs/results/item-head-catalogue-epochs2.json)
    epochs: int = Field(default=2, ge=1, le=50)
    #: learning rates: ``"none"`` constant; ``"linear"`` decayed linearly to 0 over the planned windows
    lr_decay: Literal["none", "linear"] = "linear"
    #: stop after this many windows (one optimiser step each); None: the epochs decide
    max_windows: int | None = Field(default=None, ge=1)
    seed: int = 0
    checkpoint_every: int = Field(default=100, ge=1)
    #: standardise the hidden states before the cosine: subtract the mean of the base model's item states and
    #: divide by their per-dimension spread (fixed, from the catalogue's titles alone). The raw states share
    #: one direction (outlier dimensions: mean cosine 0.94 between two films' states on Gemma 270M, 0.93 on
    #: Qwen 0.5B; centred, 0.00), so an unstandardised cosine head starts with every film alike.
    standardize: bool = True
    #: the dtype the training step computes in: ``float32``, or ``bfloat16`` under ``torch.autocast`` (weights,
    #: LoRA and optimiser state stay float32; the head's cosine and the loss run in float32). bfloat16 is 1.9x
    #: faster per window on CPUs with native bf16 (AVX512-BF16/AMX; bench/itemhead_train_dtype.py) and on
    #: CUDA, and its test-like head beat the float32 one on all 943 validation users (the LLM alone over the
    #: catalogue: NDCG@10 0.123 vs 0.112, p 0.009 / Wilcoxon 0.024; docs/results/item-head-catalogue-bf16-
    #: pooled.json). On a CPU without native bf16, ``float32`` trains faster (another key, another model).
    train_dtype: Literal["float32", "bfloat16"] = "bfloat16"
    #: residual training: the name of a fixed scorer whose logits the caller supplies for every training
    #: position (``tune_item_head(offsets=...)``) and that are added to the head's before the loss, so the head
    #: learns what that scorer lacks (e.g. ``"sasrec-crossfit2"``: SASRec, each user scored by a model fitted
    #: without them). Training only: the scorer reads the head's logits alone, for a stage that holds the
    #: offset's scorer already. None: plain training.
    residual: str | None = None
    #: each history line carries the person's rating of the item, ``Title (year) ★4`` (``RATED_LINE``): what
    #: the ID-based sequential models never see. Training needs every window's ratings
    #: (``tune_item_head(ratings=...)``), scoring every history's (``ItemHeadScorer.scores(ratings=...)``).
    ratings: bool = False
    #: item IDs beside the titles (LLaRA's hybrid prompt, in vector form): a trainable vector per catalogue item,
    #: zero at the start, added (times ``id_scale``) to the input of the lowest tuned layer at the end of each
    #: history line, so the tuned layers read which item the line is as an ID-based model does, on top of its
    #: title. Injected above the frozen layers, it needs no backward through them and keeps the trunk cache.
    #: Off -> 0.1226, on -> 0.1283 (+0.0057, p 0.32; measured as the rank above; docs/RESULTS.md, 2026-12-06)
    item_ids: bool = False
    #: the learning rate of the item ID vectors (AdamW; decays with the others)
    id_learning_rate: float = Field(default=1e-2, gt=0, le=1.0)
    #: the ID vectors' multiplier: the residual stream there is large (Gemma 270M, input of layer 12: median
    #: per-dimension spread ~71), so a unit-scale vector learnt at ``id_learning_rate`` would stay negligible
    id_scale: float = Field(default=64.0, gt=0)
    #: a sequence branch read beside the LLM (feature-level fusion): a name (for what its starting weights were
    #: fitted on and with, e.g. ``"sasrec-<sha12>"``) for a torch module the caller supplies
    #: (``tune_item_head(branch=...)``, ``ItemHeadScorer(branch=...)``) that maps a history's item indices to one
    #: state per position; a learnt projection (zero at the start, so training starts from the plain head) adds
    #: its states to the LLM's standardised ones before the cosine, and the branch is trained jointly with the
    #: LoRA and the head, so the loss pushes the LLM towards what the branch does not already hold. Saved in the
    #: model folder (``branch.safetensors``). None: no branch. Off -> 0.1226, SASRec (``scripts/item_head_branch.py``)
    #: -> 0.1281 (+0.0055, p 0.29; measured as the rank above; docs/RESULTS.md, 2026-12-06, late morning)
    branch: str | None = None
    #: the branch's learning rate (AdamW; decays with the others): it starts fitted, so below SASRec's 5e-3
    branch_learning_rate: float = Field(default=1e-3, gt=0, le=1e-1)


def rating_level(value: float) -> int:
    """A rating as the whole number 1-5 a rated history line shows (rounded, clipped)."""
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"a rating must be a finite number, got {value!r}")
    return int(min(5, max(1, round(v))))


def training_windows(sequences: Mapping[str, Sequence[str]], index: Mapping[str, int], config: ItemHeadConfig,
                     forbidden: Iterable[str | tuple[str, str]] = (),
                     ratings: Mapping[str, Sequence[float]] | None = None) -> list[tuple]:
    """``(user, item indices)`` windows in training order (seeded shuffle, repeated per epoch); for a rated
    head (``config.ratings``) ``(user, item indices, rating levels 1-5)``.

    Each user gives up to ``windows_per_user`` windows of ``window`` items, newest first; a window shorter
    than ``min_history + 2`` items is dropped.

    Args:
        ratings: per user, one rating per item of their sequence; required by a rated head, refused otherwise.

    Raises:
        TuneDataError: a sequence holds a forbidden item or pair, or an item outside ``index``; a rated head's
            ratings are missing or not one per item.
    """
    if (ratings is None) == config.ratings:
        raise TuneDataError("a rated item head needs every sequence's ratings" if config.ratings
                            else "ratings given for an item head trained without them (ItemHeadConfig.ratings)")
    check_forbidden(sequences, list(forbidden))
    out: list[tuple] = []
    for u, seq in sequences.items():
        missing = [i for i in seq if i not in index]
        if missing:
            raise TuneDataError(f"user {u!r}: items {missing[:5]} are not in the catalogue")
        idx = [index[i] for i in seq]
        rates = None
        if ratings is not None:
            if u not in ratings or len(ratings[u]) != len(seq):
                raise TuneDataError(f"user {u!r}: {len(ratings.get(u, ()))} ratings for {len(seq)} items")
            try:
                rates = [rating_level(x) for x in ratings[u]]
            except (TypeError, ValueError) as e:
                raise TuneDataError(f"user {u!r}: {e}") from e
        for k in range(config.windows_per_user):
            end = len(idx) - k * config.window
            if end < config.min_history + 2:
                break
            start = max(0, end - config.window)
            out.append((u, idx[start:end]) if rates is None else (u, idx[start:end], rates[start:end]))
    if not out:
        raise TuneDataError("no training window: every sequence is shorter than min_history + 2")
    rng = np.random.default_rng(config.seed)
    return [out[i] for _ in range(config.epochs) for i in rng.permutation(len(out))]


def _standardized(h: Any, center: Any, inv_spread: Any) -> Any:
    """A hidden state standardised by the head's fixed centre and per-dimension inverse spread (unchanged when
    the head has none: ``ItemHeadConfig.standardize`` off). Training and scoring both call this."""
    return h if center is None else (h - center) * inv_spread


def _fingerprint(windows: Sequence[tuple], items: Sequence[CatalogItem]) -> str:
    """The training data's checksum: header, catalogue, windows (a rated head's carry their ratings)."""
    h = hashlib.sha256(HEADER.encode())
    for it in items:
        h.update(json.dumps([it.item_id, it.title]).encode())
    if windows and len(windows[0]) == 3:
        h.update(RATED_LINE.encode())
    for win in windows:
        h.update(json.dumps(list(win)).encode())
    return h.hexdigest()


def item_head_key(base_sha: str, fingerprint: str, config: ItemHeadConfig) -> str:
    """12 hex digits naming an item-head model: base checksums + data fingerprint + config."""
    cfg = config.model_dump(mode="json")
    for name, (before, dependents) in ItemHeadConfig.ADDED_LATER.items():
        if cfg[name] == before:  # added later: the keys of models trained before it stay as they were
            for k in (name, *dependents):
                del cfg[k]
    blob = json.dumps({"base": base_sha, "data": fingerprint, "config": cfg, "kind": KIND}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class ItemHeadScorer:
    """Scores the catalogue after a history with an item-head model folder (:func:`tune_item_head`).

    Args:
        folder: the tuned folder (adapter, head, items, manifest); its files are verified.
        titles: item id -> the title written in the history (the catalogue the model was trained on).
        base: the base model folder (default: the manifest's base name under ``$TIDE_HOME/models``).
        dtype: the decoder's dtype while scoring: ``float32``, ``bfloat16``, or ``auto`` (bfloat16 where the
            CPU has it natively, see :func:`agent.default_dtype`); the head computes in float32.
        short_views: the history is also read as its last ``k`` items for each ``k`` here, and the logits of
            all the reads (the full window's first) are averaged: a product of the reads' distributions. ``()``
            reads the full window only.
        branch: for a model trained with a sequence branch (``ItemHeadConfig.branch``), and only then: a module
            of the branch's architecture; its trained weights are loaded from the folder.
    """

    def __init__(self, folder: Path, titles: Mapping[str, str], base: Path | None = None, home: Path | None = None,
                 *, dtype: str = SCORER_DTYPE, short_views: Sequence[int] = SCORER_SHORT_VIEWS,
                 branch: Any | None = None):
        if dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"unknown dtype {dtype!r} (auto, float32 or bfloat16)")
        if any(int(k) < 1 for k in short_views):
            raise ValueError(f"short_views must be positive item counts, got {tuple(short_views)}")
        self.short_views = tuple(int(k) for k in short_views)
        import torch
        from peft import PeftModel
        from safetensors.torch import load_file

        self.folder = Path(folder)
        manifest = load_manifest(self.folder)
        if manifest is None or manifest.get("kind") != KIND:
            raise ModelPreparationError(f"{folder} is not an item-head model (no {KIND} manifest)", reason="manifest")
        verify_files(self.folder, manifest)
        self.manifest = manifest
        self.config = ItemHeadConfig.model_validate(manifest["config"])
        if (branch is None) != (self.config.branch is None):
            raise ValueError(f"this item head was trained with the sequence branch {self.config.branch!r}: pass a "
                             "module of its architecture" if self.config.branch else
                             "this item head was trained without a sequence branch: pass none")
        self.item_ids = json.loads((self.folder / _ITEMS).read_text())
        missing = [i for i in self.item_ids if i not in titles]
        if missing:
            raise ModelPreparationError(f"the catalogue lacks {len(missing)} of the model's items "
                                        f"(e.g. {missing[:3]})", reason="catalog")
        self.index = {i: j for j, i in enumerate(self.item_ids)}
        base = base or model_dir(home, manifest["base"]["name"])
        if _base_sha(base) != manifest["base"]["files_sha256"]:
            raise ModelPreparationError(f"{base} is not the base this model was tuned on", reason="manifest")
        self.torch = torch
        bb = _Backbone(base, [titles[i] for i in self.item_ids], 1, 1, lora=False, rated=self.config.ratings)
        bb.model = PeftModel.from_pretrained(bb.model, str(self.folder)).float().merge_and_unload()
        if dtype == "auto":
            dtype = default_dtype("cpu") if bb.device.type == "cpu" else "bfloat16"
        self.dtype = dtype
        if dtype == "bfloat16":  # the decoder only (merged adapter included); the head stays float32
            bb.model.to(torch.bfloat16)
        bb.model.eval()
        self.backbone = bb
        st = load_file(str(self.folder / _HEAD))
        f = torch.nn.functional
        self.emb = f.normalize(st["emb"].float(), dim=-1)
        self.bias, self.scale = st["bias"].float(), st["scale"].float()
        # a standardised head (ItemHeadConfig.standardize) stores its fixed centre and per-dimension scale
        self.center = st["center"].float() if "center" in st else None
        self.inv_spread = st["inv_spread"].float() if "inv_spread" in st else None
        if self.config.item_ids:  # the ID vectors (ItemHeadConfig.item_ids) go where they were trained
            n = len(bb.decoder().layers)
            bb.inject_ids(st["ids"].float(), max(0, n - self.config.top_layers), self.config.id_scale)
        self.branch, self.fuse = None, None
        if branch is not None:  # ItemHeadConfig.branch: its trained weights, and the head's projection of its states
            branch.load_state_dict(load_file(str(self.folder / _BRANCH)))
            self.branch, self.fuse = branch.float().eval(), st["fuse"].float()
        self._cache: dict[tuple[tuple[int, ...], tuple[int, ...] | None], np.ndarray] = {}

    @property
    def info(self) -> dict[str, Any]:
        """Provenance: name, key, base, data fingerprint, windows trained, validation metrics."""
        m = self.manifest
        return {"name": m["model"], "key": m["key"], "kind": KIND, "base": m["base"]["name"],
                "data_fingerprint": m["data"]["fingerprint"], "train_windows": m["train"]["windows"],
                "metrics": m.get("metrics", {}), "dtype": self.dtype, "short_views": list(self.short_views)}

    def scores(self, histories: Sequence[Sequence[str]],
               ratings: Sequence[Sequence[float]] | None = None) -> np.ndarray:
        """``(len(histories), n_items)`` logits (model item order) after each history's last ``window``
        known items; an empty history gets the popularity bias alone.

        Args:
            histories: item ids, oldest first.
            ratings: one rating per history item (1-5 scale), required by a rated head
                (``ItemHeadConfig.ratings``) and refused by an unrated one.

        Raises:
            ValueError: ratings missing for a rated head, given to an unrated one, or not one per item.
        """
        if (ratings is None) == self.config.ratings:
            raise ValueError("this item head reads ratings: pass one per history item" if self.config.ratings
                             else "this item head was trained without ratings: pass none")
        if ratings is not None and len(ratings) != len(histories):
            raise ValueError(f"{len(ratings)} rating lists for {len(histories)} histories")
        out = np.zeros((len(histories), len(self.item_ids)), dtype=np.float32)
        with self.torch.no_grad():
            for r, hist in enumerate(histories):
                if ratings is not None and len(ratings[r]) != len(hist):
                    raise ValueError(f"history {r}: {len(ratings[r])} ratings for {len(hist)} items")
                known = [k for k, i in enumerate(hist) if i in self.index][-self.config.window:]
                seq = tuple(self.index[hist[k]] for k in known)
                rates = None if ratings is None else tuple(rating_level(ratings[r][k]) for k in known)
                if not seq:
                    out[r] = self.bias.numpy()
                    continue
                key = (seq, rates)
                if key not in self._cache:  # the choice and the interests of one prediction read the same
                    if len(self._cache) >= _CACHE_SIZE:
                        self._cache.pop(next(iter(self._cache)))
                    reads = [0] + [max(0, len(seq) - k) for k in self.short_views]  # where each read starts
                    once = {a: self._logits(seq[a:], None if rates is None else rates[a:])
                            for a in dict.fromkeys(reads)}  # a short history: one read
                    self._cache[key] = np.mean([once[a] for a in reads], axis=0, dtype=np.float32)
                out[r] = self._cache[key]
        return out

    def _logits(self, seq: tuple[int, ...], rates: tuple[int, ...] | None = None) -> np.ndarray:
        """The head's logits after the item indices ``seq`` (one read of the decoder)."""
        h = _standardized(self.backbone.states(seq, rates)[-1].float(), self.center, self.inv_spread)
        if self.branch is not None:
            h = h + self.fuse @ self.branch(self.torch.tensor(seq))[-1].float()
        h = self.torch.nn.functional.normalize(h, dim=-1)
        return (self.scale * (self.emb @ h) + self.bias).numpy()

    def next_item_probs(self, history: Sequence[str], exclude: Iterable[str] = ()) -> np.ndarray:
        """The model's distribution over its items (model order) for the next one; ``exclude`` (e.g. the
        consumed items) get probability 0."""
        s = self.scores([history])[0].astype(np.float64)
        idx = [self.index[i] for i in exclude if i in self.index]
        s[idx] = -np.inf
        if not np.isfinite(s).any():
            return np.zeros(len(s))
        e = np.exp(s - s[np.isfinite(s)].max())
        return e / e.sum()

    def candidate_probs(self, history: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        """Softmax over ``candidates`` (unknown ones get probability 0)."""
        s = self.scores([history])[0]
        logit = np.array([s[self.index[c]] if c in self.index else -np.inf for c in candidates], dtype=np.float64)
        if not np.isfinite(logit).any():
            return np.full(len(candidates), 1.0 / len(candidates))
        e = np.exp(logit - logit[np.isfinite(logit)].max())
        return e / e.sum()


class CatalogScores:
    """An :class:`ItemHeadScorer` as a retrieval source (``agent.CandidateSource``): its logits in a
    catalogue's column order; items the model was not trained on get the row's lowest logit."""

    def __init__(self, scorer: ItemHeadScorer, item_ids: Sequence[str]):
        self.scorer = scorer
        self.item_ids = list(item_ids)
        self._columns: np.ndarray | None = None

    def score_histories(self, user_ids: Sequence[str], histories: Sequence[Sequence[str]],
                        nows: Sequence[Any]) -> np.ndarray:
        if getattr(getattr(self.scorer, "config", None), "ratings", False):  # any scorer with index and scores
            raise ValueError("a rated item head is not yet a candidate source (it needs each history's ratings)")
        if self._columns is None:
            self._columns = np.array([self.scorer.index.get(i, -1) for i in self.item_ids], dtype=np.int64)
        cols = self._columns
        s = self.scorer.scores(histories)
        out = s[:, np.maximum(cols, 0)]
        if (cols < 0).any():
            out[:, cols < 0] = s.min(axis=1, keepdims=True)
        return out
