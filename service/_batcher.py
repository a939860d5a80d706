"""Gather concurrent prediction requests into one engine batch.

Requests that arrive close together (or while the previous batch is running) go to the agent together as
one ``predict_many`` call, so the engine sees one batch instead of many single prompts. The window is an
idle gap, not a fixed span: collection goes on while each next request comes within ``window_s`` of the
last one, up to ``max_wait_s`` after the first: concurrent clients do not arrive at one instant, and an
engine batch costs about as much for a few users as for 32, so a batch split in two costs nearly double.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["PredictBatcher", "PredictJob"]


@dataclass
class PredictJob:
    """One waiting prediction request."""

    user_id: str
    k: int
    at: datetime | None
    place: Any = None
    future: asyncio.Future = field(default=None)  # type: ignore[assignment]


# Runs one batch (in the store's worker thread) and returns, per job, a prediction or the exception.
BatchRunner = Callable[[Sequence[PredictJob]], Awaitable[list[Any]]]


class PredictBatcher:
    """A single dispatcher task: waits for a first request, collects more while they keep coming within
    ``window_s`` of each other (at most ``max_batch``, at most ``max_wait_s`` after the first; default
    ``max_wait_s`` = ``window_s``, a fixed window), runs them as one batch, and repeats. Requests that
    arrive while a batch runs wait in the queue and form the next batch, so under load batches fill without
    waiting for the window."""

    def __init__(self, run: BatchRunner, *, window_s: float, max_batch: int, max_wait_s: float | None = None,
                 on_batch: Callable[[int], None] | None = None) -> None:
        if window_s < 0 or (max_wait_s is not None and max_wait_s < 0) or max_batch < 1:
            raise ValueError("window_s and max_wait_s must be >= 0 and max_batch >= 1")
        self._run = run
        self._window_s = window_s
        self._max_wait_s = window_s if max_wait_s is None else max(max_wait_s, window_s)
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._queue: asyncio.Queue[PredictJob] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start the dispatcher on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="tide-predict-batcher")

    async def stop(self) -> None:
        """Stop the dispatcher; waiting requests fail with ``CancelledError``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.cancel()

    async def submit(self, job: PredictJob) -> Any:
        """Queue one request and wait for its result (raises the job's exception)."""
        job.future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(job)
        return await job.future

    async def _collect(self) -> list[PredictJob]:
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        last_wait = loop.time() + self._max_wait_s
        while len(batch) < self._max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = min(self._window_s, last_wait - loop.time())  # the gap, within the overall bound
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return [job for job in batch if not job.future.done()]  # a client that went away was cancelled

    async def _loop(self) -> None:
        while True:
            batch = await self._collect()
            if not batch:
                continue
            if self._on_batch is not None:
                self._on_batch(len(batch))
            try:
                results = await self._run(batch)
            except Exception as exc:  # the whole batch failed: every waiter gets the error
                results = [exc] * len(batch)
            for job, result in zip(batch, results, strict=True):
                if job.future.done():
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
