"""The LSTM baseline: item embedding + LSTM next-item model trained in-process with torch.

Training is sequence-to-sequence: each training sequence is cut into windows of ``max_history + 1``
items and the model predicts the next item at *every* position (cross-entropy over the whole catalogue),
so every training prefix is a training example at the cost of one pass over the data. Window boundaries
move by a random offset every epoch, so each target is seen with varying context lengths (up to
``max_history``), like RecBole's prefix augmentation at a fiftieth of the compute. The training loop, early
stopping, scoring, ranking and persistence are the shared ones of :class:`eval._seqtrain.SeqPredictor`;
this module holds the LSTM's configuration and its net.

torch is imported lazily (inside methods), so ``import eval`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from eval._itemfeatures import ItemFeatures
from eval._seqtrain import PAD, SeqPredictor

if TYPE_CHECKING:
    import torch

__all__ = ["LSTMConfig", "LSTMPredictor"]


class LSTMConfig(BaseModel):
    """Hyper-parameters of the LSTM baseline (defaults picked on ML-100k validation; see ``lr``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    embedding_dim: int = Field(64, ge=1)
    hidden_dim: int = Field(128, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.3, ge=0.0, lt=1.0, description="on item embeddings and LSTM outputs")
    #: 5e-3 picked on validation (scripts/sasrec_search.py --model lstm; docs/results/lstm-search.md): best
    #: validation NDCG@10 (0.131 vs 0.116 at 1e-3) in 27 epochs instead of 39 (112 s vs 225 s on 2 cores)
    lr: float = Field(5e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    batch_size: int = Field(64, ge=1, description="windows of max_history + 1 items per step")
    max_epochs: int = Field(40, ge=1)
    patience: int = Field(5, ge=1, description="epochs without a better validation NDCG@10 before stopping")
    max_history: int = Field(50, ge=1)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_batch_size: int = Field(512, ge=1)
    progress: bool = True


class LSTMPredictor(SeqPredictor):
    """Embedding + LSTM next-item model with early stopping on validation NDCG@10.

    Args:
        config: Hyper-parameters.
        name: Model name in results (``lstm``, ``lstm+text``, ``lstm+llm``).
        features: Optional item text vectors: a learned linear projection of each item's vector is added to
            its ID embedding, in the input and the (tied) output table.
    """

    config_class = LSTMConfig

    def __init__(self, config: LSTMConfig, name: str = "lstm", features: ItemFeatures | None = None) -> None:
        super().__init__(config, name, features)

    def _make_net(self, n_items: int, features: np.ndarray | None) -> torch.nn.Module:
        return _make_net(n_items, self.config, features)


def _make_net(n_items: int, cfg: LSTMConfig, features: np.ndarray | None = None) -> torch.nn.Module:
    import torch
    from torch import nn
    from torch.nn import functional

    class _Net(nn.Module):
        """Embedding -> LSTM -> dense; ``score`` is the dot product with the (tied) item embeddings.

        Parameter and buffer names (``embedding``, ``lstm``, ``dense``, ``text_proj``, ``text``) are those of
        the saved ``model.pt`` files: keep them.
        """

        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(n_items + 1, cfg.embedding_dim, padding_idx=PAD)
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
                self.embedding.weight[PAD].zero_()
            self.text_proj = None
            if features is not None:  # row 0 (padding) stays zero: no bias
                self.register_buffer("text", torch.from_numpy(np.vstack([np.zeros((1, features.shape[1])),
                                                                         features]).astype(np.float32)))
                self.text_proj = nn.Linear(features.shape[1], cfg.embedding_dim, bias=False)

        def table(self) -> torch.Tensor:
            """The ``(n_items + 1, embedding_dim)`` item table: ID embedding (+ projected text)."""
            if self.text_proj is None:
                return self.embedding.weight
            return self.embedding.weight + self.text_proj(self.text)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # without text the lookup goes through nn.Embedding (its padding row gets no input gradient); with
            # text through functional.embedding, whose backward is deterministic (indexing's is not, eval._sasrec)
            embedded = self.embedding(x) if self.text_proj is None else functional.embedding(x, self.table())
            hidden, _ = self.lstm(self.dropout(embedded))
            return self.dense(self.dropout(hidden))

        def score(self, h: torch.Tensor) -> torch.Tensor:
            return h @ self.table().T

    return _Net()
