"""`switchboard demo`: post realistic French and English messages and show, live, where each one went."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from switchboard.config import KafkaSettings
from switchboard.contract import ESCALATED, FOLLOW_CASE, Queue, decode

QUEUE_TOPICS = [q.topic.value for q in Queue]


def demo_messages() -> list[dict[str, Any]]:
    """Load the demo corpus shipped with the package (written for the project, not real data)."""
    text = resources.files("switchboard").joinpath("data/demo_messages.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _line(routed: Any, expected: str | None) -> str:
    c = routed.classification
    mark = "" if expected is None else (" ✓" if expected == c.category else f" ✗ (expected {expected})")
    text = routed.text.replace("\n", " ")
    text = text if len(text) <= 60 else text[:57] + "..."
    return (
        f"{routed.channel.value:<9} {c.language:<2} → {routed.queue.value:<16} {c.intent:<17} "
        f"{routed.priority} {c.confidence:.2f}{mark}  {text}{_how(routed)}"
    )


def _how(routed: Any) -> str:
    """Say when the case, not the message alone, chose the queue."""
    if ESCALATED in routed.tags:
        return "  [moved its case to customer service]"
    if routed.rule == FOLLOW_CASE:
        return "  [follows its case]"
    return ""


async def run_demo(url: str, limit: int, interval: float, timeout: float) -> int:
    """Post the demo messages to ingest and print each routing as it arrives on a queue topic."""
    messages = demo_messages()
    if limit:
        messages = messages[:limit]
    run = uuid.uuid4().hex[:8]
    consumer = AIOKafkaConsumer(
        *QUEUE_TOPICS, **KafkaSettings().client_options(), group_id=None, auto_offset_reset="latest"
    )
    await consumer.start()
    expected: dict[str, str | None] = {}
    seen: dict[str, Any] = {}
    posted = asyncio.Event()
    all_seen = asyncio.Event()

    async def watch() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    event = decode(record.value)
                    routed = event.data
                    if routed.message_id in expected and routed.message_id not in seen:
                        seen[routed.message_id] = routed
                        print(_line(routed, expected[routed.message_id]), flush=True)
            if posted.is_set() and len(seen) >= len(expected):
                all_seen.set()

    # Partitions are assigned lazily; read once so "latest" is fixed before posting.
    await consumer.getmany(timeout_ms=500)
    watcher = asyncio.create_task(watch())
    print(f"posting {len(messages)} messages to {url} …\n", flush=True)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            for item in messages:
                body = {k: v for k, v in item.items() if k not in ("expected_category", "expected_intent")}
                body["external_id"] = f"demo-{run}-{item['external_id']}"
                # Authors of this run only: a second run within the case window opens cases of its own.
                body["author"] = {**item["author"], "id": f"{item['author']['id']}-{run}"}
                body["created_at"] = datetime.now(UTC).isoformat()
                response = await client.post("/v1/messages", json=body)
                if response.status_code >= 300:
                    print(f"ingest answered {response.status_code}: {response.text[:200]}")
                    continue
                expected[response.json()["message_id"]] = item.get("expected_category")
                await asyncio.sleep(interval)
        posted.set()
        try:
            await asyncio.wait_for(all_seen.wait(), timeout)
        except TimeoutError:
            print(f"\nno routing seen for {len(expected) - len(seen)} messages after {timeout:.0f}s")
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await consumer.stop()
    by_queue: dict[str, int] = {}
    for routed in seen.values():
        by_queue[routed.queue.value] = by_queue.get(routed.queue.value, 0) + 1
    agree = sum(1 for mid, r in seen.items() if expected[mid] == r.classification.category)
    print(
        f"\nrouted {len(seen)}/{len(expected)}: " + ", ".join(f"{q} {n}" for q, n in sorted(by_queue.items()))
    )
    if seen:
        print(f"category agreed with the demo's label on {agree}/{len(seen)} messages")
    return 0 if len(seen) == len(expected) else 1
