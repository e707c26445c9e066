"""Create the contract's topics on a broker, idempotently."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from switchboard.config import KafkaSettings
from switchboard.contract import ALL_TOPICS

TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(kafka: KafkaSettings, topics: Iterable[str] = ALL_TOPICS) -> list[str]:
    """Create the topics that do not exist yet; return the ones created."""
    admin = AIOKafkaAdminClient(**kafka.client_options(), client_id="switchboard-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(t, kafka.topic_partitions, kafka.topic_replication_factor) for t in missing]
        )
        failed = [
            (topic, code, message)
            for topic, code, message in response.topic_errors
            if code not in (0, TOPIC_ALREADY_EXISTS)
        ]
        if failed:
            raise RuntimeError(f"could not create topics: {failed}")
        return missing
    finally:
        await admin.close()
