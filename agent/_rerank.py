"""The re-ranking stage: the LLM chooses among a user's candidates, read as one letter (LlamaRec's verbalizer).

The choice prompt shows the user's history and the candidates labelled A, B, ...; the engine returns the
probability of each label as the next token. Two corrections for a small model's position bias, both off
by default:

- *calibration* (``AgentConfig.calibrate``): divide by the model's content-free prior over the letters
  (Zhao et al. 2021), computed once per candidate count;
- *permutation* (``AgentConfig.choice_orders``): show the candidates in several orders (cyclic shifts) and
  average each candidate's probability over them.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import prompts

from ._catalog import Catalog, CatalogItem
from ._context import UserContext, prompt_history
from ._engine import LLMEngine
from ._errors import EngineError
from ._itemhead import ItemHeadScorer
from ._retrieval import ScoredUser
from ._tune import tuned_info
from ._tune_data import rank_short_prompt

__all__ = ["CHOICE_LABELS", "ChoiceProbs", "Reranker", "candidate_lines", "choice_orders", "content_free_prompt",
           "render_choice_prompt"]

#: A..T: one token each (LlamaRec's verbalizer); also the most candidates a choice prompt can show
CHOICE_LABELS = tuple(string.ascii_uppercase[:20])
#: floor of a prior probability, so calibration never divides by zero
_PRIOR_FLOOR = 1e-6


def _render(candidates: list[dict[str, object]], history: dict[str, object]) -> str:
    # the template file ends in a newline; the labels are read as the next token after "Answer:" (" A")
    return prompts.render("rank", candidates=candidates, **history).rstrip("\n")


def render_choice_prompt(context: UserContext, items: Sequence[CatalogItem]) -> str:
    """The choice prompt for one user with ``items`` shown as A, B, ... in the order given.

    This is exactly what the agent sends to the engine (its answer is the next token after ``Answer:``).

    Args:
        context: The user's memory as the agent read it (``InterestAgent.contexts``).
        items: The candidates, in the order to show them (at most ``len(CHOICE_LABELS)``).

    Raises:
        ValueError: More candidates than labels.
    """
    return _render(candidate_lines(items), prompt_history(context))


def candidate_lines(items: Sequence[CatalogItem]) -> list[dict[str, object]]:
    """The lettered candidate lines of ``_candidates.j2`` (shared by the choice and interest prompts).

    Raises:
        ValueError: More candidates than labels.
    """
    if len(items) > len(CHOICE_LABELS):
        raise ValueError(f"a choice prompt shows at most {len(CHOICE_LABELS)} candidates, got {len(items)}")
    return [{"label": CHOICE_LABELS[j], "title": it.title, "categories": list(it.categories)}
            for j, it in enumerate(items)]


def content_free_prompt(n: int) -> str:
    """The choice prompt with no history and ``n`` candidates all "N/A": what calibration's prior is read from."""
    cands = [{"label": CHOICE_LABELS[j], "title": "N/A", "categories": []} for j in range(n)]
    return _render(cands, {"recent": [], "long_range": [], "short_shares": [], "long_shares": []})


