"""kill -9 of each service in turn, at random moments, while a channel posts a steady stream to ingest.

The moments and the order are drawn from a seeded generator; the seed is printed, and
`SWITCHBOARD_CHAOS_SEED=<seed>` replays the same order and moments (the machine's timing still varies).
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from switchboard.contract import Queue, Topic
from switchboard.stack import SERVICES
from switchboard.testing import eventually

pytestmark = pytest.mark.e2e

SEED = int(os.environ.get("SWITCHBOARD_CHAOS_SEED") or random.randrange(1 << 32))
# Messages posted in one batch just before a consumer is killed.
BURST = 400
# The topics each consumer group reads.
INPUTS = {
    "classifier": (Topic.MESSAGES_RECEIVED.value,),
    "router": (Topic.MESSAGES_CLASSIFIED.value, Topic.CASES_ACTIVITY.value),
    "sla": (*(q.topic.value for q in Queue), Topic.CASES_ACTIVITY.value),
}


async def uncommitted(bootstrap: str, group: str, timeout: float = 10) -> int:
    """Count the records on a group's partitions past its committed offsets: in hand or not yet read.

    The ends are the high watermarks of fetch responses: the embedded broker answers ListOffsets(latest)
    (`end_offsets()`) with the base offset of a partition's last batch, which undercounts by the size of
    that batch (a burst published as one batch went missing from the count).
    """
    # Assigned, not subscribed: the consumer reads the group's offsets but never joins the group.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # metadata of every topic, so that their partitions are known
        partitions = [
            TopicPartition(topic, p)
            for topic in INPUTS[group]
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        committed = {tp: await consumer.committed(tp) or 0 for tp in partitions}
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, committed[tp])
        deadline = time.monotonic() + timeout
        while any(consumer.highwater(tp) is None for tp in partitions):
            assert time.monotonic() < deadline, "no fetch response for some partitions"
            await consumer.getmany(timeout_ms=100, max_records=1)
        return sum(max(0, consumer.highwater(tp) - committed[tp]) for tp in partitions)
    finally:
        await consumer.stop()


async def test_killing_each_service_mid_stream_loses_no_accepted_message_and_fires_each_deadline_once(
    failure_stack, channel, audit, metric, redis: Redis, key_prefix: str
):
    """Kill -9 ingest, classifier, router and SLA one at a time while messages flow, restart each: it proves

    - every message ingest answered 2xx is routed: it is on a queue topic under exactly one CaseRouted
      event id, with one case of its own (no message lost, no second case, no second routing id);
    - a message whose request got no answer (ingest killed mid-request) was not accepted: the channel
      posts it again until it gets a 2xx, and it too is routed at most once;
    - both SLA clocks of every case started once, and each warning, breach and escalation they owe was
      published under exactly one event id (none lost, none fired twice under two ids);
    - every case and timer is in Redis; the repeated publishes a kill causes (same event id again, which
      consumers drop) are reported, at most two copies of an event, and bounded by what the killed
      process had in hand: its uncommitted batch, or the firings the SLA instance had claimed.
    """
    rng = random.Random(SEED)
    order = rng.sample(SERVICES, len(SERVICES))
    pauses = [round(rng.uniform(0.5, 3.0), 2) for _ in order]
    moments = [round(rng.uniform(0.0, 0.15), 3) for _ in order]
    print(
        f"\nseed {SEED} (SWITCHBOARD_CHAOS_SEED={SEED} replays it): kill {order}, each after a pause of "
        f"{pauses} s, then {moments} s into its work"
    )
    started = time.monotonic()
    stack = await failure_stack()
    sender = channel(stack.url("ingest"), rate=20)
    sender.start()
    await eventually(lambda: len(sender.accepted) >= 20, timeout=30)

    claimed_at_sla_kill: list[bytes] = []
    downtime: dict[str, float] = {}
    in_hand: dict[str, int] = {}
    for service, pause, moment in zip(order, pauses, moments, strict=True):
        # Random moments, not waits for anything: correctness never depends on them.
        await asyncio.sleep(pause)
        if service == "ingest":
            # The victim dies with requests in hand: the first instant one waits for its answer.
            await eventually(lambda: sender.in_flight > 0, timeout=10, interval=0.001)
        else:
            # The victim dies with a batch in hand: a burst lands, the victim starts reading it (its
            # consumed counter jumps), and the kill comes a random moment later.
            series = f"switchboard_{service}_records_consumed_total"
            before = await metric(stack, service, series)
            await sender.burst(BURST)

            async def reading_the_burst(service: str = service, series: str = series, before: float = before):
                return await metric(stack, service, series) >= before + BURST // 4

            await eventually(reading_the_burst, timeout=30, interval=0.01)
            await asyncio.sleep(moment)
        victim = stack.process(service).popen
        killed = time.monotonic()
        victim.kill()
        await asyncio.to_thread(victim.wait, 10)
        if service != "ingest":
            in_hand[service] = await uncommitted(stack.config.bootstrap, service)
        if service == "sla":
            # What the instance claimed and had not forgotten: fired again after the lease, at most once.
            claimed_at_sla_kill = await redis.zrange(f"{key_prefix}sla:firing", 0, -1)
        stack.start_service(service)
        await asyncio.to_thread(stack.wait_ready, service, 60)
        downtime[service] = round(time.monotonic() - killed, 1)

    # The stream goes through again after the last restart, then stops; what got no 2xx is posted again.
    after_last = len(sender.accepted)
    await eventually(lambda: len(sender.accepted) >= after_last + 20, timeout=60)
    await sender.stop(drain=20)
    assert not sender.unexpected, sender.unexpected
    accepted = sender.accepted_ids

    async with audit(stack) as reading:
        routing = await reading.routed_once(accepted, sender.message_ids())
        firing = await reading.fired_once(set(routing.case_of.values()))
        await reading.cases_in_redis(routing.case_of)
        hops = reading.hop_duplicates()

    print(
        f"{sender.describe()}\ndown after kill -9 (until ready again): {downtime}; records the consumers "
        f"had not committed when killed: {in_hand}\n"
        f"{len(routing.case_of)} messages routed ({len(routing.case_of) - len(accepted)} of them never "
        f"answered 2xx), {routing.duplicates} routing events published twice; {len(firing.expected)} "
        f"firings, {firing.duplicates} published twice ({len(claimed_at_sla_kill)} claimed by the SLA "
        f"instance when killed); repeated publishes per topic: {hops}; "
        f"{time.monotonic() - started:.0f} s"
    )
    assert max(routing.copies.values()) <= 2
    assert max(firing.copies.values()) <= 2
    assert max(firing.started_copies.values()) <= 2
    # A killed consumer publishes again at most the outputs of what it had not committed (a routed case
    # starts two clocks); the SLA instance fires again at most what it had claimed.
    assert hops.get(Topic.MESSAGES_CLASSIFIED.value, 0) <= in_hand["classifier"]
    assert routing.duplicates <= in_hand["router"]
    assert sum(n - 1 for n in firing.started_copies.values()) <= 2 * in_hand["sla"]
    assert firing.duplicates <= len(claimed_at_sla_kill)
    assert all(stack.process(s).popen.poll() is None for s in SERVICES)
