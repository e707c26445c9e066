"""The Redis adapters against the real Redis server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from ingest.store import DONE, PENDING, RedisSeenStore
from router.routing import Decision
from router.store import Attachment, RedisCaseStore
from sla.store import Firing, RedisTimerStore
from switchboard.contract import Author, Message, Queue, SlaTimer
from switchboard.dedupe import RedisDeduper
from switchboard.testing import eventually

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def message(message_id: str, conversation: str = "conv-1", channel: str = "x") -> Message:
    return Message(
        message_id=message_id,
        channel=channel,
        external_id=message_id,
        conversation_id=conversation,
        author=Author(id="a"),
        text="t",
        created_at=NOW,
        received_at=NOW,
        visibility="public",
    )


SUPPORT = Decision(Queue.CUSTOMER_SERVICE, "support", "delivery-en", "P2")


async def test_messages_of_one_conversation_join_one_case(redis: Redis, key_prefix: str):
    store = RedisCaseStore(redis, key_prefix)
    first = await store.attach(message("m1"), SUPPORT, 3600, NOW)
    second = await store.attach(message("m2"), SUPPORT, 3600, NOW)
    other = await store.attach(message("m3", conversation="conv-2"), SUPPORT, 3600, NOW)
    assert first.is_new and not second.is_new and other.is_new
    assert first.case_id == second.case_id != other.case_id
    case = await store.get(first.case_id)
    assert case["message_ids"] == ["m1", "m2"]
    assert case["queue"] == "customer-service"
    assert case["status"] == "open"


async def test_redelivering_the_opening_message_finds_the_same_new_case(redis: Redis, key_prefix: str):
    store = RedisCaseStore(redis, key_prefix)
    first = await store.attach(message("m1"), SUPPORT, 3600, NOW)
    again = await store.attach(message("m1"), SUPPORT, 3600, NOW)
    assert again == first
    assert (await store.get(first.case_id))["message_ids"] == ["m1"]


async def test_concurrent_messages_of_a_new_conversation_open_exactly_one_case(redis: Redis, key_prefix: str):
    store = RedisCaseStore(redis, key_prefix)
    results = await asyncio.gather(*(store.attach(message(f"m{i}"), SUPPORT, 3600, NOW) for i in range(20)))
    assert len({r.case_id for r in results}) == 1
    assert sum(r.is_new for r in results) == 1


async def test_a_poll_attached_in_one_call_matches_attaching_its_messages_one_by_one(
    redis: Redis, key_prefix: str
):
    poll = [
        Attachment(message("m1", conversation="a"), SUPPORT, '{"n": 1}', ["order:A1"]),
        Attachment(message("m2", conversation="a"), SUPPORT, '{"n": 2}'),
        Attachment(message("m3", conversation="b"), SUPPORT, "", ["order:A1"]),
        Attachment(message("m4", conversation="c", channel="email"), SUPPORT),
    ]
    batched = await RedisCaseStore(redis, f"{key_prefix}batch:").attach_many(poll, 3600, NOW)
    one_store = RedisCaseStore(redis, f"{key_prefix}one:")
    singles = [(await one_store.attach_many([item], 3600, NOW))[0] for item in poll]
    assert batched == singles
    first, second, linked, other = batched
    # The second message of a conversation joins the case its first opened in the same call, and a
    # message of another conversation naming the same order is linked to it.
    assert first.is_new and not second.is_new and linked.linked and other.is_new
    assert first.case_id == second.case_id == linked.case_id != other.case_id
    case = await RedisCaseStore(redis, f"{key_prefix}batch:").get(first.case_id)
    assert case["message_ids"] == ["m1", "m2", "m3"]
    assert case["channels"] == ["x"]


async def test_a_resolved_case_leaves_its_queue_and_a_reopened_one_returns(redis: Redis, key_prefix: str):
    store = RedisCaseStore(redis, key_prefix)
    case = await store.attach(message("m1"), SUPPORT, 3600, NOW)
    assert [c["case_id"] for c in await store.open_cases(Queue.CUSTOMER_SERVICE, 10)] == [case.case_id]
    assert await store.record_activity(case.case_id, "resolved", NOW)
    assert await store.open_cases(Queue.CUSTOMER_SERVICE, 10) == []
    assert (await store.get(case.case_id))["status"] == "resolved"
    await store.record_activity(case.case_id, "reopened", NOW)
    assert len(await store.open_cases(Queue.CUSTOMER_SERVICE, 10)) == 1
    assert not await store.record_activity("no-such-case", "resolved", NOW)


async def case_ttls(redis: Redis, key_prefix: str, case_id: str) -> list[int]:
    """Return the TTL of a case's hash, channels and messages (-1: no expiry, -2: gone)."""
    key = f"{key_prefix}router:case:{case_id}"
    return [await redis.ttl(part) for part in (key, f"{key}:channels", f"{key}:messages")]


