"""The tuned item-head model a command attaches to its agent (``--item-head``; see ``check_item_head``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tide._output import progress_console

__all__ = ["item_head_config", "item_head_scorer"]


def item_head_scorer(item_head: str, catalog: str, cat: Any) -> Any:
    """The item-head model ``item_head`` names for the loaded catalogue ``cat`` (see ``check_item_head``):
    "auto" finds the one made for the catalogue named ``catalog`` (ml-100k: cached or committed under
    models/; None elsewhere), a folder is that one, "none" is None."""
    if item_head == "none":
        return None
    from agent import ItemHeadScorer
    from eval import branch_from_manifest, committed_item_head

    if item_head == "auto":
        with progress_console.status("looking for a tuned item-head model"):
            folder = committed_item_head(catalog)
        if folder is None:
            return None
    else:
        folder = Path(item_head).expanduser()
    with progress_console.status(f"loading the item-head model {folder.name}"):
        return ItemHeadScorer(folder, {it.item_id: it.title for it in cat.items}, branch=branch_from_manifest(folder))


#: the LLM's ranking weights beside the committed item-head model: what the main job's validation chooses with
#: it (`make main`, 500 test-like validation users; docs/results/main-job-bf16-summary.json, models.agent.tuning:
#: no grid point beats w_llm 0, fusion 0 at paired p < 0.05). The model still scores the candidates (each item's
#: ``llm_prob``) and states the interests, where it beat the memory profile on validation.
RANKING_WEIGHTS = {"w_llm": 0.0, "fusion_weight": 0.0}


def item_head_config() -> Any:
    """The agent's settings beside an item-head model: the LLM's ranking weights the main job's validation
    chooses with it (``RANKING_WEIGHTS``)."""
    from agent import AgentConfig, RetrievalConfig

    return AgentConfig(fusion_weight=RANKING_WEIGHTS["fusion_weight"],
                       retrieval=RetrievalConfig(w_llm=RANKING_WEIGHTS["w_llm"]))
