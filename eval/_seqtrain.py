"""Shared machinery of the next-item sequence models trained with cross-entropy over the catalogue.

A model subclasses :class:`SeqPredictor` and supplies ``_make_net``: a torch module mapping a right-padded
``(batch, length)`` tensor of item indices (0 = padding, catalogue column c = index c + 1) to
``(batch, length, dim)`` hidden states, with a method ``score(h)`` mapping ``(..., dim)`` states to
``(..., n_items + 1)`` next-item logits. Logits are computed only where they are needed (real training
positions; the last position at inference): the ``dim x n_items`` product is most of the cost. Training is
sequence-to-sequence over windows of ``max_history + 1`` items whose boundaries move by a random offset
every epoch (every training prefix is a target once per epoch), with early stopping on validation NDCG@10
(consumed items excluded); the weights of the best validation epoch are kept.

Item representation: an ID embedding, optionally plus (or replaced by) a learned linear projection of a
fixed text vector per item (:class:`eval.ItemFeatures`); the same table embeds the inputs and scores the
outputs, so an item seen rarely in training still gets a score from its text.

torch is imported lazily, so ``import eval`` stays fast.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
from pydantic import BaseModel

from eval._errors import DataFormatError, NotFittedError
from eval._itemfeatures import ItemFeatures
from eval._metrics import metrics_from_ranks
from eval._protocol import Ranking, RankRequest, top_k_excluding
from eval._split import Split

if TYPE_CHECKING:
    import torch

__all__ = ["PAD", "SeqPredictor", "item_table", "ndcg10", "pad_batch", "windows"]

PAD = 0
_WEIGHTS_FILE = "model.pt"
_CONFIG_FILE = "config.json"


def item_table(n_items: int, dim: int, features: np.ndarray | None, mode: Literal["add", "only"]) -> Any:
    """A module whose ``weight()`` is the ``(n_items + 1, dim)`` item table (row 0 = padding = zeros).

    Args:
        n_items: Catalogue size.
        dim: Embedding size.
        features: Optional ``(n_items, d)`` fixed text vectors, projected by a learned linear layer.
        mode: ``"add"``: ID embedding + projected text; ``"only"``: projected text alone.
    """
    import torch
    from torch import nn

    class _Table(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ids = None
            if features is None or mode == "add":
                self.ids = nn.Embedding(n_items + 1, dim, padding_idx=PAD)
                nn.init.xavier_normal_(self.ids.weight)
                with torch.no_grad():
                    self.ids.weight[PAD].zero_()
            self.proj = None
            if features is not None:
                padded = np.zeros((n_items + 1, features.shape[1]), dtype=np.float32)
                padded[1:] = features
                self.register_buffer("features", torch.from_numpy(padded))
                self.proj = nn.Linear(features.shape[1], dim, bias=False)  # no bias: padding stays 0

        def weight(self) -> torch.Tensor:
            table = self.ids.weight if self.ids is not None else 0.0
            if self.proj is not None:
                table = table + self.proj(self.features)
            return table

    return _Table()


def windows(sequences: list[list[int]], max_history: int, rng: np.random.Generator) -> list[list[int]]:
    """Cut sequences into windows of at most ``max_history + 1`` items, sharing one boundary item.

    Every target position (index >= 1) lies in exactly one window; the first boundary is random.
    """
    out = []
    for seq in sequences:
        first = int(rng.integers(1, max_history + 1))
        starts = [0, *range(first, len(seq) - 1, max_history)]
        for s, e in zip(starts, [*starts[1:], len(seq) - 1], strict=True):
            out.append(seq[s : e + 1])
    return out


def pad_batch(batch: list[list[int]], device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded inputs (all but the last item) and targets (all but the first)."""
    import torch

    width = max(len(w) for w in batch) - 1
    x = torch.full((len(batch), width), PAD, dtype=torch.long)
    y = torch.full((len(batch), width), PAD, dtype=torch.long)
    for row, w in enumerate(batch):
        x[row, : len(w) - 1] = torch.tensor(w[:-1])
        y[row, : len(w) - 1] = torch.tensor(w[1:])
    return x.to(device), y.to(device)