async def test_a_resolved_case_gets_the_retention_ttl_and_a_new_message_removes_it(
    redis: Redis, key_prefix: str
):
    store = RedisCaseStore(redis, key_prefix, resolved_retention_seconds=7200)
    case = await store.attach(message("m1"), SUPPORT, 3600, NOW)
    assert await case_ttls(redis, key_prefix, case.case_id) == [-1, -1, -1]
    assert await store.record_activity(case.case_id, "resolved", NOW)
    assert all(7190 < ttl <= 7200 for ttl in await case_ttls(redis, key_prefix, case.case_id))
    (again,) = await store.attach_many([Attachment(message("m2"), SUPPORT)], 3600, NOW)
    assert again.case_id == case.case_id and again.reopened
    assert await case_ttls(redis, key_prefix, case.case_id) == [-1, -1, -1]
    assert (await store.get(case.case_id))["message_ids"] == ["m1", "m2"]


@pytest.mark.parametrize("activity", ["reopened", "responded", "waiting_on_customer"])
async def test_an_activity_that_leaves_a_resolved_case_unresolved_removes_its_ttl(
    redis: Redis, key_prefix: str, activity: str
):
    store = RedisCaseStore(redis, key_prefix, resolved_retention_seconds=7200)
    case = await store.attach(message("m1"), SUPPORT, 3600, NOW)
    await store.record_activity(case.case_id, "resolved", NOW)
    await store.record_activity(case.case_id, activity, NOW)
    assert await case_ttls(redis, key_prefix, case.case_id) == [-1, -1, -1]


async def test_reassigning_a_resolved_case_removes_its_ttl(redis: Redis, key_prefix: str):
    store = RedisCaseStore(redis, key_prefix, resolved_retention_seconds=7200)
    case = await store.attach(message("m1"), SUPPORT, 3600, NOW)
    await store.record_activity(case.case_id, "resolved", NOW)
    moved = await store.reassign(case.case_id, Queue.MARKETING, "act-1", NOW)
    assert moved is not None and moved.outcome == "moved"
    assert (await store.get(case.case_id))["status"] == "open"
    assert await case_ttls(redis, key_prefix, case.case_id) == [-1, -1, -1]


async def test_redis_drops_a_resolved_case_once_its_retention_has_passed(redis: Redis, key_prefix: str):
    store = RedisCaseStore(redis, key_prefix, resolved_retention_seconds=1)
    case = await store.attach(message("m1"), SUPPORT, 3600, NOW)
    kept = await store.attach(message("m2", conversation="conv-2"), SUPPORT, 3600, NOW)
    await store.record_activity(case.case_id, "resolved", NOW)

    async def gone() -> bool:
        return await case_ttls(redis, key_prefix, case.case_id) == [-2, -2, -2]

    await eventually(gone, timeout=10)
    assert await store.get(case.case_id) is None
    assert (await store.get(kept.case_id))["status"] == "open"


def plan(warn: float, breach: float) -> list[Firing]:
    return [
        Firing("warning:0.8", NOW + timedelta(seconds=warn)),
        Firing("breached", NOW + timedelta(seconds=breach)),
    ]


def timer(case_id: str, seconds: float = 60) -> SlaTimer:
    return SlaTimer(
        case_id=case_id,
        clock="first_response",
        policy="x-support",
        queue=Queue.CUSTOMER_SERVICE,
        channel="x",
        priority="P3",
        started_at=NOW,
        due_at=NOW + timedelta(seconds=seconds),
        target_seconds=seconds,
        elapsed_seconds=0,
    )


async def test_a_timer_starts_once_and_fires_its_warning_then_its_breach(redis: Redis, key_prefix: str):
    store = RedisTimerStore(redis, key_prefix)
    assert await store.start(timer("c1"), plan(48, 60))
    assert not await store.start(timer("c1"), plan(48, 60))
    assert await store.open_count() == 1
    assert await store.claim_due(NOW + timedelta(seconds=47), 100) == []
    (warning,) = await store.claim_due(NOW + timedelta(seconds=50), 100)
    assert warning.kind == "warning:0.8" and warning.timer == timer("c1")
    assert warning.due == NOW + timedelta(seconds=48)
    (breach,) = await store.claim_due(NOW + timedelta(seconds=61), 100)
    assert breach.kind == "breached"
    assert await store.running("c1", "first_response") == timer("c1")


async def test_a_stopped_timer_never_fires(redis: Redis, key_prefix: str):
    store = RedisTimerStore(redis, key_prefix)
    await store.start(timer("c1"), plan(48, 60))
    stopped = await store.stop("c1", "first_response")
    assert stopped == timer("c1")
    assert await store.stop("c1", "first_response") is None
    assert await store.claim_due(NOW + timedelta(days=1), 100) == []
    assert await store.open_count() == 0


