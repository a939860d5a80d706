"""What the server holds: the store (one process owns it), the agent, the keys, the batcher, the metrics.

Every store call runs in ONE worker thread, in arrival order: the store is single-process, and a write is
acknowledged only after ``MemoryStore.add`` has committed. A prediction batch is split: its memory half
(``InterestAgent.prepare``: the users' memories, the catalogue scores) runs in the store thread, its engine
half (``InterestAgent.complete``) in a second, engine thread — so reads and writes are not queued behind
an LLM batch that takes a minute on a CPU. Summaries are split the same way (``InterestAgent.contexts`` /
``summarize_contexts``); chat runs in the store thread and holds the engine lock while it generates (the
engine is not re-entrant). The engine starts in its own thread so writes
are served while it warms up; ``ready`` turns true once it has answered a probe.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agent import GenerationRequest, InterestAgent, TideError
from memory import Embedder, MemoryStore, StoredBehavior

from ._batcher import PredictBatcher, PredictJob
from ._errors import ServiceError
from ._keys import ApiKey, KeyStore
from ._metrics import Metrics
from ._timeline import timeline

__all__ = ["AgentFactory", "Forbidden", "NotReady", "NotSupported", "Runtime", "RowsRejected", "ServiceConfig", "UnknownUser"]

log = logging.getLogger("tide.service")
T = TypeVar("T")
AgentFactory = Callable[[MemoryStore], InterestAgent]
# bounded reads for the page: a user's full history is read only up to this many behaviors
MAX_HISTORY_READ = 5000


class ServiceConfig(BaseModel):
    """Settings of one ``tide serve`` process (printed at start)."""

    model_config = ConfigDict(extra="forbid")

    store: Path
    keys: Path | None = Field(default=None, description="key database (default: <store>/keys.db)")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    engine_url: str | None = None
    #: requests larger than this are refused with 413 before they are parsed
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    #: a prediction batch keeps collecting while the next request comes within this gap of the last one ...
    batch_window_ms: float = Field(default=10.0, ge=0.0, le=1000.0)
    #: ... for at most this long after its first request
    batch_max_wait_ms: float = Field(default=250.0, ge=0.0, le=10000.0)
    max_batch: int = Field(default=32, ge=1, le=1024)
    #: seconds SIGTERM waits for in-flight requests before closing the store
    drain_timeout_s: float = Field(default=60.0, ge=0.0)


class UnknownUser(ServiceError):
    def __init__(self, user_id: str) -> None:
        super().__init__(f"unknown user {user_id!r}: no behaviors stored")
        self.user_id = user_id


class Forbidden(ServiceError):
    def __init__(self, user_id: str) -> None:
        super().__init__(f"this key may not access user {user_id!r}")
        self.user_id = user_id


class NotReady(ServiceError):
    """The engine has not answered yet (or failed to start)."""


class NotSupported(ServiceError):
    """A request field this server's agent cannot honour."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RowsRejected(ServiceError):
    """A strict batch had invalid rows; nothing was stored."""

    def __init__(self, rejected: list[Any]) -> None:
        super().__init__(f"{len(rejected)} row(s) rejected; strict batch refused, nothing stored")
        self.rejected = rejected


