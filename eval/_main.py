"""The main job: MovieLens-100k into a memory store, four models evaluated, one user shown.

``tide eval`` calls :func:`run_main`, which returns a :class:`MainResult` and prints nothing; the CLI prints
:func:`format_main` of it. Stages are timed and written with the results (``main.json``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eval._data import Dataset, load_ml100k, to_datetime
from eval._errors import EvalError
from eval._interests import interest_shares
from eval._plots import plot_interest_timeline
from eval._protocol import LLMTimed, Predictor
from eval._report import format_paired, format_table
from eval._results import EvalResult, TuningResult
from eval._runner import run_evaluation, sample_users
from eval._search import tune_predictors, tuning_users
from eval._split import Split, leave_one_out, temporal_split, without_last

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from agent import InterestAgent, InterestPrediction, InterestSummary
    from eval._tide import MemorySync

__all__ = ["MODELS", "MainConfig", "MainResult", "ShownUser", "format_main", "run_main"]

ModelName = Literal["pop", "lstm", "lstm+text", "lstm+llm", "sasrec", "sasrec+text", "sasrec+llm", "llm",
                    "memory", "memory+context", "agent"]
MODELS: tuple[ModelName, ...] = ("pop", "lstm", "lstm+text", "lstm+llm", "sasrec", "sasrec+text", "sasrec+llm",
                                 "llm", "memory", "memory+context", "agent")
#: models that read the memory store (and need the agent's candidate stage)
_MEMORY_MODELS = ("memory", "memory+context", "agent")
#: ``--dataset`` value of the synthetic users with planted spatio-temporal habits (``make_synthetic(habits=True)``)
SYNTHETIC_HABITS = "synthetic-habits"
SYNTHETIC_HABITS_USERS = 500
DEFAULT_MODELS: tuple[ModelName, ...] = ("pop", "lstm+text", "sasrec", "memory", "agent")


class MainConfig(BaseModel):
    """Settings of a ``tide eval`` run."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = "ml-100k"
    models: list[ModelName] = Field(default_factory=lambda: list(DEFAULT_MODELS))
    split: Literal["loo", "temporal"] = "loo"
    users: int | Literal["all"] = 200
    seed: int = 0
    out: Path = Path("runs/main")
    engine_url: str | None = None
    show_user: str | None = Field("auto", description="a test user's id, 'auto' (the first evaluated user), "
                                                      "or None / 'none' to show no user")
    lstm_epochs: int | None = Field(None, description="cap on every sequential model's epochs (lstm, sasrec, ...)")
    retriever: str | None = Field("auto", description="sequential models feeding the agent's candidate stage: "
                                  "'auto' (eval.RETRIEVER_MIX when the run trains its models, else the first "
                                  "of eval.RETRIEVER_PREFERENCE), a trained model's name, 'name:weight,...', "
                                  "or None")
    n_bootstrap: int = 1000
    #: see ``EvalConfig.tune_alpha``
    tune_alpha: float = Field(0.05, gt=0.0, le=1.0)
    #: see ``EvalConfig.tune_users``
    tune_users: int | None = Field(None, ge=1)
    llm_model: str | None = Field(None, description="the agent's engine serves this model folder (e.g. one from "
                                  "'tide model tune'); 'tuned' tunes the embedded model on this split's "
                                  "training sequences first (fit stage; cached by key); None: the embedded model")
    item_head: str | None = Field("auto", description="the tuned item-head model that scores the agent's "
                                  "candidates ('tide model tune --kind item-head'): 'auto' (the one tuned on "
                                  "this split's training sequences, when cached or committed under models/; "
                                  "else the engine's letter choice), 'tune' (train it here if missing), a "
                                  "folder, or None (the engine's letter choice)")
    temporal_cut: float = Field(default=0.9, gt=0, lt=1, description="quantile of timestamps for the cut")
    validation: Literal["auto", "plain", "testlike"] = Field(
        "auto", description="where settings are chosen: 'plain' (the split's validation targets, predicted by "
        "the models fitted for the test), 'testlike' (the same targets, predicted by models fitted without "
        "each user's last training item, as the test targets are: eval.without_last; leave-one-out only), or "
        "'auto' (testlike on a leave-one-out split when a model with settings runs: memory, memory+context, "
        "agent; else plain)")

    @property
    def testlike(self) -> bool:
        """Whether settings are chosen on the test-like validation."""
        if self.validation == "auto":
            return self.split == "loo" and any(m in _MEMORY_MODELS for m in self.models)
        return self.validation == "testlike"

    @field_validator("show_user")
    @classmethod
    def _none_shows_nobody(cls, value: str | None) -> str | None:
        return None if value is None or value.strip().lower() in ("", "none") else value


