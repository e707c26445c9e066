"""The event contract: envelopes round-trip, bad records are refused, snapshots match the models."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from switchboard.asyncapi import build_asyncapi, check_snapshots, render, write_snapshots
from switchboard.contract import (
    ALL_TOPICS,
    EVENT_CLASSES,
    ID_NAMESPACE,
    Author,
    CaseRouted,
    Classification,
    Message,
    MessageReceived,
    Queue,
    Topic,
    decode,
    derive_id,
    encode,
    event_type,
    trusted,
)
from switchboard.testing import case_routed, support_classification

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def message() -> Message:
    return Message(
        message_id="m1",
        channel="x",
        external_id="1790000000000000001",
        conversation_id="x:author:42",
        author=Author(id="42", handle="@marie", name="Marie"),
        text="toujours pas reçu ma commande 😡",
        created_at=NOW,
        received_at=NOW,
        visibility="public",
    )


def classification(confidence: float = 0.9) -> Classification:
    return support_classification(
        is_complaint=True,
        language="fr",
        sentiment="negative",
        sentiment_score=-0.7,
        priority="P2",
        reply_privately=True,
        confidence=confidence,
    )


def routed(queue: Queue) -> CaseRouted:
    return case_routed(
        "c1", message(), queue=queue, priority="P2", rule="support", classification=classification()
    )


def test_an_event_round_trips_through_its_json_form():
    event = MessageReceived(
        source="switchboard/ingest", subject="m1", partitionkey="x:author:42", data=message()
    )
    decoded = decode(encode(event))
    assert isinstance(decoded, MessageReceived)
    assert decoded == event


def test_the_envelope_carries_every_cloudevents_attribute():
    document = json.loads(encode(routed(Queue.MARKETING)))
    for attribute in ("specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data"):
        assert attribute in document
    assert document["specversion"] == "1.0"
    assert document["type"] == "switchboard.case.routed"
    data = document["data"]
    for field in ("case_id", "message_id", "channel", "external_id", "text", "queue", "classification"):
        assert field in data
    for field in ("category", "intent", "language", "confidence", "model_version"):
        assert field in data["classification"]


@pytest.mark.parametrize("queue", list(Queue))
def test_a_routed_case_is_published_to_its_queue_topic(queue: Queue):
    assert routed(queue).topic() == f"cases.{queue.value}"


def test_an_unknown_event_type_is_refused():
    document = json.loads(encode(routed(Queue.REVIEW)))
    document["type"] = "switchboard.case.teleported"
    with pytest.raises(ValidationError):
        decode(json.dumps(document))


@pytest.mark.parametrize("attribute", ["id", "specversion"])
def test_an_event_without_an_attribute_cloudevents_requires_is_refused_not_completed(attribute: str):
    # Given a fresh random id on each reading, a redelivered record would pass the consumers' dedupe as a
    # new event every time, and its outputs (ids derived from it) would be published again.
    document = json.loads(encode(routed(Queue.REVIEW)))
    del document[attribute]
    with pytest.raises(ValidationError, match=attribute):
        decode(json.dumps(document).encode())


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=event_type)
def test_the_json_schema_requires_exactly_the_envelope_attributes_decode_requires(cls):
    # The published schema is what integrators validate against: it must refuse what consumers refuse,
    # and accept what they accept.
    schema = json.loads((ROOT / "docs" / "contract" / "schemas" / f"{event_type(cls)}.json").read_text())
    document = json.loads(encode(routed(Queue.REVIEW)))
    for attribute in [a for a in document if a != "data"]:
        partial = {k: v for k, v in document.items() if k != attribute}
        try:
            decode(json.dumps(partial))
        except ValidationError:
            refused = True
        else:
            refused = False
        assert (attribute in schema["required"]) == refused, attribute
    assert "data" in schema["required"]


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"[]", b'{"specversion":"1.0"}', "\udcff".encode("utf-8", "surrogatepass")]
)
def test_garbage_is_refused_with_a_validation_error(raw: bytes):
    with pytest.raises((ValidationError, ValueError)):
        decode(raw)


def test_a_timestamp_without_a_timezone_is_refused():
    with pytest.raises(ValidationError):
        Message.model_validate({**message().model_dump(), "created_at": "2026-11-22T09:30:00"})


def test_derived_ids_are_stable_and_distinct_per_step():
    assert derive_id("ev-1", "routed") == derive_id("ev-1", "routed")
    assert derive_id("ev-1", "routed") != derive_id("ev-1", "classified")
    assert derive_id("ev-1", "routed") != derive_id("ev-2", "routed")


# Any text that UTF-8 can encode (lone surrogates cannot be, in ids or anywhere in JSON).
ENCODABLE = st.text(st.characters(exclude_categories=("Cs",)))


@given(ENCODABLE, ENCODABLE)
def test_derived_ids_are_the_uuid5_of_cause_and_step_in_the_contract_namespace(cause: str, step: str):
    # Ids already published were made with uuid.uuid5; the faster derivation must give the same strings.
    assert derive_id(cause, step) == str(uuid.uuid5(ID_NAMESPACE, f"{cause}/{step}"))


def test_every_contract_topic_has_a_dead_letter_topic():
    for topic in Topic:
        assert f"{topic.value}.dlq" in ALL_TOPICS


def test_the_committed_schema_snapshots_match_the_models():
    assert check_snapshots(ROOT / "docs" / "contract") == []


def test_a_changed_snapshot_is_reported_as_drift(tmp_path: Path):
    write_snapshots(tmp_path)
    schema = tmp_path / "schemas" / "switchboard.case.routed.json"
    schema.write_text(schema.read_text().replace('"queue"', '"team"'))
    (tmp_path / "asyncapi.yaml").unlink()
    drift = check_snapshots(tmp_path)
    assert any("switchboard.case.routed.json" in line for line in drift)
    assert any("missing" in line and "asyncapi.yaml" in line for line in drift)


def test_the_asyncapi_document_names_every_topic_and_resolves_its_references():
    document = build_asyncapi()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == set(ALL_TOPICS)
    text = json.dumps(document)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/')[1:]}:
        node = document
        for key in ref.split("/"):
            node = node[key]
    assert set(document["components"]["messages"]) >= {cls.__name__ for cls in EVENT_CLASSES}


def test_there_is_one_schema_snapshot_per_event_type():
    names = {path for path in render() if path.startswith("schemas/")}
    assert names == {f"schemas/{event_type(cls)}.json" for cls in EVENT_CLASSES}


def _models_in(model) -> list:
    """Return a model and every model among its field values, depth first."""
    found = [model]
    for name in type(model).model_fields:
        value = getattr(model, name)
        if hasattr(type(value), "model_fields"):
            found += _models_in(value)
    return found


@pytest.mark.parametrize("given", ["all", "all, last first", "required"])
def test_trusted_builds_the_instance_model_construct_builds(given: str):
    event = routed(Queue.CUSTOMER_SERVICE)
    received = MessageReceived(source="t", subject="m1", partitionkey="k", data=message())
    for model in [*_models_in(event), *_models_in(received)]:
        cls = type(model)
        names = {
            "all": list(cls.model_fields),
            # Every field, not in the fields' order: the instance keeps the fields' order all the same.
            "all, last first": list(cls.model_fields)[::-1],
            "required": [n for n, f in cls.model_fields.items() if f.is_required()],
        }[given]
        values = {name: getattr(model, name) for name in names}
        built, reference = trusted(cls, **values), cls.model_construct(**values)
        made_anew = {n for n, f in cls.model_fields.items() if f.default_factory is not None} - set(names)
        assert built.model_fields_set == reference.model_fields_set == set(values)
        assert list(built.__dict__) == list(reference.__dict__)
        for name in set(cls.model_fields) - made_anew:
            assert getattr(built, name) == getattr(reference, name), (cls.__name__, name)
        if given != "required":
            assert built == reference
            assert built.model_dump_json() == reference.model_dump_json()
