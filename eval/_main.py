"""The main job: MovieLens-100k into a memory store, four models evaluated, one user shown.

``tide eval`` calls :func:`run_main`. Stages are timed and written with the results.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from eval._data import Dataset, load_ml100k
from eval._interests import interest_shares
from eval._plots import plot_interest_timeline
from eval._report import print_table
from eval._runner import EvalResult, run_evaluation
from eval._split import Split, leave_one_out, temporal_split
from eval.errors import EvalError

__all__ = ["MODELS", "MainConfig", "run_main"]

MODELS = ("pop", "lstm", "memory", "agent")


class MainConfig(BaseModel):
    """Settings of a ``tide eval`` run."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = "ml-100k"
    models: list[Literal["pop", "lstm", "memory", "agent"]] = Field(default_factory=lambda: list(MODELS))
    split: Literal["loo", "temporal"] = "loo"
    users: int | Literal["all"] = 200
    seed: int = 0
    out: Path = Path("runs/main")
    engine_url: str | None = None
    show_user: str | None = "auto"
    lstm_epochs: int | None = None
    n_bootstrap: int = 1000
    temporal_cut: float = Field(default=0.9, gt=0, lt=1, description="quantile of timestamps for the cut")


def _load(name: str) -> Dataset:
    if name == "ml-100k":
        return load_ml100k()
    path = Path(name)
    if path.is_dir():
        return load_ml100k(path)
    raise EvalError(f"unknown dataset {name!r}: use ml-100k or a path to an ml-100k folder")


def _split(ds: Dataset, cfg: MainConfig) -> Split:
    if cfg.split == "loo":
        return leave_one_out(ds)
    return temporal_split(ds, quantile=cfg.temporal_cut)


def run_main(cfg: MainConfig, console: Any = None) -> tuple[EvalResult, dict[str, Any]]:
    """Run the evaluation and (optionally) show one user's prediction and summary."""
    from rich.console import Console

    from eval._lstm import LSTMConfig, LSTMPredictor
    from eval._popularity import PopularityPredictor

    console = console or Console()
    stages: dict[str, float] = {}
    t = time.perf_counter()
    ds = _load(cfg.dataset)
    split = _split(ds, cfg)
    stages["load+split"] = time.perf_counter() - t
    cfg.out.mkdir(parents=True, exist_ok=True)

    predictors: list[Any] = []
    lstm = None
    if "pop" in cfg.models:
        predictors.append(PopularityPredictor())
    if "lstm" in cfg.models:
        lcfg = LSTMConfig(seed=cfg.seed, **({"max_epochs": cfg.lstm_epochs} if cfg.lstm_epochs else {}))
        lstm = LSTMPredictor(lcfg)
        predictors.append(lstm)
    agent = sync = None
    if "memory" in cfg.models or "agent" in cfg.models:
        from agent import AgentConfig, InterestAgent
        from eval._tide import AgentPredictor, LSTMSource, MemoryPredictor, MemorySync, catalog_from_dataset
        from memory import MemoryStore, SentenceTransformerEmbedder

        t = time.perf_counter()
        store_dir = cfg.out / "memory"
        shutil.rmtree(store_dir, ignore_errors=True)  # a run's memory holds only what the run put there
        embedder = SentenceTransformerEmbedder.from_package()
        store = MemoryStore.open(store_dir, embedder=embedder)
        catalog = catalog_from_dataset(ds, embedder)
        stages["memory+catalog"] = time.perf_counter() - t
        engine = None
        if "agent" in cfg.models:
            t = time.perf_counter()
            if cfg.engine_url:
                from agent import OpenAIEngine

                engine = OpenAIEngine.from_url(cfg.engine_url)
            else:
                from agent import VLLMEngine

                engine = VLLMEngine.from_defaults(seed=cfg.seed)
            stages["engine start"] = time.perf_counter() - t
        agent = InterestAgent(store, catalog, engine, AgentConfig(),
                              sequential=LSTMSource(lstm) if lstm is not None else None)
        sync = MemorySync(store, ds)
        if "memory" in cfg.models:
            predictors.append(MemoryPredictor(agent, sync))
        if "agent" in cfg.models:
            predictors.append(AgentPredictor(agent, sync))

    t = time.perf_counter()
    result = run_evaluation(ds, predictors, split, users=cfg.users, seed=cfg.seed, out_dir=cfg.out,
                            n_bootstrap=cfg.n_bootstrap)  # each model vs every simpler one listed before it
    stages["evaluate"] = time.perf_counter() - t
    if sync is not None:
        stages["memory ingest (inside evaluate)"] = sync.seconds
    for p in predictors:
        if hasattr(p, "llm_seconds"):
            stages["agent LLM (inside evaluate)"] = p.llm_seconds
    print_table(result.summary, console=console)
    shown: dict[str, Any] = {}
    if cfg.show_user and agent is not None:
        t = time.perf_counter()
        user = result.users[0] if cfg.show_user == "auto" else cfg.show_user
        if user not in split.test:
            raise EvalError(f"user {user!r} is not a test user of this split")
        target = split.test[user]
        from eval._data import to_datetime

        now = to_datetime(int(target.timestamp))
        shown["user"] = user
        shown["target"] = {"item_id": target.item_id, "title": ds.items[target.item_id].title,
                           "genres": list(ds.items[target.item_id].genres)}
        if agent.engine is not None:
            pred = agent.predict(user, now=now, k=10)
            summary = agent.summarize(user, now=now)
            shown["prediction"] = json.loads(pred.model_dump_json())
            shown["summary"] = json.loads(summary.model_dump_json())
            console.rule(f"user {user}: prediction as of {now:%Y-%m-%d %H:%M} UTC")
            console.print("interests: " + "; ".join(f"{i.label} ({i.confidence}, {i.horizon})"
                                                    for i in pred.interests))
            for n, it in enumerate(pred.next_items[:10], 1):
                mark = "  <- next" if it.item_id == target.item_id else ""
                console.print(f"{n:2d}. {it.title}  score {it.score:.3f}{mark}")
            console.print(f"actual next: {shown['target']['title']} ({', '.join(shown['target']['genres'])})")
            console.rule("summary (" + summary.generated_by + ")")
            console.print(summary.text)
        shares = interest_shares(ds, user, until=int(target.timestamp))
        plot_interest_timeline(shares.times, shares.short, shares.long, cfg.out / f"user_{user}_interests.png",
                               title=f"user {user}: short- vs long-term interests", now=now)
        stages["show user"] = time.perf_counter() - t
    (cfg.out / "main.json").write_text(json.dumps({"config": json.loads(cfg.model_dump_json()),
                                                   "stage_seconds": stages, "shown": shown}, indent=2,
                                                  default=str))
    console.rule("stage times (s)")
    console.print("  ".join(f"{k}: {v:.1f}" for k, v in stages.items()))
    if agent is not None:
        agent.store.close()
        agent.close()
    return result, {"stages": stages, "shown": shown}