def choice_orders(n: int, count: int) -> np.ndarray:
    """``count`` presentation orders of ``n`` candidates, as an int array ``(count, n)``.

    Row ``j`` lists the candidate shown at each position: the candidates' own order cyclically shifted by
    ``j·n/count``, so each candidate visits evenly spaced positions. Row 0 is the own order; ``count`` is
    capped at ``n`` (more shifts would repeat one).
    """
    if n < 1 or count < 1:
        raise ValueError("n and count must be positive")
    count = min(count, n)
    return np.stack([np.roll(np.arange(n), -(j * n // count)) for j in range(count)])


@dataclass(frozen=True)
class ChoiceProbs:
    """The LLM's choice probabilities for one user's candidates, scored in one or more orders.

    Attributes:
        orders: ``(m, n)`` ints; ``orders[j, p]`` is the candidate (index into ``ScoredUser.candidates``)
            shown at position ``p`` in order ``j``.
        probs: ``(m, n)``; ``probs[j, p]`` is the probability of the letter at position ``p`` in order ``j``.
    """

    orders: np.ndarray
    probs: np.ndarray

    def per_candidate(self, prior: np.ndarray | None = None) -> np.ndarray:
        """Each candidate's probability averaged over the orders (in candidate order).

        Args:
            prior: Probabilities of the letters on a content-free prompt; if given, each order's
                probabilities are divided by it and renormalised first (calibration is per position).
        """
        out = np.zeros(self.probs.shape[1])
        for order, p in zip(self.orders, self.probs, strict=True):
            if prior is not None:
                p = p / prior
                p = p / p.sum()
            out[order] += p
        return out / len(self.orders)


class Reranker:
    """Scores each user's candidates with the engine (see the module docstring).

    Args:
        catalog: The catalogue the candidates index.
        engine: The LLM.
        item_head: A tuned item-head model (``tide model tune``): when given, it scores the candidates
            (a softmax over them after the user's history; no letters, so no position bias) instead of
            the engine's letter choice.
        calibrate: Compute the content-free prior alongside the scores (so an engine failure surfaces here).
        orders: Presentation orders per user (1 = the candidates' own order only).
        priors: Cache of content-free priors by candidate count; agents on the same engine may share one.
    """

    def __init__(self, catalog: Catalog, engine: LLMEngine | None, *, calibrate: bool = False, orders: int = 1,
                 priors: dict[int, np.ndarray] | None = None, item_head: ItemHeadScorer | None = None):
        self.catalog = catalog
        self.engine = engine
        self.item_head = item_head
        self.calibrate = calibrate
        self.orders = orders
        self.priors = {} if priors is None else priors

    @functools.cached_property
    def tuned(self) -> dict[str, Any] | None:
        """A tuned model's (``tide model tune``) manifest facts: it is asked in the prompt format it was
        trained on. Read at first use, so building an agent does not wait for an engine still starting."""
        if self.item_head is not None:
            return self.item_head.info
        return tuned_info(self.engine.model_name) if self.engine is not None else None

    def prompt(self, s: ScoredUser, order: Sequence[int] | None = None) -> str:
        """The choice prompt of ``s`` with its candidates in ``order`` (indices into ``s.candidates``)."""
        idx = range(len(s.candidates)) if order is None else order
        items = [self.catalog.items[s.candidates[j]] for j in idx]
        if self.tuned is not None and self.tuned["template"] == "rank_short":
            recent = s.context.history[-self.tuned["history_items"]:]
            return rank_short_prompt([self.catalog.items[self.catalog.index[i]] for i in recent
                                      if i in self.catalog.index], items)
        return render_choice_prompt(s.context, items)

    def choice_probs(self, scored: Sequence[ScoredUser]) -> list[ChoiceProbs | None]:
        """The LLM's choice probabilities per user (None for cold users or a single candidate)."""
        if self.item_head is not None:
            return self._item_head_probs(scored)
        if self.engine is None:
            raise ValueError("choice scoring needs an engine")
        todo = [i for i, s in enumerate(scored) if not s.context.cold and len(s.candidates) > 1]
        out: list[ChoiceProbs | None] = [None] * len(scored)
        by_n: dict[int, list[int]] = {}
        for i in todo:
            by_n.setdefault(len(scored[i].candidates), []).append(i)
        for n, idx in by_n.items():
            if self.calibrate:
                self.choice_prior(n)  # here, so an engine failure meets the caller's fallback choice
            orders = choice_orders(n, self.orders)
            texts = [self.prompt(scored[i], order) for i in idx for order in orders]
            res = self.engine.score_choices(texts, CHOICE_LABELS[:n])
            if len(res) != len(texts):
                raise EngineError(f"the engine scored {len(res)} of {len(texts)} choice prompts")
            m = len(orders)
            for pos, i in enumerate(idx):
                probs = np.stack([np.asarray(r.probs) for r in res[pos * m:(pos + 1) * m]])
                out[i] = ChoiceProbs(orders, probs)
        return out

    def _item_head_probs(self, scored: Sequence[ScoredUser]) -> list[ChoiceProbs | None]:
        out: list[ChoiceProbs | None] = [None] * len(scored)
        for i, s in enumerate(scored):
            if s.context.cold or len(s.candidates) < 2:
                continue
            ids = [self.catalog.items[j].item_id for j in s.candidates]
            p = self.item_head.candidate_probs(s.context.history, ids)
            out[i] = ChoiceProbs(np.arange(len(ids))[None, :], p[None, :])
        return out

    def choice_prior(self, n: int) -> np.ndarray:
        """The LLM's probabilities for the first ``n`` letters on :func:`content_free_prompt`, computed once
        per ``n``: the position bias that calibration divides out."""
        if n not in self.priors:
            if self.engine is None:
                raise ValueError("calibration needs an engine")
            prompt = content_free_prompt(n)
            if self.tuned is not None and self.tuned["template"] == "rank_short":
                prompt = rank_short_prompt([], [CatalogItem(item_id=f"na{j}", title="N/A") for j in range(n)])
            [res] = self.engine.score_choices([prompt], CHOICE_LABELS[:n])
            self.priors[n] = np.maximum(np.asarray(res.probs, dtype=float), _PRIOR_FLOOR)
        return self.priors[n]