class Runtime:
    """The server's state; build with a config and (for predictions) an agent factory."""

    def __init__(self, config: ServiceConfig, agent_factory: AgentFactory | None, *,
                 embedder: Embedder | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.keys = KeyStore(config.keys or config.store / "keys.db")
        self.store: MemoryStore | None = None
        self.agent: InterestAgent | None = None
        self.engine_error: str | None = None
        self._factory = agent_factory
        self._embedder = embedder
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tide-store")
        self._engine_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tide-engine")
        self._engine_lock = threading.Lock()
        self.batcher = PredictBatcher(self._run_batch, window_s=config.batch_window_ms / 1000.0,
                                      max_wait_s=config.batch_max_wait_ms / 1000.0,
                                      max_batch=config.max_batch, on_batch=self.metrics.batch)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store (in the worker thread), start the batcher and the engine thread."""
        self.store = await self.call(MemoryStore.open, self.config.store, self._embedder)
        self.batcher.start()
        if self._factory is not None:
            threading.Thread(target=self._start_agent, name="tide-engine-start", daemon=True).start()
        else:
            self.engine_error = "no engine configured"

    def _start_agent(self) -> None:
        assert self._factory is not None and self.store is not None
        try:
            agent = self._factory(self.store)
            if agent.engine is not None:  # ready means the engine has answered, not merely started
                agent.engine.generate([GenerationRequest(prompt="Ready?", max_tokens=1)])
            self.agent = agent
            log.info("engine ready")
        except Exception as exc:  # reported by /v1/ready; writes keep working
            self.engine_error = f"{type(exc).__name__}: {exc}"
            log.exception("engine failed to start")

    async def stop(self) -> None:
        """Stop batching, close the agent and the store (after every queued worker call)."""
        await self.batcher.stop()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(self._engine_pool.shutdown, wait=True))  # batch in flight
        await self.call(self._close)
        self._pool.shutdown(wait=True)
        self.keys.close()

    def _close(self) -> None:
        try:
            if self.agent is not None:
                self.agent.close()
        finally:
            if self.store is not None:
                self.store.close()

    @property
    def ready(self) -> bool:
        return self.store is not None and self.agent is not None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in the store's worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def _agent(self) -> InterestAgent:
        if self.agent is None:
            raise NotReady(self.engine_error or "the engine is starting; retry shortly")
        return self.agent

    def _known(self, user_id: str) -> MemoryStore:
        assert self.store is not None
        if self.store.count(user_id) == 0:
            raise UnknownUser(user_id)
        return self.store

    # -- writes (run in the worker) ------------------------------------------------------------------
    def add(self, key: ApiKey, records: Sequence[Any], strict: bool) -> tuple[list[int | None], list[Any]]:
        """Validate rows, check the key's scope, store the valid rows in one transaction.

        Returns:
            ``(ids, rejected)``: per row its id (``None`` if rejected), and the rejected rows.
        """
        from eval import validate_rows

        assert self.store is not None
        for record in records:  # scope first: an out-of-scope row refuses the batch, valid or not
            if isinstance(record, dict) and isinstance(record.get("user_id"), str | int):
                uid = str(record["user_id"]).strip()
                if uid and not key.allows(uid):
                    raise Forbidden(uid)
        good, rejected = validate_rows(records)
        if rejected:
            self.metrics.count("rows_rejected", len(rejected))
            if strict:
                raise RowsRejected(rejected)
        ids: list[int | None] = [None] * len(records)
        if good:
            stored = self.store.add([b for _, b in good])  # commits before returning: then we ack
            for (line, _), bid in zip(good, stored, strict=True):
                ids[line - 1] = bid
            self.metrics.count("behaviors_added", len(good))
        return ids, rejected

    def forget(self, user_id: str, before: datetime | None) -> int:
        store = self._known(user_id)
        deleted = store.forget(user_id, before=before)
        self.metrics.count("behaviors_forgotten", deleted)
        return deleted

    @property
    def supports_feedback(self) -> bool:
        return callable(getattr(self.agent, "feedback", None))

    def feedback(self, user_id: str, item_id: str, signal: str, at: datetime | None, place: Any) -> Any:
        """Record feedback through the agent (a user's first behavior may be feedback: no known-user check)."""
        from memory import Location

        loc = None if place is None else Location(**place)
        return self._agent().feedback(user_id, item_id, signal, at=at, place=loc)  # type: ignore[attr-defined]

    # -- reads (run in the worker) -------------------------------------------------------------------
    def users(self, key: ApiKey) -> list[tuple[str, int]]:
        assert self.store is not None
        ids = self.store.users() if key.admin else sorted(u for u in (key.users or ()) if self.store.count(u))
        return [(u, self.store.count(u)) for u in ids if key.allows(u)]

    def behaviors(self, user_id: str, limit: int, ids: set[int] | None) -> list[StoredBehavior]:
        store = self._known(user_id)
        if ids is None:
            return store.recent(user_id, k=limit)
        history = store.recent(user_id, k=min(store.count(user_id), MAX_HISTORY_READ))
        return [b for b in history if b.id in ids][:limit]

    def timeline(self, user_id: str, bins: int) -> dict[str, Any]:
        store = self._known(user_id)
        history = store.recent(user_id, k=min(store.count(user_id), MAX_HISTORY_READ))
        return timeline(user_id, list(reversed(history)), bins)

    async def summarize(self, user_id: str, at: datetime | None) -> Any:
        """The user's context read in the store thread, the summary generated in the engine thread."""
        agent = self._agent()
        ctxs = await self.call(self._summary_contexts, agent, user_id, at)
        out = await asyncio.get_running_loop().run_in_executor(self._engine_pool, self._engine_call,
                                                                agent.summarize_contexts, ctxs)
        return out[0]

    def _summary_contexts(self, agent: InterestAgent, user_id: str, at: datetime | None) -> Any:
        self._known(user_id)
        return agent.contexts([user_id], [at])

    def _engine_call(self, fn: Callable[..., T], *args: Any) -> T:
        with self._engine_lock:
            return fn(*args)

    def chat(self, user_id: str, messages: list[dict[str, str]], at: datetime | None) -> Any:
        self._known(user_id)
        agent = self._agent()
        with self._engine_lock:
            return agent.chat(user_id, messages, now=at)

    # -- predictions: batched ------------------------------------------------------------------------
    @property
    def supports_place(self) -> bool:
        return self.agent is not None and "places" in inspect.signature(self.agent.predict_many).parameters

    async def predict(self, user_id: str, k: int, at: datetime | None, place: Any = None) -> Any:
        """One prediction, sharing an engine batch with concurrent requests."""
        self._agent()
        return await self.batcher.submit(PredictJob(user_id=user_id, k=k, at=at, place=place))

    async def _run_batch(self, jobs: Sequence[PredictJob]) -> list[Any]:
        agent = self._agent()
        out, live, scored = await self.call(self._prepare_jobs, agent, jobs)
        if live:
            preds = await asyncio.get_running_loop().run_in_executor(
                self._engine_pool, self._engine_call, self._complete_jobs, agent, max(jobs[i].k for i in live), scored)
            for i, pred in zip(live, preds, strict=True):  # one k per batch (the largest); each cut to its own
                out[i] = pred if isinstance(pred, Exception) else pred.model_copy(
                    update={"next_items": pred.next_items[:jobs[i].k]})
        return out

    def _prepare_jobs(self, agent: InterestAgent, jobs: Sequence[PredictJob]) -> tuple[list[Any], list[int], list[Any]]:
        """Store thread: unknown users answered, the others' memory read and scored.

        Returns ``(answers so far, indices of the jobs still to complete, their scored users)``.
        """
        assert self.store is not None
        out: list[Any] = [None if self.store.count(j.user_id) else UnknownUser(j.user_id) for j in jobs]
        live = [i for i, answer in enumerate(out) if answer is None]
        try:
            return out, live, agent.prepare(**self._prepare_args([jobs[i] for i in live])) if live else []
        except (TideError, ValueError):
            pass  # one bad request must not fail its neighbours: prepare them one by one
        kept, scored = [], []
        for i in live:
            try:
                scored.extend(agent.prepare(**self._prepare_args([jobs[i]])))
                kept.append(i)
            except (TideError, ValueError) as exc:
                out[i] = exc
        return out, kept, scored

    @staticmethod
    def _complete_jobs(agent: InterestAgent, k: int, scored: list[Any]) -> list[Any]:
        """Engine thread (under the engine lock): the LLM half; one by one if the batch fails."""
        try:
            return agent.complete(scored, k)
        except (TideError, ValueError) as exc:
            if len(scored) == 1:
                return [exc]
        preds: list[Any] = []
        for one in scored:
            try:
                preds.extend(agent.complete([one], k))
            except (TideError, ValueError) as err:
                preds.append(err)
        return preds

    @staticmethod
    def _prepare_args(jobs: Sequence[PredictJob]) -> dict[str, Any]:
        args: dict[str, Any] = {"user_ids": [j.user_id for j in jobs], "now": [j.at for j in jobs]}
        if any(j.place is not None for j in jobs):
            from memory import Location

            args["places"] = [None if j.place is None else Location(**j.place) for j in jobs]
        return args
