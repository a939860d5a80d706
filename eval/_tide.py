"""Tide's own models in the harness: memory-only retrieval and the agent (memory + LLM).

Both read a real :class:`memory.MemoryStore`. The store is filled lazily from each request's history, so a
user's memory never holds anything at or after the target being predicted: validation requests (history =
train) are all answered before any test request adds the validation item, and a request whose history is
shorter than what memory already holds is refused (:class:`eval.EvalError`) rather than answered with a
leak.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from core import item_counts
from eval._data import Dataset, behavior_text, to_datetime
from eval._errors import EvalError
from eval._protocol import Ranking, RankRequest
from eval._split import Split

if TYPE_CHECKING:
    from agent import InterestAgent, ScoredUser
    from memory import MemoryStore

__all__ = ["AgentPredictor", "LSTMSource", "MemoryPredictor", "MemorySync", "SequentialMix", "behavior_from_row",
           "catalog_from_dataset", "dataset_behaviors"]


def behavior_from_row(r: dict[str, Any]) -> Any:
    """A behavior row (the ``tide ingest`` schema, see ``load_behaviors_file``) as a :class:`memory.Behavior`."""
    from memory import Behavior, Location

    loc = None
    if r.get("lat") is not None or r.get("lon") is not None or r.get("place"):
        loc = Location(lat=r.get("lat"), lon=r.get("lon"), place=r.get("place"))
    return Behavior(user_id=r["user_id"], item_id=r.get("item_id"), action=r.get("action") or "interaction",
                    text=r["text"], timestamp=r["timestamp"], location=loc, attributes=r.get("attributes") or {},
                    weight=r.get("weight") if r.get("weight") is not None else 1.0)


def dataset_behaviors(dataset: Dataset, user_id: str | None = None) -> list[Any]:
    """Every interaction of ``dataset`` (or of one user) as a :class:`memory.Behavior`."""
    return [behavior_from_row(r) for r in dataset.behavior_rows(user_id)]


def catalog_from_dataset(dataset: Dataset, embedder: Any, popularity: dict[str, int] | None = None) -> Any:
    """The agent's :class:`agent.Catalog` over the dataset's items, in ``dataset.item_ids`` order.

    Item text mirrors behavior text (``Watched "Title" (year; genres).``) so that profile vectors, which
    are averages of behavior embeddings, compare with item embeddings like with like.
    """
    from agent import Catalog, CatalogItem

    items = []
    for item in dataset.items.values():
        title = f"{item.title} ({item.year})" if item.year else item.title
        items.append(CatalogItem(item_id=item.item_id, title=title[:300], text=behavior_text(item, None),
                                 categories=tuple(item.genres)))
    pop = [float((popularity or {}).get(i.item_id, 0)) for i in items]
    return Catalog.from_items(items, embedder, popularity=pop)


class MemorySync:
    """Keeps the store equal to each request's history (adds what is missing; refuses to go back).

    A dataset's behavior texts repeat across users (ML-100k: one per movie and rating, about 8k texts for
    100k ratings), so each distinct text is embedded once per sync, not once per batch: the vectors are kept
    (``embedded`` counts the texts embedded) and handed to the store precomputed.
    """

    def __init__(self, store: MemoryStore, dataset: Dataset, progress: bool = True):
        self.store = store
        self.dataset = dataset
        self.progress = progress
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._vectors: dict[str, np.ndarray] = {}
        self.embedded = 0
        self.seconds = 0.0

    def sync(self, requests: Sequence[RankRequest]) -> None:
        import time

        from memory import Behavior

        t0 = time.perf_counter()
        batch: list[Behavior] = []
        pending: dict[str, int] = {}  # recorded as held only once the store has them
        with self._lock:
            for r in requests:
                held = pending.get(r.user_id, self._held.get(r.user_id, 0))
                if len(r.history) < held:
                    raise EvalError(f"memory of {r.user_id} holds {held} behaviors but the request's history has "
                                    f"{len(r.history)}: answering would leak the future")
                if len(r.history) == held:
                    continue
                events = self.dataset.sequences[r.user_id]
                if [e.item_id for e in events[: len(r.history)]] != list(r.history):
                    raise EvalError(f"request history of {r.user_id} is not a prefix of the dataset's sequence")
                batch.extend(dataset_behaviors(self.dataset, r.user_id)[held: len(r.history)])
                pending[r.user_id] = len(r.history)
            if batch:
                self.store.add(batch, embeddings=self._embeddings([b.text for b in batch]))
            self._held.update(pending)
        self.seconds += time.perf_counter() - t0

    def _embeddings(self, texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if new:
            embedder = self.store.embedder
            try:
                vectors = np.asarray(embedder.embed(new), dtype=np.float32)
            except Exception as exc:  # as the store says it: nothing was added, name the embedder
                raise EvalError(f"embedder {embedder.name!r} failed: {exc}") from exc
            self._vectors.update(zip(new, vectors, strict=True))
            self.embedded += len(new)
        return np.stack([self._vectors[t] for t in texts])


def _now(r: RankRequest) -> datetime:
    return to_datetime(int(r.now))


class LSTMSource:
    """The harness's LSTM as the agent's sequential retriever (LlamaRec ranks a sequential model's top-N)."""

    def __init__(self, lstm: Any):
        self.lstm = lstm

    @property
    def name(self) -> str:
        return str(getattr(self.lstm, "name", type(self.lstm).__name__))

    def score_histories(self, user_ids: Sequence[str], histories: Sequence[Sequence[str]],
                        nows: Sequence[datetime]) -> np.ndarray:
        reqs = [RankRequest(user_id=u, history=list(h), history_timestamps=[0] * len(h), now=0)
                for u, h in zip(user_ids, histories, strict=True)]
        return self.lstm.score_all(reqs)


class SequentialMix:
    """Several trained sequential models as one retrieval source: each model's scores min-max normalised over
    the catalogue (as ``agent.Retriever`` does each source), weighted, divided by the weights' sum (so the
    mix lies in [0, 1]; read it at ``RetrievalConfig.w_seq`` = that sum, ``eval.RETRIEVER_MIX``).

    The Retriever normalises the mix once more, which stretches it to the full [0, 1] when no item tops
    (or bottoms) every model at once.
    """

    def __init__(self, models: Sequence[tuple[Any, float]]):
        if not models or any(w < 0 for _, w in models) or sum(w for _, w in models) <= 0:
            raise EvalError("a sequential mix needs at least one model and weights >= 0 with a positive sum")
        self.sources = [(LSTMSource(m), float(w)) for m, w in models]
        self.total = sum(w for _, w in self.sources)

    @property
    def name(self) -> str:
        """``"lstm+text:6,sasrec:3"``: the models and their weights (as ``--retriever`` takes them)."""
        return ",".join(f"{s.name}:{w:g}" for s, w in self.sources)

    def score_histories(self, user_ids: Sequence[str], histories: Sequence[Sequence[str]],
                        nows: Sequence[datetime]) -> np.ndarray:
        from agent import minmax_rows

        out = None
        for source, w in self.sources:
            if w == 0:
                continue
            part = (w / self.total) * minmax_rows(source.score_histories(user_ids, histories, nows))
            out = part if out is None else out + part
        return out


class MemoryPredictor:
    """Tide's candidate stage without the LLM: memory profile + collaborative transitions (+ a sequential
    model when given), over the whole catalogue.

    ``agent`` is this predictor's current agent: fitting and tuning replace it with a derived one
    (``with_sources``, ``with_config``); the store's query settings are tuned in the shared store.

    With ``context=True`` each request is answered for its target's moment and, when the dataset's
    interactions carry coordinates, place (``memory.QueryContext``); the context weights join the grid
    (``context_grid``, all-zero weights included, which is the context-blind ranking).

    The store's query settings this predictor was tuned to are its own: they are applied again before each
    ranking, so two memory predictors sharing one store (``memory`` and ``memory+context``) do not rank with
    each other's half-lives or context weights.
    """

    #: whether this predictor's candidate stage may read the agent's item head (``w_llm``); the memory-only
    #: baselines never do
    reads_llm = False

    def __init__(self, agent: InterestAgent, sync: MemorySync, name: str = "memory", *, context: bool = False,
                 context_grid: Sequence[Any] | None = None):
        self.name = name
        self.agent = agent if self.reads_llm else agent.with_config(retrieval={"w_llm": 0.0})
        self.sync = sync
        self.context = context
        self._store_params: dict[str, Any] = {}
        # short-horizon half-life in days (10 min .. 30 days): MovieLens users rate in sessions of minutes,
        # other data moves over weeks; validation picks
        self.tunable: dict[str, list[Any]] = {"w_co": [0.0, 1.0, 2.0, 4.0],
                                              "short_half_life_days": [1 / 144, 1 / 24, 1.0, 7.0, 30.0]}
        if context:
            from memory import ContextWeights

            self.tunable["context"] = list(context_grid or [
                ContextWeights(hour=h, weekday=d, place=p) for h in (0.0, 2.0) for d in (0.0, 1.0) for p in (0.0, 2.0)])

    @property
    def current_agent(self) -> InterestAgent:
        """The agent as fitted and tuned so far: what this predictor ranks with."""
        return self.agent

    @property
    def config(self) -> dict[str, Any]:
        agent = self.current_agent
        return {"agent": agent.config.model_dump(), "memory": agent.store.config.model_dump(mode="json"),
                "sequential": getattr(agent.sequential, "name", type(agent.sequential).__name__)
                if agent.sequential else None}

    def set_params(self, **params: Any) -> None:
        from memory import MemoryStore

        mem = {k: params.pop(k) for k in list(params) if k in MemoryStore.QUERY_SETTINGS}
        if mem:  # decay half-lives and scoring weights live in the store (the agent shares it)
            self.agent.store.reconfigure(**mem)
            self._store_params.update(mem)
        if params:
            self.agent = self.agent.with_config(retrieval=params)

    def fit(self, split: Split) -> None:
        from agent import TransitionIndex

        self.agent = self.agent.with_sources(transitions=TransitionIndex.fit(split.train, self.agent.catalog.index))
        self.agent.catalog.popularity = item_counts(split.train.values(), self.agent.catalog.index)

    def apply_store_params(self) -> None:
        """Put this predictor's tuned store settings back on the (possibly shared) store."""
        if self._store_params:
            self.agent.store.reconfigure(**self._store_params)

    def _score(self, agent: InterestAgent, requests: Sequence[RankRequest]) -> list[ScoredUser]:
        self.sync.sync(requests)
        self.apply_store_params()
        return agent.score_candidates([r.user_id for r in requests], [_now(r) for r in requests],
                                      histories=[list(r.history) for r in requests],
                                      excludes=[list(r.exclude) for r in requests],
                                      queries=[self._query(r) for r in requests] if self.context else None)

    def _query(self, r: RankRequest) -> Any:
        """The request's context: the target's time (``now``) and, when known, its coordinates."""
        from memory import Location, QueryContext

        events = self.sync.dataset.sequences[r.user_id]
        target = events[len(r.history)] if len(r.history) < len(events) else None
        if target is None or target.lat is None or target.lon is None:
            return QueryContext()
        return QueryContext(place=Location(lat=target.lat, lon=target.lon))

    def rank(self, requests: Sequence[RankRequest], k: int) -> list[Ranking]:
        out = []
        for s in self._score(self.agent, requests):
            order = s.top(k)
            interests = [a.name for a in s.context.profile.short.top_attributes[:3]]
            out.append(Ranking([self.agent.catalog.items[i].item_id for i in order],
                               [float(s.retrieval[i]) for i in order], {"interests": interests, "valid": True}))
        return out


class AgentPredictor(MemoryPredictor):
    """The agent: the candidate stage, then the LLM's choice probabilities fused with retrieval scores,
    and constrained interests. LLM outputs are cached per (user, time, candidates), so tuning the fusion
    weight on validation costs one LLM pass per candidate set. With an item-head model the grid also holds
    its weight in the candidate stage (``w_llm``; the model caches its scores per history, so that costs one
    forward pass per user); ``llm_seconds`` counts the choice and the interests, not that pass.

    With ``candidates`` (a :class:`MemoryPredictor` evaluated before this one), the agent re-ranks that
    predictor's fitted and tuned candidate stage; otherwise it fits its own with default weights.
    """

    reads_llm = True

    def __init__(self, agent: InterestAgent, sync: MemorySync, name: str = "agent", *,
                 candidates: MemoryPredictor | None = None):
        super().__init__(agent, sync, name)
        self.candidates = candidates
        self.tunable: dict[str, list[Any]] = {"fusion_weight": [0.0, 0.1, 0.25, 0.5, 0.75, 1.0],
                                              "calibrate": [False, True]}
        #: the LLM's choice must earn its weight: without a significant validation win the ranking is the
        #: candidate stage's own (and test users get no choice prompt: its answer would weigh nothing)
        self.tune_reference: dict[str, Any] = {"fusion_weight": 0.0, "calibrate": False}
        if agent.item_head is not None:
            # the tuned item head scores the whole catalogue too (the candidate stage's ``w_llm``: the LLM can
            # bring in items the memory misses) and needs no calibration
            self.tunable = {"w_llm": [0.0, 0.5, 1.0, 2.0, 4.0, 8.0], "fusion_weight": [0.0, 0.25, 0.5, 0.75, 1.0]}
            self.tune_reference = {"w_llm": 0.0, "fusion_weight": 0.0}
        self._params: dict[str, Any] = {}  # the LLM stage's settings, applied over the candidate stage's agent
        self._cache: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        self.llm_seconds = 0.0
        #: validation choice prompts not sent because the target is not among the candidates
        self.skipped_prompts = 0
        #: test users whose choice prompt was not sent because the fusion weight is 0
        self.skipped_choice = 0
        self._moot: set[tuple[Any, ...]] = set()
        self._stage = "test"
        self._val_targets: dict[str, str] = {}

    def set_stage(self, stage: str, targets: Mapping[str, str] | None = None) -> None:
        """Called by the runner. Validation tuning reads only rankings, so interests are not generated; and
        the LLM re-orders only the candidates (they stay the top of the ranking under every fusion weight
        and calibration), so a validation user whose target is not among them gets no choice prompt: the
        target's rank is the same whatever the LLM would say (about two thirds of the users at recall@20
        0.35)."""
        self._stage = stage
        self._val_targets = dict(targets or {}) if stage == "val" else {}

    def set_params(self, **params: Any) -> None:
        params = {**self._params, **params}
        self._derived(params)  # invalid settings fail here, not at rank time
        self._params = params

    def _derived(self, params: Mapping[str, Any]) -> InterestAgent:
        base = self.candidates.agent if self.candidates is not None else self.agent
        if not params:
            return base
        updates = {k: v for k, v in params.items() if k != "w_llm"}
        if "w_llm" in params:  # a candidate-stage weight, over the candidate stage's tuned ones
            updates["retrieval"] = {"w_llm": params["w_llm"]}
        return base.with_config(**updates)

    @property
    def current_agent(self) -> InterestAgent:
        """The candidate stage's agent (``candidates``' when given) with this predictor's LLM settings."""
        return self._derived(self._params)

    def apply_store_params(self) -> None:
        """The candidate stage's store settings (``candidates``' when given)."""
        if self.candidates is not None:
            self.candidates.apply_store_params()
        else:
            super().apply_store_params()

    def fit(self, split: Split) -> None:
        if self.candidates is None:
            super().fit(split)

    def rank(self, requests: Sequence[RankRequest], k: int) -> list[Ranking]:
        import time

        from agent import StructuredOutputError

        agent = self.current_agent
        scored = self._score(agent, requests)
        # the choice is asked on validation (every grid point reads it) and at test when it weighs anything
        choice = self._stage == "val" or agent.config.fusion_weight > 0
        # the candidates are part of the key: the item head's weight in the candidate stage changes them
        keys = [(r.user_id, int(r.now), len(r.history), agent.config.choice_orders if choice else 0,
                 tuple(s.candidates)) for r, s in zip(requests, scored, strict=True)]
        index = agent.catalog.index
        moot = {i for i, (r, s) in enumerate(zip(requests, scored, strict=True))
                if r.user_id in self._val_targets
                and index.get(self._val_targets[r.user_id], -1) not in set(s.candidates)}
        for i in moot:  # nothing to ask: the target's rank does not depend on the LLM's answer
            if keys[i] not in self._moot:
                self._moot.add(keys[i])
                self.skipped_prompts += 1
        todo = [i for i, key in enumerate(keys) if key not in self._cache and i not in moot]
        if todo:
            t0 = time.perf_counter()
            if choice:
                probs = agent.choice_probs([scored[i] for i in todo])
            else:  # weight 0: the ranking is the candidate stage's whatever the LLM would choose
                probs = [None] * len(todo)
                self.skipped_choice += len(todo)
            want = agent.config.interests and self._stage != "val" and not agent.interests_from_item_head
            interests = agent.llm_interests([scored[i] for i in todo]) if want else [None] * len(todo)
            self.llm_seconds += time.perf_counter() - t0
            for i, p, it in zip(todo, probs, interests, strict=True):
                self._cache[keys[i]] = (p, it)
        out = []
        for i, (s, key) in enumerate(zip(scored, keys, strict=True)):
            p, it = (None, None) if i in moot else self._cache[key]
            ranked = agent.fuse(s, p, k)
            valid = not isinstance(it, StructuredOutputError)
            if agent.interests_from_item_head and agent.config.interests:
                labels = [x.label for x in agent.item_head_interests(s.context)]
            elif it is not None and valid:  # what the agent's predict states: grounded, at most max_interests
                labels = [x.label for x in agent.grounded_interests(s.context, it.value)[0]]
            else:
                labels = [x.label for x in agent.interests_from_profile(s.context)]
            info = {"interests": labels, "valid": valid,
                    "candidates": [agent.catalog.items[i].item_id for i in s.candidates],
                    "attempts": getattr(it, "attempts", 0), "cold_start": s.context.cold,
                    "llm_choice": p is not None}
            out.append(Ranking([x.item_id for x in ranked], [x.score for x in ranked], info))
        return out
