"""The connection options every aiokafka client of a service gets from KafkaSettings."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from switchboard.bus import make_producer
from switchboard.config import KafkaSettings


def test_clients_refresh_metadata_every_30_seconds_by_default():
    assert KafkaSettings().client_options()["metadata_max_age_ms"] == 30_000


def test_the_metadata_refresh_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SWITCHBOARD_KAFKA_METADATA_MAX_AGE_MS", "5000")
    assert KafkaSettings().client_options()["metadata_max_age_ms"] == 5000
    monkeypatch.setenv("SWITCHBOARD_KAFKA_METADATA_MAX_AGE_MS", "0")
    with pytest.raises(ValidationError):
        KafkaSettings()


async def test_producer_consumer_and_admin_client_get_the_metadata_refresh():
    # aiokafka's own default is 5 minutes: a topic created after a consumer subscribed waited that long.
    kafka = KafkaSettings(metadata_max_age_ms=12_000)
    producer = make_producer(kafka, client_id="test")
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id="test")
    admin = AIOKafkaAdminClient(**kafka.client_options())
    try:
        assert producer.client._metadata_max_age_ms == 12_000
        assert consumer._client._metadata_max_age_ms == 12_000
        assert admin._client._metadata_max_age_ms == 12_000
    finally:
        await producer.stop()
        await consumer.stop()
        await admin.close()
