"""The main job's parts: the LLM and item-head model folders, the engine, and the models evaluated."""

from __future__ import annotations

import logging
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval._data import Dataset
from eval._errors import EvalError
from eval._mainconfig import DEFAULT_ITEM_HEAD_CONFIG, MEMORY_MODELS, MainConfig
from eval._protocol import Predictor
from eval._split import Split

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from agent import InterestAgent
    from eval._tide import MemorySync

__all__ = ["build_predictors", "has_query_context", "item_head_folder", "llm_model_folder", "start_engine"]


def llm_model_folder(cfg: MainConfig, split: Split, stages: dict[str, float]) -> Path | None:
    """The model folder the agent's engine serves (None: the embedded one); with ``llm_model='tuned'`` the
    embedded model is tuned here on the split's training sequences only (cached; see ``tide model tune``)."""
    if cfg.llm_model is None or "agent" not in cfg.models or cfg.engine_url:
        return None
    if cfg.llm_model != "tuned":
        path = Path(cfg.llm_model).expanduser()
        if not path.is_dir():
            raise EvalError(f"llm_model {cfg.llm_model!r} is not a model folder")
        return path
    from agent import TuneConfig, TuneDataConfig
    from eval._tune import tune_on_split

    t = time.perf_counter()
    path = tune_on_split(split, TuneDataConfig(), TuneConfig())
    stages["LLM tuning"] = time.perf_counter() - t
    return Path(path)


def item_head_folder(cfg: MainConfig, split: Split, stages: dict[str, float]) -> Path | None:
    """The item-head model folder for the agent (None: the engine's letter choice scores the candidates) and
    for the ``llm`` model (which needs one)."""
    if "llm" in cfg.models and cfg.item_head is None:
        raise EvalError("the llm model is the item-head model alone: it needs --item-head auto, tune or a folder")
    if cfg.item_head_config is not None and cfg.item_head not in ("auto", "tune"):
        raise EvalError("item_head_config is for item_head 'auto' or 'tune' (a folder is one model already; "
                        "None is none)")
    if cfg.item_head is None or not {"agent", "llm"} & set(cfg.models):
        return None
    if cfg.item_head not in ("auto", "tune"):
        path = Path(cfg.item_head).expanduser()
        if not path.is_dir():
            raise EvalError(f"item_head {cfg.item_head!r} is not a model folder")
        return path
    from agent import ItemHeadConfig, ModelPreparationError, TuneDataError
    from eval._tune import item_head_on_split

    t = time.perf_counter()
    config = ItemHeadConfig(**(DEFAULT_ITEM_HEAD_CONFIG if cfg.item_head_config is None else cfg.item_head_config))
    try:
        path = item_head_on_split(split, config, train=cfg.item_head == "tune")
    except (ModelPreparationError, TuneDataError) as exc:  # no base model prepared, or no training window
        if cfg.item_head == "tune":
            raise
        log.warning("no item-head model: %s", exc)
        path = None
    if path is None and "llm" in cfg.models:
        raise EvalError("the llm model needs an item-head model tuned on this split's training sequences: "
                        "none is cached or committed ('--item-head tune' trains one)")
    if path is None:
        log.warning("no item-head model tuned on this split's training data is cached or committed; the "
                    "engine's letter choice scores the candidates ('--item-head tune' trains one)")
    stages["item-head model"] = time.perf_counter() - t
    return path


def start_engine(cfg: MainConfig, resources: ExitStack, stages: dict[str, float], llm_model: Path | None) -> Any:
    """The agent's engine (None without the agent), closed by ``resources``: one for the whole job.

    vLLM's engine core runs in this process (no child processes that import torch and vLLM again;
    bench/inprocess.py). Starting it in a background thread while the baselines fit bought 3 % here
    (bench/overlap.py: two busy processes on two cores slow the fits).
    """
    if "agent" not in cfg.models:
        return None
    from agent import make_engine

    t = time.perf_counter()
    engine = make_engine(cfg.engine_url, seed=cfg.seed, in_process=True,
                         **({"model": str(llm_model)} if llm_model else {}))
    resources.callback(engine.close)
    stages["engine start"] = time.perf_counter() - t
    return engine


