"""The walking skeleton: HTTP in at ingest, through classifier, router and SLA, out on the topics.

The four services run as separate processes (`switchboard serve <service>`) against a broker started
for this test and the real Redis, exactly as `switchboard up` runs them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from switchboard.contract import decode
from switchboard.stack import SERVICES, EmbeddedStack, StackConfig, free_port
from switchboard.testing import TopicReader, eventually, keys_removed

pytestmark = pytest.mark.e2e

# One day of target shrinks to 20 s: an email gets 20 s, an X message under half a second.
SCALE = 20 / 86400


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    prefix = f"e2e:{uuid.uuid4().hex[:8]}:"
    config = StackConfig(
        kafka_port=free_port(),
        redis_url=redis_url,
        ports={s: free_port() for s in SERVICES},
        state_dir=tmp_path_factory.mktemp("stack"),
        redis_persistence=False,
        env={
            "SWITCHBOARD_REDIS_KEY_PREFIX": prefix,
            "SLA_TARGET_SCALE": str(SCALE),
            "SLA_TICK_SECONDS": "0.1",
        },
    )
    # The stack's keys go once it has stopped: the shared Redis does not keep them.
    with keys_removed(redis_url, prefix), EmbeddedStack(config, say=lambda *_: None) as running:
        yield running


async def post_message(stack: EmbeddedStack, channel: str, text: str, visibility: str) -> dict:
    body = {
        "channel": channel,
        "external_id": uuid.uuid4().hex,
        "author": {"id": uuid.uuid4().hex[:6], "handle": "@someone", "name": "Someone"},
        "text": text,
        "created_at": datetime.now(UTC).isoformat(),
        "visibility": visibility,
    }
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"{stack.url('ingest')}/v1/messages", json=body)
    assert response.status_code == 202, response.text
    return {**body, **response.json()}


def events(records, type_: str, **data) -> list:
    out = []
    for record in records:
        event = decode(record.value)
        if event.type == type_ and all(getattr(event.data, k) == v for k, v in data.items()):
            out.append(event)
    return out


async def wait_event(reader: TopicReader, type_: str, **data) -> list:
    """Wait until an event of `type_` whose data has these values was read; return all such events."""

    def match(record) -> bool:
        return bool(events([record], type_, **data))

    await reader.wait_for(match)
    return events(reader.records, type_, **data)


def test_every_service_is_ready(stack: EmbeddedStack):
    for service in SERVICES:
        response = httpx.get(f"{stack.url(service)}/readyz", timeout=5)
        assert response.status_code == 200, (service, response.text)
        assert all(response.json()["checks"].values())


async def test_support_and_marketing_messages_reach_their_queues_and_their_sla_clocks(stack: EmbeddedStack):
    bootstrap = stack.config.bootstrap
    topics = ("cases.customer-service", "cases.marketing", "cases.review", "cases.activity", "sla.events")
    async with TopicReader(bootstrap, *topics) as reader:
        support = await post_message(
            stack,
            "email",
            "Hello, I was charged twice for my subscription this month (invoice 2026-118). "
            "Please refund the duplicate payment. Regards, Paul",
            "private",
        )
        urgent = await post_message(
            stack,
            "x",
            "@NovaTel your network is down again since this morning, no internet at all!! #outage",
            "public",
        )
        marketing = await post_message(
            stack,
            "instagram",
            "Love love love the new collection 😍 bravo to the whole team! #fashion",
            "public",
        )

        def routed(message: dict, topic: str):
            return lambda r: r.topic == topic and decode(r.value).data.message_id == message["message_id"]

        (support_case,) = await reader.wait_for(routed(support, "cases.customer-service"))
        (urgent_case,) = await reader.wait_for(routed(urgent, "cases.customer-service"))
        (marketing_case,) = await reader.wait_for(routed(marketing, "cases.marketing"))

        support_event = decode(support_case.value)
        assert support_event.type == "switchboard.case.routed"
        assert support_case.key == support_event.data.case_id.encode()
        assert support_event.data.classification.category == "support"
        assert support_event.data.classification.language == "en"
        assert support_event.data.channel == "email"
        assert support_event.data.is_new_case
        assert decode(marketing_case.value).data.classification.category == "marketing"

        # The contact centre sees the case and answers: the clock stops before its 20 s target.
        case_id = support_event.data.case_id
        await wait_event(reader, "switchboard.sla.started", case_id=case_id)
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                f"{stack.url('ingest')}/v1/cases/{case_id}/activity",
                json={"type": "responded", "at": datetime.now(UTC).isoformat(), "agent": "agent-7"},
            )
        assert response.status_code == 202, response.text
        await reader.wait_for(lambda r: r.topic == "cases.activity" and r.key == case_id.encode())
        (stopped,) = await wait_event(reader, "switchboard.sla.stopped", case_id=case_id)
        assert stopped.data.reason == "responded"

        # Nobody answers the outage on X: its 30 minutes, scaled, pass and it breaches once.
        urgent_id = decode(urgent_case.value).data.case_id
        await wait_event(reader, "switchboard.sla.warning", case_id=urgent_id)
        await wait_event(reader, "switchboard.sla.breached", case_id=urgent_id)
        marketing_id = decode(marketing_case.value).data.case_id
        (marketing_clock,) = await wait_event(reader, "switchboard.sla.started", case_id=marketing_id)
        assert marketing_clock.data.policy == "marketing"
        assert events(reader.records, "switchboard.sla.breached", case_id=case_id) == []
        await reader.poll()
        assert len(events(reader.records, "switchboard.sla.breached", case_id=urgent_id)) == 1

    async with httpx.AsyncClient(timeout=5) as client:
        case = (await client.get(f"{stack.url('router')}/v1/cases/{case_id}")).json()
    assert case["channels"] == ["email"]
    assert case["message_ids"] == [support["message_id"]]


async def test_a_retried_webhook_is_not_published_twice(stack: EmbeddedStack):
    first = await post_message(
        stack, "sms", "slt ma box ne marche plus depuis hier, vous pouvez m'aider stp", "private"
    )
    body = {k: first[k] for k in ("channel", "external_id", "author", "text", "created_at", "visibility")}
    async with httpx.AsyncClient(timeout=10) as client:
        again = await client.post(f"{stack.url('ingest')}/v1/messages", json=body)
    assert again.status_code == 200
    assert again.json()["message_id"] == first["message_id"]
    assert again.json()["status"] == "duplicate"


async def test_the_services_count_what_went_through_in_their_metrics(stack: EmbeddedStack):
    def metric(service: str, needle: str) -> float:
        text = httpx.get(f"{stack.url(service)}/metrics", timeout=5).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(needle))

    await eventually(
        lambda: metric("classifier", "switchboard_classifier_messages_classified_total") >= 4, 20
    )
    assert metric("ingest", "switchboard_ingest_messages_accepted_total") >= 4
    assert metric("router", "switchboard_router_cases_routed_total") >= 3
    assert metric("sla", "switchboard_sla_clocks_started_total") >= 3
    assert (
        metric("classifier", 'switchboard_classifier_records_consumed_total{topic="messages.received"}') >= 4
    )


async def test_a_message_posted_with_a_traceparent_reaches_its_sla_events_in_the_same_trace(
    stack: EmbeddedStack,
):
    trace_id = uuid.uuid4().hex
    ref = uuid.uuid4().hex[:6]
    text = f"@NovaTel no internet since this morning, the network is down!! #outage ref {ref}"
    body = {
        "channel": "x",
        "external_id": uuid.uuid4().hex,
        "author": {"id": uuid.uuid4().hex[:6]},
        "text": text,
        "created_at": datetime.now(UTC).isoformat(),
    }
    topics = ("messages.received", "messages.classified", "cases.customer-service", "sla.events")
    async with TopicReader(stack.config.bootstrap, *topics) as reader:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                f"{stack.url('ingest')}/v1/messages",
                json=body,
                headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
            )
        assert response.status_code == 202, response.text
        message_id = response.json()["message_id"]
        (case,) = await reader.wait_for(
            lambda r: r.topic == "cases.customer-service" and decode(r.value).data.message_id == message_id
        )
        case_id = decode(case.value).data.case_id
        # Started when the case was routed; breached by the SLA ticker, from the timer it kept.
        await wait_event(reader, "switchboard.sla.started", case_id=case_id)
        await wait_event(reader, "switchboard.sla.breached", case_id=case_id)

    def ours(record) -> bool:
        event = decode(record.value)
        if record.topic in ("messages.received", "messages.classified"):
            return event.subject == message_id
        return event.subject == case_id

    path = [r for r in reader.records if ours(r)]
    assert {r.topic for r in path} == set(topics)
    spans = set()
    for record in path:
        traceparent = dict(record.headers)["traceparent"].decode()
        assert traceparent.split("-")[1] == trace_id, (record.topic, traceparent)
        spans.add(traceparent.split("-")[2])
    assert "00f067aa0ba902b7" not in spans
    # The services log JSON lines, never what the customer wrote.
    for log in (stack.config.state_dir / "logs").glob("*.log"):
        if log.stem in SERVICES:
            lines = log.read_text(errors="replace").splitlines()
            assert all(json.loads(line)["msg"] is not None for line in lines if line.strip()), log.name
            assert not [line for line in lines if text in line], log.name


async def test_a_conversation_that_turns_into_a_complaint_moves_to_customer_service_and_stays(
    stack: EmbeddedStack,
):
    author = {"id": uuid.uuid4().hex[:8], "handle": "@sam_okafor", "name": "Sam Okafor"}
    said = [
        "@VeloCity loving the new spring collection, the green jacket is gorgeous 😍",
        "@VeloCity ordered it on the 2nd though, order #A-77120, and the tracking has not moved in 9 days",
        "@VeloCity ok great, thanks!",
    ]
    topics = ("cases.customer-service", "cases.marketing", "cases.review", "sla.events")
    async with (
        TopicReader(stack.config.bootstrap, *topics) as reader,
        httpx.AsyncClient(timeout=10) as client,
    ):
        ids = []
        for text in said:
            body = {
                "channel": "x",
                "external_id": uuid.uuid4().hex,
                "author": author,
                "text": text,
                "created_at": datetime.now(UTC).isoformat(),
                "visibility": "public",
            }
            response = await client.post(f"{stack.url('ingest')}/v1/messages", json=body)
            assert response.status_code == 202, response.text
            ids.append(response.json()["message_id"])

        def routed(message_id: str):
            return lambda r: r.topic.startswith("cases.") and decode(r.value).data.message_id == message_id

        praise, problem, thanks = [decode((await reader.wait_for(routed(i)))[0].value).data for i in ids]

        # The praise opens a marketing case; the problem, by the real classifier's decision, moves it to
        # customer service; the thanks, which alone would go to marketing, follows the case.
        assert (praise.queue, praise.is_new_case) == ("marketing", True)
        assert praise.classification.category == "marketing"
        assert problem.case_id == thanks.case_id == praise.case_id
        assert problem.queue == "customer-service" and "escalated" in problem.tags
        assert thanks.classification.category == "marketing"
        assert (thanks.queue, thanks.rule) == ("customer-service", "follow-case")

        # The SLA service puts the case under a customer-service policy from the escalation on. It reads the
        # queue topics side by side, so it may read the escalation before the opening: then no marketing
        # clock ever starts; otherwise the marketing clock stops, reason `escalated`, before the new one.
        case_id = praise.case_id

        def support_clock(record) -> bool:
            event = decode(record.value)
            return (
                event.type == "switchboard.sla.started"
                and event.data.case_id == case_id
                and event.data.clock == "first_response"
                and event.data.policy != "marketing"
            )

        # Read first, the escalation started the clock; the opening, read after, publishes that clock's start
        # again under the same event id (consumers drop the copy).
        support_started = [decode(r.value) for r in await reader.wait_for(support_clock)]
        assert len({e.id for e in support_started}) == 1
        assert support_started[0].data.queue == "customer-service"
        # Events of one case share a partition: what came before the new clock has been read.
        marketing_clocks = events(
            reader.records, "switchboard.sla.started", case_id=case_id, policy="marketing"
        )
        stopped = events(reader.records, "switchboard.sla.stopped", case_id=case_id, reason="escalated")
        assert [e.data.policy for e in stopped] == ["marketing"] * len(marketing_clocks)

        case = (await client.get(f"{stack.url('router')}/v1/cases/{case_id}")).json()
    assert case["queue"] == "customer-service" and case["escalated_from"] == "marketing"
    assert case["message_ids"] == ids


async def test_the_classifier_and_router_dry_runs_tell_where_a_real_message_went(stack: EmbeddedStack):
    """An operator asking "why did this go there?" gets, from the two dry runs, what the real path did."""
    async with TopicReader(stack.config.bootstrap, "cases.customer-service", "cases.marketing") as reader:
        tried = [
            ("x", "public", "@NovaTel 3 jours sans internet, personne ne répond au 3900, c'est honteux"),
            ("instagram", "public", "Trop hâte de voir la nouvelle collection, vous êtes les meilleurs 😍"),
        ]
        posted = [await post_message(stack, channel, text, visibility) for channel, visibility, text in tried]
        routed = []
        for message in posted:
            (record,) = await reader.wait_for(
                lambda r, m=message: decode(r.value).data.message_id == m["message_id"]
            )
            routed.append(decode(record.value).data)
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(
            f"{stack.url('classifier')}/v1/classify",
            json={
                "messages": [
                    {"text": m["text"], "channel": m["channel"], "visibility": m["visibility"]}
                    for m in posted
                ]
            },
        )
        assert answer.status_code == 200, answer.text
        decided = answer.json()["live"]["classifications"]
        assert decided == [r.classification.model_dump(mode="json") for r in routed]
        for message, classification, case in zip(posted, decided, routed, strict=True):
            sample = {k: message[k] for k in ("channel", "text", "author", "visibility")}
            where = await client.post(
                f"{stack.url('router')}/v1/rules/test", json={**sample, "classification": classification}
            )
            assert where.status_code == 200, where.text
            assert (where.json()["queue"], where.json()["rule"]) == (case.queue.value, case.rule)
    assert [r.queue.value for r in routed] == ["customer-service", "marketing"]