@dataclass(slots=True)
class ShownUser:
    """One test user's prediction and summary as of their test target (the agent's, when it ran).

    Attributes:
        user: The user.
        as_of: The time of the target event; nothing at or after it was in memory.
        target: The item that came next: ``item_id``, ``title``, ``genres``.
        prediction: The agent's prediction, when the agent (with an engine) was evaluated.
        summary: The agent's summary, likewise.
        plot: The short- vs long-term interest timeline written for this user.
    """

    user: str
    as_of: datetime
    target: dict[str, Any]
    prediction: InterestPrediction | None = None
    summary: InterestSummary | None = None
    plot: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``shown`` object of ``main.json``."""
        out: dict[str, Any] = {"user": self.user, "target": self.target}
        if self.prediction is not None:
            out["prediction"] = json.loads(self.prediction.model_dump_json())
        if self.summary is not None:
            out["summary"] = json.loads(self.summary.model_dump_json())
        return out


@dataclass(slots=True)
class MainResult:
    """What :func:`run_main` produced.

    Attributes:
        config: The run's settings.
        evaluation: The runner's result (typed summary, per-user values, rankings).
        stage_seconds: Wall seconds of each stage of the job.
        shown: The user shown, if any.
        item_head: The item-head model folder that scored the agent's candidates (None: the letter choice).
    """

    config: MainConfig
    evaluation: EvalResult
    stage_seconds: dict[str, float]
    shown: ShownUser | None = None
    item_head: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """What ``main.json`` holds."""
        return {"config": json.loads(self.config.model_dump_json()), "stage_seconds": self.stage_seconds,
                "item_head": str(self.item_head) if self.item_head else None,
                "shown": self.shown.to_dict() if self.shown is not None else {}}


def _load(name: str, seed: int = 0) -> Dataset:
    if name == "ml-100k":
        return load_ml100k()
    if name == SYNTHETIC_HABITS:  # the data ``scripts/context_eval.py`` measures context on; seeded by ``seed``
        from eval._synthetic import make_synthetic

        return make_synthetic(n_users=SYNTHETIC_HABITS_USERS, seed=seed, habits=True)[0]
    path = Path(name)
    if path.is_dir():
        return load_ml100k(path)
    raise EvalError(f"unknown dataset {name!r}: use ml-100k, {SYNTHETIC_HABITS} or a path to an ml-100k folder")


def _split(ds: Dataset, cfg: MainConfig) -> Split:
    if cfg.split == "loo":
        return leave_one_out(ds)
    return temporal_split(ds, quantile=cfg.temporal_cut)


def run_main(cfg: MainConfig) -> MainResult:
    """Run the evaluation and (with the memory or agent model) show one user's prediction and summary.

    Writes the runner's files and ``main.json`` into ``cfg.out``; prints nothing (progress bars go to
    stderr). The memory store and the engine are closed on every path.

    Raises:
        EvalError: An unknown dataset, or ``show_user`` is not a test user of the split (checked before
            any model is fitted).
    """
    stages: dict[str, float] = {}
    t = time.perf_counter()
    ds = _load(cfg.dataset, cfg.seed)
    split = _split(ds, cfg)
    stages["load+split"] = time.perf_counter() - t
    if cfg.show_user not in (None, "auto") and cfg.show_user not in split.test:
        raise EvalError(f"user {cfg.show_user!r} is not a test user of this split")
    if cfg.testlike and cfg.split != "loo":
        raise EvalError("test-like validation (eval.without_last) needs the leave-one-out split")
    cfg.out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as resources:
        llm_model = _llm_model(cfg, split, stages)
        item_head = _item_head(cfg, split, stages)
        engine = _engine(cfg, resources, stages, llm_model)
        preset = _testlike_tuning(cfg, ds, split, engine, item_head, stages) if cfg.testlike else None
        predictors, agent, sync = _predictors(cfg, ds, resources, stages, engine, item_head)
        t = time.perf_counter()
        # each model is compared with every simpler one listed before it
        result = run_evaluation(ds, predictors, split, users=cfg.users, seed=cfg.seed, out_dir=cfg.out,
                                n_bootstrap=cfg.n_bootstrap, tune_alpha=cfg.tune_alpha, tune_users=cfg.tune_users,
                                preset=preset)
        stages["evaluate"] = time.perf_counter() - t
        if sync is not None:
            stages["memory ingest (inside evaluate)"] = sync.seconds
        for p in predictors:
            if isinstance(p, LLMTimed):
                stages["agent LLM (inside evaluate)"] = p.llm_seconds
        shown = None
        if cfg.show_user and agent is not None:
            from eval._tide import MemoryPredictor

            t = time.perf_counter()
            # the agent as the evaluation fitted and tuned it (the last of the memory/agent models)
            agent = [p for p in predictors if isinstance(p, MemoryPredictor)][-1].current_agent
            shown = _show(agent, ds, split, result.users[0] if cfg.show_user == "auto" else cfg.show_user, cfg)
            stages["show user"] = time.perf_counter() - t
    main = MainResult(cfg, result, stages, shown, item_head)
    (cfg.out / "main.json").write_text(json.dumps(main.to_dict(), indent=2, default=str))
    return main


def _llm_model(cfg: MainConfig, split: Split, stages: dict[str, float]) -> Path | None:
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


def _item_head(cfg: MainConfig, split: Split, stages: dict[str, float]) -> Path | None:
    """The item-head model folder for the agent (None: the engine's letter choice scores the candidates) and
    for the ``llm`` model (which needs one)."""
    if "llm" in cfg.models and cfg.item_head is None:
        raise EvalError("the llm model is the item-head model alone: it needs --item-head auto, tune or a folder")
    if cfg.item_head is None or not {"agent", "llm"} & set(cfg.models):
        return None
    if cfg.item_head not in ("auto", "tune"):
        path = Path(cfg.item_head).expanduser()
        if not path.is_dir():
            raise EvalError(f"item_head {cfg.item_head!r} is not a model folder")
        return path
    from agent import ModelPreparationError, TuneDataError
    from eval._tune import item_head_on_split

    t = time.perf_counter()
    try:
        path = item_head_on_split(split, train=cfg.item_head == "tune")
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


def _engine(cfg: MainConfig, resources: ExitStack, stages: dict[str, float], llm_model: Path | None) -> Any:
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


def _testlike_tuning(cfg: MainConfig, ds: Dataset, split: Split, engine: Any, item_head: Path | None,
                     stages: dict[str, float]) -> dict[str, TuningResult]:
    """Choose every model's settings on test-like validation: the models fitted on
    ``leave_one_out(without_last(ds))`` (the agent with the item head tuned there), grid-searched on that
    split's test targets, which are the real validation items of the users plain validation would read."""
    t = time.perf_counter()
    tsplit = leave_one_out(without_last(ds))
    users = [u for u in tuning_users(split, sample_users(split, cfg.users, cfg.seed), cfg.tune_users, cfg.seed)
             if u in tsplit.test]
    wrong = [u for u in users if tsplit.test[u] != split.val[u]]
    if wrong:  # cannot happen for leave-one-out; a guard that the targets are the validation items
        raise EvalError(f"test-like targets differ from the validation targets for {wrong[:3]}")
    sub: dict[str, float] = {}
    head = _item_head(cfg, tsplit, sub)
    if (head is None) != (item_head is None):
        raise EvalError("test-like validation needs an item-head model tuned on the test-like split as well as "
                        "the real one ('python scripts/item_head.py train --testlike', or '--item-head tune'), "
                        "or none (--item-head none)")
    with ExitStack() as scratch:  # the tuning models and their store go once the settings are chosen
        scratch.callback(shutil.rmtree, cfg.out / "memory-testlike", ignore_errors=True)  # after the store closes
        predictors, _, _ = _predictors(cfg, ds, scratch, sub, engine, head, store="memory-testlike")
        preset = tune_predictors(predictors, tsplit, users, stage="test", on="test-like validation", seed=cfg.seed,
                                 n_bootstrap=cfg.n_bootstrap, tune_alpha=cfg.tune_alpha)
    stages.update({f"test-like {k}": v for k, v in sub.items()})
    stages["test-like tuning (fit + grid search, all)"] = time.perf_counter() - t
    return preset


def _predictors(
    cfg: MainConfig, ds: Dataset, resources: ExitStack, stages: dict[str, float], engine: Any = None,
    item_head: Path | None = None, store: str = "memory",
) -> tuple[list[Predictor], InterestAgent | None, MemorySync | None]:
    """The models named in ``cfg`` (simplest first); the agent behind the memory/agent models and the sync
    that fills their store (``cfg.out / store``), if any. ``engine``: the agent's (``_engine``).

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
    if "llm" in cfg.models:  # _item_head raised if there is none
        from eval._llm_alone import ItemHeadPredictor
        from eval._tune import tune_items

        predictors.append(ItemHeadPredictor(item_head, {i.item_id: i.title for i in tune_items(ds)}))
    if not any(m in cfg.models for m in _MEMORY_MODELS):
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

        t = time.perf_counter()
        agent = agent.with_item_head(ItemHeadScorer(item_head, {it.item_id: it.title for it in catalog.items}))
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


def _show(agent: InterestAgent, ds: Dataset, split: Split, user: str, cfg: MainConfig) -> ShownUser:
    """The agent's prediction and summary for ``user`` as of their test target, and their interest plot."""
    target = split.test[user]
    now = to_datetime(int(target.timestamp))
    item = ds.items[target.item_id]
    shown = ShownUser(user=user, as_of=now,
                      target={"item_id": target.item_id, "title": item.title, "genres": list(item.genres)})
    if agent.engine is not None:
        shown.prediction = agent.predict(user, now=now, k=10)
        shown.summary = agent.summarize(user, now=now)
    # the short-term panel is the memory's own short horizon, the profile interests and summary rest on
    half_life = agent.store.config.short_half_life_days
    shares = interest_shares(ds, user, until=int(target.timestamp), short_half_life_days=half_life)
    shown.plot = plot_interest_timeline(shares.times, shares.short, shares.long, cfg.out / f"user_{user}_interests.png",
                                        title=f"user {user}: short- vs long-term interests", now=now,
                                        short_label=f"short-term (the memory's profile, half-life {half_life:g} d)")
    return shown


def _rule(title: str, width: int = 100) -> str:
    return f"── {title} ".ljust(width, "─")


def format_main(result: MainResult) -> str:
    """The main job as text: the metrics table (mean ± CI half-width), the shown user, the stage times."""
    lines = [format_table(result.evaluation.summary, ci=True)]
    if "agent" in result.config.models:
        lines.append("agent's candidates scored by: " + (f"the item-head model {result.item_head.name}"
                                                       if result.item_head else "the engine's letter choice"))
        paired = format_paired(result.evaluation.summary, "agent")
        if paired:
            lines += [_rule("the agent against each baseline (paired, same users)"), paired]
    shown = result.shown
    if shown is not None and shown.prediction is not None:
        pred = shown.prediction
        lines += ["", _rule(f"user {shown.user}: prediction as of {shown.as_of:%Y-%m-%d %H:%M} UTC"),
                  "interests: " + "; ".join(f"{i.label} ({i.confidence}, {i.horizon})" for i in pred.interests)]
        for n, it in enumerate(pred.next_items[:10], 1):
            mark = "  <- next" if it.item_id == shown.target["item_id"] else ""
            lines.append(f"{n:2d}. {it.title}  score {it.score:.3f}{mark}")
        lines.append(f"actual next: {shown.target['title']} ({', '.join(shown.target['genres'])})")
    if shown is not None and shown.summary is not None:
        lines += [_rule(f"summary ({shown.summary.generated_by})"), shown.summary.text]
    lines += ["", _rule("stage times (s)"), "  ".join(f"{k}: {v:.1f}" for k, v in result.stage_seconds.items())]
    return "\n".join(lines)
