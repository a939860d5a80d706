"""SASRec: a self-attention next-item model trained with cross-entropy over the whole catalogue.

Architecture as in Kang & McAuley (2018): item embeddings scaled by sqrt(dim) plus learned absolute
positions, dropout, ``blocks`` pre-norm transformer blocks with causal self-attention, a final layer norm,
and logits as dot products with the (shared) item table. Training follows the "SASRec + CE" recipe
(Klenitskiy & Vasilev 2023; Petrov & Macdonald's gSASRec): softmax cross-entropy over every item at every
position instead of one sampled negative with binary cross-entropy. Training loop, early stopping,
persistence and the optional text input are shared with the other sequence models (``eval._seqtrain``).

Sequences are right-padded: with a causal mask no real position ever attends to padding, so no padding
mask is needed; position p is the p-th item of the window (of the last ``max_history`` items at inference).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from eval._itemfeatures import ItemFeatures
from eval._seqtrain import PAD, SeqPredictor, item_table

if TYPE_CHECKING:
    import torch

__all__ = ["SASRecConfig", "SASRecPredictor"]


class SASRecConfig(BaseModel):
    """Hyper-parameters of SASRec.

    Defaults: chosen on ML-100k VALIDATION targets (seed 0, ``scripts/sasrec_search.py``,
    docs/results/sasrec-search.md): Kang & McAuley's 2 blocks, 1 head, dim 64, 50 positions, with CE,
    dropout 0.3 and Adam at 5e-3 (best validation NDCG@10 0.1308; lr 2e-3 0.1277, dropout 0.2 0.1269 /
    0.5 0.1210, 1 block 0.1249, 2 heads 0.1228). dim 128 and 100 positions were not run: both raise the
    fit time past the 3-minute budget on a 2-core CPU.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dim: int = Field(64, ge=1)
    blocks: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    ffn_mult: int = Field(1, ge=1, description="feed-forward width = ffn_mult * dim (SASRec uses 1)")
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    max_history: int = Field(50, ge=1, description="positions; also the training window length")
    lr: float = Field(5e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    batch_size: int = Field(64, ge=1, description="windows of max_history + 1 items per step")
    max_epochs: int = Field(60, ge=1)
    patience: int = Field(5, ge=1, description="epochs without a better validation NDCG@10 before stopping")
    feature_mode: Literal["add", "only"] = Field("add", description="text vector added to / instead of the ID")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_batch_size: int = Field(512, ge=1)
    progress: bool = True

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> SASRecConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        return self


class SASRecPredictor(SeqPredictor):
    """SASRec (CE over the catalogue) with early stopping on validation NDCG@10.

    Args:
        config: Hyper-parameters.
        name: Model name in results (``sasrec``, ``sasrec+text``, ``sasrec+llm``).
        features: Optional item text vectors, projected and added to (or replacing) the ID embedding.
    """

    config_class = SASRecConfig

    def __init__(self, config: SASRecConfig, name: str = "sasrec", features: ItemFeatures | None = None) -> None:
        super().__init__(config, name, features)

    def _make_net(self, n_items: int, features: np.ndarray | None) -> torch.nn.Module:
        return _make_net(n_items, self.config, features)


def _make_net(n_items: int, cfg: SASRecConfig, features: np.ndarray | None) -> torch.nn.Module:
    import torch
    from torch import nn
    from torch.nn import functional

    class _Block(nn.Module):
        """A pre-norm transformer block: causal self-attention, then a GELU feed-forward; dropout on both
        residual branches and inside the feed-forward. No dropout on the attention weights: on this CPU
        build it made a block's backward pass ~5x slower (0.56 s vs 0.05 s per 64 x 50 batch), and the
        attention itself then runs through ``scaled_dot_product_attention`` with its causal kernel."""

        def __init__(self, c: SASRecConfig) -> None:
            super().__init__()
            self.heads = c.heads
            self.norm1, self.norm2 = nn.LayerNorm(c.dim), nn.LayerNorm(c.dim)
            self.qkv, self.out = nn.Linear(c.dim, 3 * c.dim), nn.Linear(c.dim, c.dim)
            self.ff1, self.ff2 = nn.Linear(c.dim, c.ffn_mult * c.dim), nn.Linear(c.ffn_mult * c.dim, c.dim)
            self.drop = nn.Dropout(c.dropout)

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            b, length, d = h.shape
            q, k, v = self.qkv(self.norm1(h)).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            a = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            h = h + self.drop(self.out(a.transpose(1, 2).reshape(b, length, d)))
            return h + self.drop(self.ff2(self.drop(functional.gelu(self.ff1(self.norm2(h))))))

    class _Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.items = item_table(n_items, cfg.dim, features, cfg.feature_mode)
            self.positions = nn.Embedding(cfg.max_history, cfg.dim)
            self.dropout = nn.Dropout(cfg.dropout)
            self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.blocks))
            self.norm = nn.LayerNorm(cfg.dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            length = x.shape[1]
            table = self.items.weight()
            pos = torch.arange(length, device=x.device)
            # functional.embedding, not table[x]: indexing's backward (index_put_ with accumulate) sums the
            # rows' gradients in a different order from run to run with two CPU threads, so seeded training
            # did not repeat; the embedding backward is deterministic (tests/eval/test_seq_determinism.py)
            h = functional.embedding(x, table) * math.sqrt(cfg.dim) + self.positions(pos)[None]
            h = self.dropout(h) * (x != PAD).unsqueeze(-1)
            # right padding + a causal mask: no real position can see padding, so no padding mask is needed
            # (and a row of padding alone, an empty history, still has a key to attend to)
            for block in self.blocks:
                h = block(h)
            return self.norm(h)

        def score(self, h: torch.Tensor) -> torch.Tensor:
            return h @ self.items.weight().T

    return _Net()