def build_predictors(
    cfg: MainConfig, ds: Dataset, resources: ExitStack, stages: dict[str, float], engine: Any = None,
    item_head: Path | None = None, store: str = "memory",
) -> tuple[list[Predictor], InterestAgent | None, MemorySync | None]:
    """The models named in ``cfg`` (simplest first); the agent behind the memory/agent models and the sync
    that fills their store (``cfg.out / store``), if any. ``engine``: the agent's (``start_engine``).

    The store is registered on ``resources``, which closes it.
    """
    from eval._popularity import PopularityPredictor
    from eval._seqmodels import SEQUENTIAL_MODELS, build_sequential, pick_retrievers

    predictors: list[Predictor] = []
    if "pop" in cfg.models:
        predictors.append(PopularityPredictor())
    sequential = {name: build_sequential(name, ds, seed=cfg.seed, max_epochs=cfg.lstm_epochs)
                  for name in cfg.models if name in SEQUENTIAL_MODELS}
    predictors.extend(sequential.values())
    if "llm" in cfg.models:  # item_head_folder raised if there is none
        from eval._llm_alone import ItemHeadPredictor
        from eval._tune import tune_items

        predictors.append(ItemHeadPredictor(item_head, {i.item_id: i.title for i in tune_items(ds)}))
    if not any(m in cfg.models for m in MEMORY_MODELS):
        return predictors, None, None
    retrievers = pick_retrievers(sequential, cfg.retriever)
    from agent import AgentConfig, InterestAgent
    from eval._tide import (
        AgentPredictor,
        LSTMSource,
        MemoryPredictor,
        MemorySync,
        SequentialMix,
        catalog_from_dataset,
    )
    from memory import MemoryStore, SentenceTransformerEmbedder

    t = time.perf_counter()
    store_dir = cfg.out / store
    shutil.rmtree(store_dir, ignore_errors=True)  # a run's memory holds only what the run put there
    embedder = SentenceTransformerEmbedder.from_package()
    store = resources.enter_context(MemoryStore.open(store_dir, embedder=embedder))
    catalog = catalog_from_dataset(ds, embedder)
    stages["memory+catalog"] = time.perf_counter() - t
    source: Any = None
    retrieval: dict[str, float] = {}
    if len(retrievers) == 1 and retrievers[0][1] is None:  # one model, read at the default w_seq
        source = LSTMSource(retrievers[0][0])
    elif retrievers:  # several (eval.RETRIEVER_MIX), or weights named: the mix is read at their sum
        source = SequentialMix([(m, float(w)) for m, w in retrievers if w is not None])
        retrieval = {"w_seq": source.total}
    agent = InterestAgent(store, catalog, engine, AgentConfig(retrieval=retrieval), sequential=source)
    if item_head is not None:
        from agent import ItemHeadScorer
        from eval._branch import branch_from_manifest

        t = time.perf_counter()
        agent = agent.with_item_head(ItemHeadScorer(item_head, {it.item_id: it.title for it in catalog.items},
                                                    branch=branch_from_manifest(item_head)))
        stages["item-head load"] = time.perf_counter() - t
    sync = MemorySync(store, ds)
    memory = MemoryPredictor(agent, sync) if "memory" in cfg.models else None  # never reads the LLM (w_llm 0)
    if memory is not None:
        predictors.append(memory)
    if "memory+context" in cfg.models:  # the target's time and place; same as memory where no place is recorded
        predictors.append(MemoryPredictor(agent, sync, "memory+context", context=has_query_context(ds)))
    if "agent" in cfg.models:  # re-ranks the memory model's fitted and tuned candidate stage when it runs
        predictors.append(AgentPredictor(agent, sync, candidates=memory))
    return predictors, agent, sync


def has_query_context(ds: Dataset) -> bool:
    """Whether a dataset says where its interactions happened (coordinates), so a prediction has a context.

    MovieLens records only when a rating was entered, not where or when a film was watched: there
    ``memory+context`` answers without a query context and ranks exactly as ``memory``.
    """
    return any(e.lat is not None and e.lon is not None for seq in ds.sequences.values() for e in seq)
