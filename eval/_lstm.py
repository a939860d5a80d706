"""The LSTM baseline: item embedding + LSTM next-item model trained in-process with torch.

Training is sequence-to-sequence: each training sequence is cut into windows of ``max_history + 1``
items and the model predicts the next item at *every* position (cross-entropy over the whole catalogue),
so every training prefix is a training example at the cost of one pass over the data. Window boundaries
move by a random offset every epoch, so each target is seen with varying context lengths (up to
``max_history``), like RecBole's prefix augmentation at a fiftieth of the compute.

torch is imported lazily (inside methods), so ``import eval`` stays fast.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from eval._errors import DataFormatError, NotFittedError
from eval._itemfeatures import ItemFeatures
from eval._metrics import ranking_metrics
from eval._protocol import Ranking, RankRequest, top_k_excluding
from eval._seqtrain import pad_batch, windows
from eval._split import Split

if TYPE_CHECKING:
    import torch

__all__ = ["LSTMConfig", "LSTMPredictor"]

_PAD = 0  # row 0 of the embedding is padding; item column c lives at index c + 1
_WEIGHTS_FILE = "model.pt"
_CONFIG_FILE = "config.json"


class LSTMConfig(BaseModel):
    """Hyper-parameters of the LSTM baseline (defaults reproduce the reported ML-100k numbers)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    embedding_dim: int = Field(64, ge=1)
    hidden_dim: int = Field(128, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.3, ge=0.0, lt=1.0, description="on item embeddings and LSTM outputs")
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    batch_size: int = Field(64, ge=1, description="windows of max_history + 1 items per step")
    max_epochs: int = Field(40, ge=1)
    patience: int = Field(5, ge=1, description="epochs without a better validation NDCG@10 before stopping")
    max_history: int = Field(50, ge=1)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_batch_size: int = Field(512, ge=1)
    progress: bool = True


