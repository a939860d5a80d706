"""The agent's settings: one immutable pydantic model (nested ones immutable too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._candidates import RetrievalConfig
from ._feedback import FeedbackConfig
from ._schemas import MAX_INTERESTS

__all__ = ["AgentConfig"]


class AgentConfig(BaseModel):
    """Settings of the agent (printed with every result it produced). Immutable: see ``with_config``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: behaviors shown in prompts: 6 recent + 4 long-range with 15 candidates, chosen on validation
    #: (scripts/prompt_budget.py): fused NDCG@10 +0.005 (n.s., 51 users; docs/results/prompt-budget.json) and
    #: interest F1 0.362 vs 0.326 (p 0.03, 64 users; prompt-budget-interests.json) against 6 + 4 with 20, at
    #: 752 instead of 855 prompt tokens; 4 + 2 with 15 (636 tokens) ranked as well but wrote worse interests
    #: (0.290) for the same LLM time
    n_recent: int = Field(default=6, ge=1, le=50)
    n_long: int = Field(default=4, ge=0, le=50)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    #: weight of the LLM's choice probability against the retrieval score among the candidates
    fusion_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    #: divide the LLM's choice probabilities by its content-free prior over the letters (contextual
    #: calibration, Zhao et al. 2021): small models prefer "A" whatever the candidates are
    calibrate: bool = False
    #: show each user's candidates in this many orders (cyclic shifts) and average each candidate's choice
    #: probability over them (permutation debiasing); 1 shows the retrieval order only. Costs that many
    #: choice prompts per user.
    choice_orders: int = Field(default=1, ge=1, le=20)
    attempts: int = Field(default=3, ge=1, le=10)
    interests: bool = True
    interest_max_tokens: int = Field(default=160, ge=16, le=1024)
    #: interests a prediction states (after grounding, the ones the memory supports first); the LLM may
    #: write up to three. 2 was chosen on validation by interest F1 (scripts/interest_count.py, 160 users:
    #: 0.325 vs 0.318 for all it writes, n.s., and 0.255 for one; docs/results/interest-count.json)
    max_interests: int = Field(default=2, ge=1, le=MAX_INTERESTS)
    #: where interests come from when the agent has an item-head model (``with_item_head``): "llm" (the
    #: engine's constrained generation) or "item-head" (the categories most likely on the next item under
    #: the tuned model; no generation). Without an item-head model the LLM writes them. "item-head" chosen
    #: on validation by the rule in scripts/item_head_interests.py (160 users: F1 0.382 vs the LLM's 0.315,
    #: p 0.016 / 0.010; profile top-3 0.361; docs/results/item-head-interests.json)
    interest_source: Literal["llm", "item-head"] = "item-head"
    #: how many interests the item-head source states (at most, with "expected-f1")
    item_head_interests: int = Field(default=3, ge=1, le=MAX_INTERESTS)
    #: how the item-head source picks them: "top-k" (the ``item_head_interests`` likeliest categories) or
    #: "expected-f1" (the set of at most that many with the highest expected F1 against the next item).
    #: "expected-f1" with at most 3 was the family's best on validation (scripts/item_head_interests.py
    #: --skip-llm, 160 users: F1 0.406; top-2 0.382, top-3 0.399; docs/results/item-head-interests-rule.json)
    item_head_rule: Literal["top-k", "expected-f1"] = "expected-f1"
    #: "expected-f1" only: the model's next-item distribution sharpened (< 1) or flattened (> 1), and the
    #: share of the mass given to the user's last 10 items' categories (``agent.expected_f1_labels``). 0.7 and
    #: 0: the best of a 4 x 4 grid on validation with the two-epoch head (scripts/item_head_interests.py,
    #: 400 users, seed 1: F1 0.413 vs 0.395 at the standardised head's pick 0.7 and 0.25, p 0.020 / Wilcoxon
    #: 0.025; docs/results/item-head-interests-grid-ep2.json). The better the head, the less the recent items add.
    item_head_temperature: float = Field(default=0.7, gt=0.0, le=10.0)
    item_head_recent_mix: float = Field(default=0.0, ge=0.0, le=1.0)
    #: most labels an interest may choose from (the user's grounded categories; see ``interest_labels``)
    interest_labels: int = Field(default=6, ge=2, le=100)
    summary_max_tokens: int = Field(default=120, ge=32, le=1024)
    chat_max_tokens: int = Field(default=160, ge=16, le=1024)
    #: on an LLM failure after retries: False raises, True falls back to retrieval-only (flagged)
    fallback: bool = False
    #: users per engine batch; rank and interest prompts of a user share their history prefix, and a
    #: batch's prompts must fit the KV cache together for vLLM's prefix cache to reuse it
    batch_size: int = Field(default=32, ge=1)
    #: how like/dislike/skip/consumed feedback weighs in profiles and retrieval (see ``agent._feedback``)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)

    def updated(self, **updates: Any) -> AgentConfig:
        """A validated copy with ``updates``; a nested config takes a model or a dict of its fields to change
        (``retrieval={"w_co": 1.0}``).

        Raises:
            pydantic.ValidationError: An unknown field or a value out of range.
        """
        data = self.model_dump()
        for key, value in updates.items():
            if isinstance(value, BaseModel):
                value = value.model_dump()
            if isinstance(value, Mapping) and isinstance(data.get(key), dict):
                value = {**data[key], **value}
            data[key] = value
        return AgentConfig.model_validate(data)
