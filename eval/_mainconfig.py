"""The main job's settings and result: :class:`MainConfig`, :class:`MainResult`, :class:`ShownUser`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eval._results import EvalResult

if TYPE_CHECKING:
    from agent import InterestPrediction, InterestSummary

__all__ = ["DEFAULT_ITEM_HEAD_CONFIG", "DEFAULT_MODELS", "MEMORY_MODELS", "MODELS", "SYNTHETIC_HABITS",
           "SYNTHETIC_HABITS_USERS", "MainConfig", "MainResult", "ModelName", "ShownUser"]

ModelName = Literal["pop", "lstm", "lstm+text", "lstm+llm", "sasrec", "sasrec+text", "sasrec+llm", "llm",
                    "memory", "memory+context", "agent"]
MODELS: tuple[ModelName, ...] = ("pop", "lstm", "lstm+text", "lstm+llm", "sasrec", "sasrec+text", "sasrec+llm",
                                 "llm", "memory", "memory+context", "agent")
#: models that read the memory store (and need the agent's candidate stage)
MEMORY_MODELS = ("memory", "memory+context", "agent")
#: ``--dataset`` value of the synthetic users with planted spatio-temporal habits (``make_synthetic(habits=True)``)
SYNTHETIC_HABITS = "synthetic-habits"
SYNTHETIC_HABITS_USERS = 500
DEFAULT_MODELS: tuple[ModelName, ...] = ("pop", "lstm+text", "sasrec", "memory", "agent")


#: the item-head settings the main job looks up (``item_head_config=None``): SASRec fitted on each split as
#: the head's sequence branch. Chosen by a rule written before the run (docs/RESULTS.md, 2026-12-06, noon): on
#: all 943 users' test-like validation the harness granted this head a ranking weight (+0.0065, p 0.039 /
#: Wilcoxon 0.015) where it granted the plain head none (+0.0055, p 0.23). Both heads are committed in models/.
DEFAULT_ITEM_HEAD_CONFIG: dict[str, Any] = {"branch": "sasrec"}


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
    item_head_config: dict[str, Any] | None = Field(
        None, description="settings of the item-head model that 'auto' looks up and 'tune' trains, on the real "
        "split and the test-like one alike (agent.ItemHeadConfig fields, e.g. {\"item_ids\": true}; another "
        "key; {\"branch\": \"sasrec\"}: SASRec fitted on each split as the head's sequence branch; {}: the "
        "plain head); None: DEFAULT_ITEM_HEAD_CONFIG")
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
            return self.split == "loo" and any(m in MEMORY_MODELS for m in self.models)
        return self.validation == "testlike"

    @field_validator("item_head_config")
    @classmethod
    def _item_head_config_is_valid(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from agent import ItemHeadConfig

            ItemHeadConfig(**value)  # a bad field or value fails here, before any work
        return value

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
        testlike_item_head: The one tuned on the test-like split that scored them while the weights were chosen
            (None: no test-like validation, or no item head).
    """

    config: MainConfig
    evaluation: EvalResult
    stage_seconds: dict[str, float]
    shown: ShownUser | None = None
    item_head: Path | None = None
    testlike_item_head: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """What ``main.json`` holds."""
        return {"config": json.loads(self.config.model_dump_json()), "stage_seconds": self.stage_seconds,
                "item_head": str(self.item_head) if self.item_head else None,
                "testlike_item_head": str(self.testlike_item_head) if self.testlike_item_head else None,
                "shown": self.shown.to_dict() if self.shown is not None else {}}