async def test_competing_instances_claim_each_due_entry_exactly_once(
    redis_url: str, redis: Redis, key_prefix: str
):
    clients = [Redis.from_url(redis_url) for _ in range(3)]
    stores = [RedisTimerStore(client, key_prefix) for client in clients]
    try:
        for i in range(300):
            await stores[0].start(timer(f"c{i}", seconds=i % 10), plan(i % 10, i % 10))
        later = NOW + timedelta(seconds=60)
        rounds = await asyncio.gather(*(s.claim_due(later, 50) for s in stores for _ in range(10)))
    finally:
        for client in clients:
            await client.aclose()
    members = [c.member for claimed in rounds for c in claimed]
    assert len(members) == len(set(members)) == 600


async def test_an_entry_claimed_by_an_instance_that_died_is_handed_back_after_the_lease(
    redis: Redis, key_prefix: str
):
    store = RedisTimerStore(redis, key_prefix)
    await store.start(timer("c1", seconds=1), plan(0, 1))
    claimed = await store.claim_due(NOW + timedelta(seconds=2), 10)
    assert len(claimed) == 2
    # The claimer dies before `done`: within the lease nothing comes back, after it everything does.
    assert await store.requeue_stale(NOW + timedelta(seconds=10), lease_seconds=30) == 0
    assert await store.requeue_stale(NOW + timedelta(seconds=40), lease_seconds=30) == 2
    again = await store.claim_due(NOW + timedelta(seconds=40), 10)
    assert sorted(c.member for c in again) == sorted(c.member for c in claimed)
    # Due when they were first due: a firing published late after a crash reports its whole lateness.
    assert {c.member: c.due for c in again} == {c.member: c.due for c in claimed}
    await store.done([c.member for c in again])
    assert await store.requeue_stale(NOW + timedelta(seconds=400), lease_seconds=30) == 0
    assert not await redis.exists(f"{key_prefix}sla:firing_due"), "a finished entry left its due time"


async def test_ingest_claims_a_channel_message_once_and_releases_a_failed_publish(
    redis: Redis, key_prefix: str
):
    store = RedisSeenStore(redis, key_prefix, ttl_seconds=60)
    assert await store.claim(["x:1", "x:2"]) == [None, None]
    assert await store.claim(["x:1"]) == [PENDING]
    await store.confirm(["x:1"])
    await store.release(["x:2"])
    assert await store.claim(["x:1", "x:2"]) == [DONE, None]


async def test_an_answer_that_arrives_before_the_clock_starts_keeps_it_from_starting(
    redis: Redis, key_prefix: str
):
    store = RedisTimerStore(redis, key_prefix)
    assert await store.stop("c1", "first_response") is None
    assert not await store.start(timer("c1"), plan(48, 60))
    assert await store.claim_due(NOW + timedelta(days=1), 100) == []
    assert await store.start(timer("c2"), plan(48, 60))
    # A later run of the same clock (a reopened case) is not blocked by the earlier stop.
    assert await store.start(timer("c1"), plan(48, 60), first=False)


async def test_handled_ids_are_remembered_for_at_least_one_ttl_and_forgotten_after_two(
    redis: Redis, key_prefix: str
):
    now = [1_000_000.0]
    deduper = RedisDeduper(redis, f"{key_prefix}handled:", ttl_seconds=100, clock=lambda: now[0])
    await deduper.mark(["a", "b"])
    assert await deduper.seen(["a", "b", "c"]) == {"a", "b"}
    now[0] += 100
    assert await deduper.seen(["a", "c"]) == {"a"}
    now[0] += 100
    assert await deduper.seen(["a"]) == set()
    assert 0 < await redis.ttl(f"{key_prefix}handled:10000") <= 200


async def test_a_queue_reports_how_many_cases_it_holds_and_when_its_oldest_opened(
    redis: Redis, key_prefix: str
):
    store = RedisCaseStore(redis, key_prefix)
    assert await store.queue_depth(Queue.CUSTOMER_SERVICE) == (0, None)
    await store.attach(message("m1", conversation="a"), SUPPORT, 3600, NOW)
    await store.attach(message("m2", conversation="b"), SUPPORT, 3600, NOW + timedelta(minutes=5))
    assert await store.queue_depth(Queue.CUSTOMER_SERVICE) == (2, NOW.timestamp())
    assert await store.queue_depth(Queue.MARKETING) == (0, None)


async def test_a_pending_claim_left_by_a_dead_ingest_expires_so_the_channel_retry_goes_through(
    redis: Redis, key_prefix: str
):
    store = RedisSeenStore(redis, key_prefix, ttl_seconds=60, pending_seconds=1)
    assert await store.claim(["x:9"]) == [None]
    # The process that claimed it died before confirming: a retry is asked to come back...
    assert await store.claim(["x:9"]) == [PENDING]
    assert 0 < await redis.ttl(f"{key_prefix}ingest:seen:x:9") <= 1
    # ...and once the claim expired, the retry claims it and publishes.
    await eventually(lambda: _gone(redis, f"{key_prefix}ingest:seen:x:9"), timeout=5)
    assert await store.claim(["x:9"]) == [None]


async def _gone(redis: Redis, key: str) -> bool:
    return not await redis.exists(key)
