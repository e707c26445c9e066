"""Fixtures that start the real parts the tests need: a Kafka-protocol broker and a Redis server."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from switchboard.stack import (
    broker_binary,
    free_port,
    port_open,
    redis_server_binary,
    running_broker,
    wait_until,
)

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis on 127.0.0.1:6379 when one runs, else a redis-server started for the session."""
    if port_open(REDIS_HOST, REDIS_PORT):
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
        return
    port = free_port()
    data = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", REDIS_HOST, "--save", "", "--dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: port_open(REDIS_HOST, port), 15, "redis")
        yield f"redis://{REDIS_HOST}:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker (memory storage) of this test session, on a free port."""
    with running_broker(tmp_path_factory.mktemp("broker")) as bootstrap:
        yield bootstrap


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix of this test alone."""
    return f"test:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def redis(redis_url: str, key_prefix: str) -> AsyncIterator[Redis]:
    """A Redis client; the test's keys are deleted afterwards."""
    client = Redis.from_url(redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{key_prefix}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def suffix() -> str:
    """A topic suffix of this test alone."""
    return uuid.uuid4().hex[:8]


def pytest_report_header() -> list[str]:
    """Say which broker and Redis binaries the run uses."""
    return [
        f"broker: {broker_binary()}",
        f"redis-server: {redis_server_binary() or shutil.which('redis-server')}",
    ]