class LSTMPredictor:
    """Embedding + LSTM next-item model with early stopping on validation NDCG@10.

    Attributes:
        name: Model name in results.
        config: Hyper-parameters.
        epochs: One record per trained epoch: ``epoch``, ``loss``, ``val_ndcg@10``, ``seconds``.
        best_epoch: The epoch whose weights were kept.
        features: Optional item text vectors (``lstm+text`` / ``lstm+llm``): a learned linear projection of
            each item's vector is added to its ID embedding, in the input and the (tied) output table.
    """

    def __init__(self, config: LSTMConfig, name: str = "lstm", features: ItemFeatures | None = None) -> None:
        self.name = name
        self.config = config
        self.features = features
        self._feature_info: dict[str, Any] | None = None
        self.epochs: list[dict[str, float | None]] = []
        self.best_epoch: int | None = None
        self._item_ids: list[str] = []
        self._index: dict[str, int] = {}
        self._net: Any = None
        self._device: Any = None

    # ----------------------------------------------------------------------------------------- setup
    def _resolve_device(self) -> torch.device:
        import torch

        if self.config.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.config.device)

    def _build(self, item_ids: Sequence[str], features: np.ndarray | None = None) -> None:
        self._item_ids = list(item_ids)
        self._index = {item: i for i, item in enumerate(self._item_ids)}
        self._device = self._resolve_device()
        self._net = _make_net(len(self._item_ids), self.config, features).to(self._device)

    def _encode(self, items: Sequence[str]) -> list[int]:
        # Unknown ids (not in the catalogue) are skipped rather than mapped to padding.
        return [self._index[i] + 1 for i in items if i in self._index]

    # ----------------------------------------------------------------------------------------- train
    def fit(self, split: Split) -> None:
        """Train on ``split.train``; early-stop on NDCG@10 of ``split.val`` (consumed items excluded).

        Keeps the weights of the best validation epoch; stops after ``patience`` epochs without
        improvement. With no validation targets it trains ``max_epochs`` and keeps the last weights.
        """
        import torch
        from tqdm.auto import tqdm

        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        feats = None
        if self.features is not None:
            feats = self.features.matrix(split.item_ids)
            self._feature_info = {"name": self.features.name, "fingerprint": self.features.fingerprint,
                                  "dim": self.features.dim}
        self._build(split.item_ids, feats)
        net = self._net
        sequences = [self._encode(s) for s in split.train.values()]
        sequences = [s for s in sequences if len(s) >= 2]
        val_users = list(split.val)
        val_requests = [split.request(u, "val") for u in val_users]
        val_targets = [split.val[u].item_id for u in val_users]
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        loss_fn = torch.nn.CrossEntropyLoss(ignore_index=_PAD)
        best, best_state, bad = -math.inf, None, 0
        self.epochs = []
        for epoch in range(1, cfg.max_epochs + 1):
            start = time.perf_counter()
            cut = windows(sequences, cfg.max_history, rng)
            order = rng.permutation(len(cut))
            net.train()
            total, count = 0.0, 0
            batches = range(0, len(order), cfg.batch_size)
            bar = tqdm(batches, desc=f"{self.name} epoch {epoch}", leave=False, disable=not cfg.progress)
            for b in bar:
                batch = [cut[i] for i in order[b : b + cfg.batch_size]]
                x, y = pad_batch(batch, self._device)
                logits = net(x)
                loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                n = int((y != _PAD).sum())
                total += loss.item() * n
                count += n
            # Without validation targets there is nothing to stop on: train max_epochs, keep the last.
            score = self._ndcg10(val_requests, val_targets) if val_requests else float(epoch)
            seconds = time.perf_counter() - start
            self.epochs.append(
                {
                    "epoch": epoch,
                    "loss": total / max(count, 1),
                    "val_ndcg@10": score if val_requests else None,
                    "seconds": seconds,
                }
            )
            if cfg.progress:
                tqdm.write(
                    f"{self.name} epoch {epoch}: loss {total / max(count, 1):.4f} "
                    f"val NDCG@10 {f'{score:.4f}' if val_requests else 'n/a'} ({seconds:.1f}s)"
                )
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
            ``(len(requests), n_items)`` float32 logits, columns in catalogue (``split.item_ids``) order;
            exclusions are not applied.

        Raises:
            NotFittedError: Before ``fit`` or ``load``.
        """
        import torch

        if self._net is None:
            raise NotFittedError("LSTMPredictor.fit (or load) was not called")
        net = self._net
        was_training = net.training
        net.eval()
        out = np.empty((len(requests), len(self._item_ids)), dtype=np.float32)
        step = self.config.eval_batch_size
        with torch.no_grad():
            for b in range(0, len(requests), step):
                chunk = requests[b : b + step]
                seqs = [self._encode(r.history)[-self.config.max_history :] or [_PAD] for r in chunk]
                lengths = torch.tensor([len(s) for s in seqs], device=self._device)
                width = int(lengths.max())
                x = torch.tensor([s + [_PAD] * (width - len(s)) for s in seqs], device=self._device)
                logits = net(x)[torch.arange(len(seqs), device=self._device), lengths - 1]
                out[b : b + len(chunk)] = logits[:, 1:].float().cpu().numpy()
        net.train(was_training)
        return out

    def rank(self, requests: Sequence[RankRequest], k: int) -> list[Ranking]:
        """Top ``k`` unconsumed items by LSTM score."""
        return top_k_excluding(self.score_all(requests), requests, self._item_ids, self._index, k)

    def _ndcg10(self, requests: Sequence[RankRequest], targets: Sequence[str]) -> float:
        """Mean NDCG@10 of single targets under full ranking with consumed items excluded (the early-stopping
        criterion: the harness's own ranking and metric, so validation here means what it means there)."""
        rankings = self.rank(requests, 10)
        return float(ranking_metrics([r.item_ids for r in rankings], targets, ["ndcg@10"])["ndcg@10"].mean())

    # ----------------------------------------------------------------------------------------- persist
    def save(self, path: str | Path) -> Path:
        """Write ``model.pt`` (state_dict) and ``config.json`` (config, catalogue, epochs) into a folder.

        Returns:
            The folder.
        """
        import torch

        if self._net is None:
            raise NotFittedError("nothing to save: LSTMPredictor is not fitted")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "name": self.name,
            "config": self.config.model_dump(mode="json"),
            "item_ids": self._item_ids,
            "features": self._feature_info,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
        }
        state = {k: v.detach().cpu() for k, v in self._net.state_dict().items()}
        tmp = folder / (_WEIGHTS_FILE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(folder / _WEIGHTS_FILE)
        tmp_json = folder / (_CONFIG_FILE + ".tmp")
        tmp_json.write_text(json.dumps(meta, indent=2))
        tmp_json.replace(folder / _CONFIG_FILE)
        return folder

    @classmethod
    def load(cls, path: str | Path, *, device: Literal["auto", "cpu", "cuda"] | None = None) -> LSTMPredictor:
        """Rebuild a saved predictor.

        Args:
            path: Folder written by ``save``.
            device: Override the saved device setting.

        Raises:
            DataFormatError: If the folder lacks the files.
        """
        import torch

        folder = Path(path)
        if not (folder / _WEIGHTS_FILE).exists() or not (folder / _CONFIG_FILE).exists():
            raise DataFormatError("not a saved LSTMPredictor folder", path=str(folder))
        meta = json.loads((folder / _CONFIG_FILE).read_text())
        config = LSTMConfig.model_validate(meta["config"])
        if device is not None:
            config = config.model_copy(update={"device": device})
        predictor = cls(config, name=meta["name"])
        info = meta.get("features")  # the text vectors themselves travel in the weights file
        predictor._build(meta["item_ids"], np.zeros((len(meta["item_ids"]), info["dim"]), np.float32) if info else None)
        state = torch.load(folder / _WEIGHTS_FILE, map_location=predictor._device, weights_only=True)
        predictor._net.load_state_dict(state)
        predictor._feature_info = info
        predictor._net.eval()
        predictor.best_epoch = meta.get("best_epoch")
        predictor.epochs = meta.get("epochs", [])
        return predictor


def _make_net(n_items: int, cfg: LSTMConfig, features: np.ndarray | None = None) -> torch.nn.Module:
    import torch
    from torch import nn

    class _Net(nn.Module):
        """Embedding -> LSTM -> dense -> dot product with the (tied) item embeddings."""

        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(n_items + 1, cfg.embedding_dim, padding_idx=_PAD)
            self.dropout = nn.Dropout(cfg.dropout)
            self.lstm = nn.LSTM(
                cfg.embedding_dim,
                cfg.hidden_dim,
                num_layers=cfg.num_layers,
                batch_first=True,
                dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            )
            self.dense = nn.Linear(cfg.hidden_dim, cfg.embedding_dim)
            nn.init.xavier_normal_(self.embedding.weight)
            with torch.no_grad():
                self.embedding.weight[_PAD].zero_()
            self.text_proj = None
            if features is not None:  # row 0 (padding) stays zero: no bias
                self.register_buffer("text", torch.from_numpy(np.vstack([np.zeros((1, features.shape[1])),
                                                                         features]).astype(np.float32)))
                self.text_proj = nn.Linear(features.shape[1], cfg.embedding_dim, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.text_proj is None:
                hidden, _ = self.lstm(self.dropout(self.embedding(x)))
                return self.dense(self.dropout(hidden)) @ self.embedding.weight.T
            table = self.embedding.weight + self.text_proj(self.text)
            hidden, _ = self.lstm(self.dropout(table[x]))
            return self.dense(self.dropout(hidden)) @ table.T

    return _Net()

