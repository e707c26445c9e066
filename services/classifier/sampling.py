"""A random sample of your own traffic, for your team to label (`switchboard sample`, `switchboard label`).

Measured on real messages (`bench/own_labels_curve.py`), a few hundred labelled messages of a brand's own
traffic are what moves the model toward it, and `switchboard retrain --sample` needs such a sample to say
what a candidate breaks. The sample is drawn from `messages.classified` on the broker: every record
published since a time, each kept or not by a hash of its place in the topic and a seed, so the same
topic and seed give the same sample whatever order the partitions are read in. Only the sampled records
are decoded. The labelling shows the text alone, not the model's decision, so the labels do not lean
toward it.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from switchboard.config import KafkaSettings
from switchboard.contract import MessageClassified, Topic, decode

log = logging.getLogger(__name__)
CHOICES = {"s": "support", "m": "marketing"}
ANSWERS = (*CHOICES, "k", "q")
PROMPT = "support (s), marketing (m), skip (k), quit (q)? "


@dataclass(frozen=True, slots=True)
class Sample:
    """The lines drawn, and what was read to draw them."""

    lines: list[dict]
    # Records published since the start of the window, and those among the drawn that were not a
    # classified message (a dead letter would say why; here they are only counted).
    read: int
    undecodable: int


def _draw(seed: int, record: ConsumerRecord) -> str:
    return hashlib.sha256(f"{seed}:{record.topic}:{record.partition}:{record.offset}".encode()).hexdigest()


async def draw(
    kafka: KafkaSettings,
    size: int,
    since: datetime,
    seed: int = 0,
    topic: str = Topic.MESSAGES_CLASSIFIED.value,
    exclude: frozenset[str] = frozenset(),
) -> Sample:
    """Read the topic's records published since `since`, to its end at the call; keep `size` of them.

    Messages whose id is in `exclude` (a sample labelled before) are passed over, and as many more drawn.
    """
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return Sample([], 0, 0)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        after = int(since.timestamp() * 1000)
        left = {tp for tp in partitions if ends[tp] > 0}
        left -= await _seek_to_window(consumer, partitions, after)
        # The smallest draws: a bottom-k sample, the same whatever order the records come in. A few more
        # than wanted, for the excluded, the poison records and the second copies passed over below.
        bound = size + len(exclude) + max(10, size // 10)
        kept: list[_Largest] = []
        read = 0
        while left:
            polled = await consumer.getmany(*left, timeout_ms=500, max_records=5000)
            for tp, records in polled.items():
                for record in records:
                    if record.offset >= ends[tp] or record.timestamp < after:
                        continue
                    read += 1
                    entry = (_draw(seed, record), record)
                    if len(kept) < bound:
                        heapq.heappush(kept, _Largest(entry))
                    elif entry[0] < kept[0].key:
                        heapq.heapreplace(kept, _Largest(entry))
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()
    lines: dict[str, dict] = {}
    undecodable = 0
    for entry in sorted(kept, key=lambda e: e.key):
        try:
            event = decode(entry.record.value)
        except ValidationError:
            undecodable += 1
            continue
        if not isinstance(event, MessageClassified):
            undecodable += 1
            continue
        message = event.data.message
        if message.message_id in exclude:
            continue
        if len(lines) == size and message.message_id not in lines:
            break
        # A message published twice (a redelivery) is one message.
        lines.setdefault(
            message.message_id,
            {
                "id": message.message_id,
                "text": message.text,
                "channel": message.channel.value,
                "language": event.data.classification.language,
            },
        )
    return Sample(list(lines.values()), read, undecodable)


async def _seek_to_window(consumer: AIOKafkaConsumer, partitions: list[TopicPartition], after: int) -> set:
    """Start each partition at its first record published since `after`; return those that have none.

    The records are still filtered by their timestamps: a broker may answer an earlier offset (the
    embedded one answers the first), and one that cannot answer has every partition read from its start.
    """
    await consumer.seek_to_beginning(*partitions)
    try:
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, after))
    except KafkaError as exc:
        log.info("the broker cannot find offsets by time (%s): reading the topic from its start", exc)
        return set()
    for tp, at in found.items():
        if at is not None:
            consumer.seek(tp, at.offset)
    return {tp for tp, at in found.items() if at is None}


class _Largest:
    """A heap entry ordered from the largest draw down, so the heap's top is the one to drop."""

    __slots__ = ("key", "record")

    def __init__(self, entry: tuple[str, ConsumerRecord]) -> None:
        self.key, self.record = entry

    def __lt__(self, other: _Largest) -> bool:
        return self.key > other.key


def ids_in(paths: Iterable[Path]) -> frozenset[str]:
    """Return the message ids of sampled or labelled files, to pass them over; refuse a line not JSON."""
    ids = set()
    for path in paths:
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if raw.strip():
                try:
                    ids.add(json.loads(raw).get("id"))
                except (ValueError, AttributeError):
                    raise ValueError(f"{path}:{number} is not a JSON object") from None
    return frozenset(ids)


def unlabelled(lines: Iterable[str], done: AbstractSet[str]) -> list[dict]:
    """Return the sampled lines not labelled yet (by id, or carrying a category); refuse any other line."""
    pending = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        if not isinstance(line, dict) or not isinstance(line.get("text"), str):
            raise ValueError(f"line {number} is not a sampled message (a JSON object with a text)")
        if line.get("id") not in done and "category" not in line:
            pending.append(line)
    return pending


def label(pending: list[dict], ask: Callable[[str], str], say: Callable[[str], None]) -> Iterator[dict]:
    """Ask a person the category of each line; yield each labelled line.

    `s` support, `m` marketing, `k` skip (asked again next time), `q` stop.
    """
    for number, line in enumerate(pending, start=1):
        where = f"{line.get('channel', 'chat')}, {line.get('language', '?')}"
        say(f"\n[{number}/{len(pending)}] {where}:\n{line['text']}")
        while (answer := ask(PROMPT).strip().lower()) not in ANSWERS:
            say("  s, m, k or q")
        if answer == "q":
            return
        if answer in CHOICES:
            yield {**line, "category": CHOICES[answer]}
