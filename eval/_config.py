"""Settings of one evaluation run (written to ``config.json``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["EvalConfig"]


class EvalConfig(BaseModel):
    """Settings of one evaluation run (written to ``config.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    users: int | Literal["all"] = Field(200, description="evaluated users: a seeded sample size, or all")
    seed: int = 0
    k: int = Field(50, ge=20, description="ranking length requested and stored per user")
    tune: bool = True
    tune_alpha: float = Field(
        0.05, gt=0.0, le=1.0,
        description="a predictor's reference setting (``tune_reference``) is left only for one that beats it on "
                    "validation with paired bootstrap and Wilcoxon p below this",
    )
    tune_users: int | None = Field(
        None, ge=1,
        description="validation users the grid search reads: the evaluated users plus a seeded sample of the "
                    "split's other users, up to this many (their validation targets only; never fewer than the "
                    "evaluated users); None: the evaluated users alone. More users, more power for "
                    "``tune_alpha``'s test",
    )
    fit: bool = Field(True, description="call predictor.fit; False for predictors that are already fitted")
    batch_size: int = Field(64, ge=1, description="requests per rank() call")
    n_bootstrap: int = Field(1000, ge=10)
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    sampled_negatives: int = Field(100, ge=0, description="0 disables the sampled-negatives table")
    interest_top_n: int = Field(3, ge=1, description="top items whose genres stand for a model's interests")
    baselines: list[str] | None = Field(
        None, description="models every other model is tested against; None = every model listed before it"
    )
    significance_metrics: list[str] = ["ndcg@10", "hr@10", "mrr@10", "interest_f1"]
    progress: bool = True

    @field_validator("users")
    @classmethod
    def _positive_users(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("users must be >= 1 or 'all'")
        return value
