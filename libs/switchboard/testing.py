"""Helpers for tests of services built on Switchboard: wait with a deadline, read a topic, watch the logs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord


async def eventually(
    check: Callable[[], Any | Awaitable[Any]], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Return the first truthy result of `check`, or fail with its last error after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                result = await result
            if result:
                return result
            last = None
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s") from last
        await asyncio.sleep(interval)


class TopicReader:
    """Read everything published to some topics since the reader started, without a consumer group."""

    def __init__(self, bootstrap: str, *topics: str) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        self.records: list[ConsumerRecord] = []

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self) -> list[ConsumerRecord]:
        """Fetch what arrived since the last poll and return all records read so far."""
        batches = await self._consumer.getmany(timeout_ms=100)
        for records in batches.values():
            self.records.extend(records)
        return self.records

    async def wait_for(
        self, predicate: Callable[[ConsumerRecord], bool], count: int = 1, timeout: float = 20.0
    ):
        """Wait until `count` records match `predicate`; return them."""

        async def enough() -> list[ConsumerRecord] | None:
            matching = [r for r in await self.poll() if predicate(r)]
            return matching if len(matching) >= count else None

        return await eventually(enough, timeout=timeout)


@contextmanager
def captured_logs() -> Iterator[list[logging.LogRecord]]:
    """Collect every log record emitted inside the block, whatever its logger or thread."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, root = Keep(logging.DEBUG), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def errors_in(records: list[logging.LogRecord]) -> list[str]:
    """Describe the records that say something went wrong: an error, or any record with a traceback."""
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.ERROR or r.exc_info is not None
    ]
