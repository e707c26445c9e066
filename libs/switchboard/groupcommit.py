"""Group commit: concurrent callers share one flush, so each pays a share of one round trip, not its own.

A caller's items join the batch that is being gathered; the batch is flushed as soon as no flush is
running, and callers arriving meanwhile gather the next one. Under light load a batch holds one caller's
items and nothing waits; under heavy load batches grow with the load, which is what keeps per-request
Redis and broker round trips from dominating an HTTP front door.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Flush the items of every waiting caller together, one flush at a time; give each caller its results.

    `flush` takes a list of items and returns one result per item, in order. If it raises, every caller of
    that batch gets the exception. `max_items` caps a batch; callers beyond it wait for the next one.
    """

    def __init__(self, flush: Callable[[list[T]], Awaitable[Sequence[R]]], max_items: int = 5000) -> None:
        self._flush = flush
        self._max_items = max_items
        self._waiting: deque[tuple[list[T], asyncio.Future[list[R]]]] = deque()
        self._running: asyncio.Task[None] | None = None

    async def submit(self, items: list[T]) -> list[R]:
        """Add items to the next batch; return their results once it is flushed."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        if self._running is None:
            # A flush serves every waiting caller: it runs in a context of its own, not in the first
            # caller's (whose trace its log lines would otherwise claim).
            self._running = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch: list[tuple[list[T], asyncio.Future[list[R]]]] = []
                count = 0
                while self._waiting and (not batch or count + len(self._waiting[0][0]) <= self._max_items):
                    callers = self._waiting.popleft()
                    batch.append(callers)
                    count += len(callers[0])
                await self._run(batch)
        finally:
            self._running = None

    async def _run(self, batch: list[tuple[list[T], asyncio.Future[list[R]]]]) -> None:
        items = [item for part, _ in batch for item in part]
        try:
            results = list(await self._flush(items))
            if len(results) != len(items):
                raise RuntimeError(f"flush gave {len(results)} results for {len(items)} items")
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        start = 0
        for part, future in batch:
            if not future.done():
                future.set_result(results[start : start + len(part)])
            start += len(part)
