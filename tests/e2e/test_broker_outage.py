"""The broker unavailable for a while under traffic: ingest refuses, then accepts again; nothing is lost.

The broker is frozen (SIGSTOP), not restarted: the embedded broker (Tansu, memory storage) loses its
topics when it restarts (docs/architecture.md), which production's Kafka does not. A frozen broker keeps
its connections open and answers nothing, the worst case for clients: they must time out, not fail fast.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from switchboard.stack import SERVICES
from switchboard.testing import eventually

pytestmark = pytest.mark.e2e

MIN_OUTAGE_SECONDS = 6.0
PUBLISH_TIMEOUT_SECONDS = 2


async def test_broker_frozen_mid_stream_gets_503s_then_loses_nothing_accepted(
    failure_stack, channel, audit, readiness
):
    """Freeze the broker while messages flow, for at least 6 s, then let it run again: it proves

    - while it is frozen, ingest answers 503 with Retry-After within its publish timeout (never 2xx for
      a message the broker did not acknowledge), and its /readyz answers 503 with the Kafka check false;
    - once it runs again, ingest accepts again, and the consumers resume: messages accepted after the
      outage are routed and their deadlines fire;
    - every message accepted before the outage, those still in the pipeline when it began included, and
      every one refused during it and accepted on a later try, is routed under one event id to one case
      of its own, and each SLA firing of those cases is published under one event id.
    """
    started = time.monotonic()
    stack = await failure_stack(env={"INGEST_PUBLISH_TIMEOUT_SECONDS": str(PUBLISH_TIMEOUT_SECONDS)})
    sender = channel(stack.url("ingest"), rate=20)
    sender.start()
    await eventually(lambda: len(sender.accepted) >= 60, timeout=30)
    broker = stack.process("broker").popen
    broker.send_signal(signal.SIGSTOP)
    # From here on no request can be acknowledged; one sent before may still be answered 2xx now, its
    # records acknowledged before the freeze.
    outage = time.monotonic()
    accepted_before = sender.accepted_ids
    try:

        def refused_with_retry_after() -> bool:
            refused = sender.refused_since(outage)
            return len(refused) >= 3 and all(refused)

        await eventually(refused_with_retry_after, timeout=30)

        async def kafka_reported_down() -> bool:
            code, checks = await readiness(stack, "ingest")
            return code == 503 and checks.get("kafka") is False

        await eventually(kafka_reported_down, timeout=30)
        # Frozen for a while whatever the machine's speed: requests keep coming and are refused meanwhile.
        await asyncio.sleep(max(0.0, MIN_OUTAGE_SECONDS - (time.monotonic() - outage)))
        accepted_during = sender.accepted_sent_since(outage)
    finally:
        broker.send_signal(signal.SIGCONT)
    resumed = time.monotonic()
    frozen_for = resumed - outage
    refused_during = len(sender.refused_since(outage))
    assert not accepted_during, f"{len(accepted_during)} messages answered 2xx while the broker was frozen"

    count = len(sender.accepted)
    await eventually(lambda: len(sender.accepted) > count, timeout=60)
    accepting_after = time.monotonic() - resumed
    for service in SERVICES:
        await asyncio.to_thread(stack.wait_ready, service, 60)
    count = len(sender.accepted)
    await eventually(lambda: len(sender.accepted) >= count + 40, timeout=60)
    await sender.stop(drain=20)
    assert not sender.unexpected, sender.unexpected
    accepted = sender.accepted_ids

    async with audit(stack) as reading:
        routing = await reading.routed_once(accepted, sender.message_ids())
        routed_after = time.monotonic() - resumed
        firing = await reading.fired_once(set(routing.case_of.values()))
        await reading.cases_in_redis(routing.case_of)
        hops = reading.hop_duplicates()

    print(
        f"\n{sender.describe()}\nbroker frozen {frozen_for:.1f} s: {refused_during} requests refused 503 "
        f"with Retry-After; ingest accepting again {accepting_after:.1f} s after SIGCONT; every accepted "
        f"message routed {routed_after:.1f} s after it\n{len(accepted_before)} accepted before the outage, "
        f"{len(routing.case_of)} messages routed, {routing.duplicates} routing events published twice; "
        f"{len(firing.expected)} firings, {firing.duplicates} published twice; repeated publishes per "
        f"topic: {hops}; {time.monotonic() - started:.0f} s"
    )
    assert accepted_before <= set(routing.case_of)
    assert max(routing.copies.values()) <= 2
    assert max(firing.copies.values()) <= 2