def ndcg10(scores: np.ndarray, requests: Sequence[RankRequest], targets: np.ndarray, index: dict[str, int]) -> float:
    """Mean NDCG@10 of single targets under full ranking with consumed items excluded (-1 = no target).

    The metric is the harness's own (``metrics_from_ranks``), so validation here means what it means there.
    """
    if len(targets) == 0:
        return 0.0
    ranks = np.full(len(targets), np.inf)
    for row, (request, target) in enumerate(zip(requests, targets, strict=True)):
        if target < 0:
            continue
        s = scores[row].astype(np.float64)
        s[[index[i] for i in request.exclude if i in index]] = -np.inf
        # rank = 1 + items scored higher + equal-scored items earlier in the catalogue (stable order)
        ranks[row] = 1 + int((s > s[target]).sum()) + int((s[:target] == s[target]).sum())
    return float(metrics_from_ranks(ranks, ["ndcg@10"])["ndcg@10"].mean())


class SeqPredictor:
    """Fit / score / rank / save / load for a next-item net (see the module docstring).

    Subclasses set ``config_class`` and implement ``_make_net(n_items, features)``. The config must have
    ``lr, weight_decay, batch_size, max_epochs, patience, max_history, seed, device, eval_batch_size,
    progress``.

    Attributes:
        name: Model name in results.
        config: Hyper-parameters.
        features: Optional item text vectors (the ``+text`` / ``+llm`` variants).
        epochs: One record per trained epoch: ``epoch``, ``loss``, ``val_ndcg@10``, ``seconds``.
        best_epoch: The epoch whose weights were kept.
    """

    config_class: ClassVar[type[BaseModel]]

    def __init__(self, config: Any, name: str, features: ItemFeatures | None = None) -> None:
        self.name = name
        self.config = config
        self.features = features
        self.epochs: list[dict[str, float | None]] = []
        self.best_epoch: int | None = None
        self._item_ids: list[str] = []
        self._index: dict[str, int] = {}
        self._net: Any = None
        self._device: Any = None
        self._feature_info: dict[str, Any] | None = None

    def _make_net(self, n_items: int, features: np.ndarray | None) -> torch.nn.Module:
        raise NotImplementedError

    def _build(self, item_ids: Sequence[str], features: np.ndarray | None) -> None:
        import torch

        self._item_ids = list(item_ids)
        self._index = {item: i for i, item in enumerate(self._item_ids)}
        dev = self.config.device
        self._device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if dev == "auto" else dev)
        self._net = self._make_net(len(self._item_ids), features).to(self._device)

    def _encode(self, items: Sequence[str]) -> list[int]:
        return [self._index[i] + 1 for i in items if i in self._index]  # unknown ids are skipped

    # ----------------------------------------------------------------------------------------- train
    def fit(self, split: Split) -> None:
        """Train on ``split.train``; early-stop on NDCG@10 of ``split.val`` (consumed items excluded).

        With no validation targets it trains ``max_epochs`` and keeps the last weights.
        """
        import torch
        from tqdm.auto import tqdm

        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        feats = self.features.matrix(split.item_ids) if self.features is not None else None
        if self.features is not None:
            self._feature_info = {"name": self.features.name, "fingerprint": self.features.fingerprint,
                                  "dim": self.features.dim}
        self._build(split.item_ids, feats)
        net = self._net
        sequences = [s for s in (self._encode(s) for s in split.train.values()) if len(s) >= 2]
        val_users = list(split.val)
        val_requests = [split.request(u, "val") for u in val_users]
        val_targets = np.array([self._index.get(split.val[u].item_id, -1) for u in val_users])
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD)
        best, best_state, bad = -math.inf, None, 0
        self.epochs = []
        for epoch in range(1, cfg.max_epochs + 1):
            start = time.perf_counter()
            wins = windows(sequences, cfg.max_history, rng)
            order = rng.permutation(len(wins))
            net.train()
            total, count = 0.0, 0
            steps = range(0, len(order), cfg.batch_size)
            for b in tqdm(steps, desc=f"{self.name} epoch {epoch}", leave=False, disable=not cfg.progress):
                x, y = pad_batch([wins[i] for i in order[b : b + cfg.batch_size]], self._device)
                real = y != PAD
                loss = loss_fn(net.score(net(x)[real]), y[real])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                n = int(real.sum())
                total += loss.item() * n
                count += n
            score = ndcg10(self.score_all(val_requests), val_requests, val_targets, self._index) if val_requests \
                else float(epoch)
            seconds = time.perf_counter() - start
            self.epochs.append({"epoch": epoch, "loss": total / max(count, 1),
                                "val_ndcg@10": score if val_requests else None, "seconds": seconds})
            if cfg.progress:
                tqdm.write(f"{self.name} epoch {epoch}: loss {total / max(count, 1):.4f} val NDCG@10 "
                           f"{f'{score:.4f}' if val_requests else 'n/a'} ({seconds:.1f}s)")
            if score > best:
                best, bad, self.best_epoch = score, 0, epoch
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()

    # ----------------------------------------------------------------------------------------- infer
    def score_all(self, requests: Sequence[RankRequest]) -> np.ndarray:
        """Score every catalogue item for each request from its last ``max_history`` items.

        Returns:
            ``(len(requests), n_items)`` float32 logits in catalogue order; exclusions not applied.

        Raises:
            NotFittedError: Before ``fit`` or ``load``.
        """
        import torch

        if self._net is None:
            raise NotFittedError(f"{type(self).__name__}.fit (or load) was not called")
        net = self._net
        was_training = net.training
        net.eval()
        out = np.empty((len(requests), len(self._item_ids)), dtype=np.float32)
        step = self.config.eval_batch_size
        with torch.no_grad():
            for b in range(0, len(requests), step):
                chunk = requests[b : b + step]
                seqs = [self._encode(r.history)[-self.config.max_history :] or [PAD] for r in chunk]
                lengths = torch.tensor([len(s) for s in seqs], device=self._device)
                width = int(lengths.max())
                x = torch.tensor([s + [PAD] * (width - len(s)) for s in seqs], device=self._device)
                logits = net.score(net(x)[torch.arange(len(seqs), device=self._device), lengths - 1])
                out[b : b + len(chunk)] = logits[:, 1:].float().cpu().numpy()
        net.train(was_training)
        return out

    def rank(self, requests: Sequence[RankRequest], k: int) -> list[Ranking]:
        """Top ``k`` unconsumed items by score."""
        return top_k_excluding(self.score_all(requests), requests, self._item_ids, self._index, k)

    # ----------------------------------------------------------------------------------------- persist
    def save(self, path: str | Path) -> Path:
        """Write ``model.pt`` (state_dict, text vectors included) and ``config.json`` into a folder."""
        import torch

        if self._net is None:
            raise NotFittedError(f"nothing to save: {type(self).__name__} is not fitted")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"name": self.name, "config": self.config.model_dump(mode="json"), "item_ids": self._item_ids,
                "features": self._feature_info, "best_epoch": self.best_epoch, "epochs": self.epochs}
        tmp = folder / (_WEIGHTS_FILE + ".tmp")
        torch.save({k: v.detach().cpu() for k, v in self._net.state_dict().items()}, tmp)
        tmp.replace(folder / _WEIGHTS_FILE)
        tmp_json = folder / (_CONFIG_FILE + ".tmp")
        tmp_json.write_text(json.dumps(meta, indent=2))
        tmp_json.replace(folder / _CONFIG_FILE)
        return folder

    @classmethod
    def load(cls, path: str | Path, *, device: Literal["auto", "cpu", "cuda"] | None = None) -> Self:
        """Rebuild a saved predictor (the text vectors travel in the weights file).

        Raises:
            DataFormatError: If the folder lacks the files.
        """
        import torch

        folder = Path(path)
        if not (folder / _WEIGHTS_FILE).exists() or not (folder / _CONFIG_FILE).exists():
            raise DataFormatError(f"not a saved {cls.__name__} folder", path=str(folder))
        meta = json.loads((folder / _CONFIG_FILE).read_text())
        config = cls.config_class.model_validate(meta["config"])
        if device is not None:
            config = config.model_copy(update={"device": device})
        predictor = cls(config, name=meta["name"])
        info = meta.get("features")
        placeholder = np.zeros((len(meta["item_ids"]), info["dim"]), dtype=np.float32) if info else None
        predictor._build(meta["item_ids"], placeholder)
        state = torch.load(folder / _WEIGHTS_FILE, map_location=predictor._device, weights_only=True)
        predictor._net.load_state_dict(state)
        predictor._net.eval()
        predictor._feature_info = info
        predictor.best_epoch = meta.get("best_epoch")
        predictor.epochs = meta.get("epochs", [])
        return predictor
