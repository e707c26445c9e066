"""Generate the contract's JSON Schema snapshots and AsyncAPI 3 document from the event models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from switchboard import __version__
from switchboard.contract import (
    EVENT_CLASSES,
    CaseActivityRecorded,
    CaseRouted,
    CloudEvent,
    MessageClassified,
    MessageReceived,
    SlaBreached,
    SlaEscalated,
    SlaStarted,
    SlaStopped,
    SlaWarning,
    Topic,
    dlq_topic,
    event_type,
)

CONTENT_TYPE = "application/cloudevents+json"
TOPIC_EVENTS: dict[Topic, tuple[type[CloudEvent], ...]] = {
    Topic.MESSAGES_RECEIVED: (MessageReceived,),
    Topic.MESSAGES_CLASSIFIED: (MessageClassified,),
    Topic.CASES_CUSTOMER_SERVICE: (CaseRouted,),
    Topic.CASES_MARKETING: (CaseRouted,),
    Topic.CASES_REVIEW: (CaseRouted,),
    Topic.CASES_ACTIVITY: (CaseActivityRecorded,),
    Topic.SLA_EVENTS: (SlaStarted, SlaWarning, SlaBreached, SlaEscalated, SlaStopped),
}
# Who publishes and who consumes each topic.
SENDS = {
    "ingest": (Topic.MESSAGES_RECEIVED, Topic.CASES_ACTIVITY),
    "classifier": (Topic.MESSAGES_CLASSIFIED,),
    "router": (Topic.CASES_CUSTOMER_SERVICE, Topic.CASES_MARKETING, Topic.CASES_REVIEW),
    "sla": (Topic.SLA_EVENTS,),
}
RECEIVES = {
    "classifier": (Topic.MESSAGES_RECEIVED, Topic.CASES_CUSTOMER_SERVICE, Topic.CASES_MARKETING),
    "router": (Topic.MESSAGES_CLASSIFIED, Topic.CASES_ACTIVITY),
    "sla": (Topic.CASES_CUSTOMER_SERVICE, Topic.CASES_MARKETING, Topic.CASES_REVIEW, Topic.CASES_ACTIVITY),
}
RECORD_HEADERS = {
    "type": "object",
    "description": (
        "Kafka record headers. A consumer that does not trace can ignore `traceparent` and `tracestate`; "
        "the value alone is the whole event."
    ),
    "properties": {
        "ce_type": {"type": "string", "description": "The event's `type`, for routing without parsing."},
        "traceparent": {
            "type": "string",
            "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
            "description": (
                "W3C Trace Context of the span that published the event: the handling of the event that "
                "caused it (same trace id), or the HTTP request that brought a message in. The trace "
                "context's one source of truth; the event itself carries none."
            ),
        },
        "tracestate": {
            "type": "string",
            "maxLength": 512,
            "description": "W3C `tracestate`, passed on unchanged when the trace's caller sent one.",
        },
    },
}
DLQ_HEADERS = {
    "type": "object",
    "description": (
        "The original record's headers (`ce_type`, `traceparent`, `tracestate` among them) plus these, "
        "which say why and from where it came."
    ),
    "properties": {
        f"switchboard.dlq.{name}": {"type": "string", "description": text}
        for name, text in {
            "reason": "undecodable | handler_failed",
            "error": "The exception, type and message.",
            "topic": "The topic the record was read from.",
            "partition": "Its partition.",
            "offset": "Its offset.",
            "group": "The consumer group that gave up on it.",
            "at": "When, ISO 8601.",
        }.items()
    },
}


def event_schemas() -> dict[str, dict[str, Any]]:
    """Return one standalone JSON Schema per event type."""
    return {event_type(cls): cls.model_json_schema(mode="serialization") for cls in EVENT_CLASSES}


def _channel_id(topic: str) -> str:
    return topic.replace(".", "_").replace("-", "_")


def build_asyncapi() -> dict[str, Any]:
    """Build the AsyncAPI 3.0 document of every topic, message and operation."""
    _, defs = models_json_schema(
        [(cls, "serialization") for cls in EVENT_CLASSES], ref_template="#/components/schemas/{model}"
    )
    messages: dict[str, Any] = {
        cls.__name__: {
            "name": event_type(cls),
            "title": cls.__name__,
            "summary": (cls.__doc__ or "").strip(),
            "contentType": CONTENT_TYPE,
            "headers": {"$ref": "#/components/schemas/RecordHeaders"},
            "payload": {"$ref": f"#/components/schemas/{cls.__name__}"},
        }
        for cls in EVENT_CLASSES
    }
    messages["DeadLetter"] = {
        "name": "dead-letter",
        "title": "DeadLetter",
        "summary": "A record that could not be processed, unchanged, with the reason in headers.",
        "headers": DLQ_HEADERS,
        "payload": {"description": "The original record value, byte for byte."},
    }
    channels: dict[str, Any] = {}
    for topic, classes in TOPIC_EVENTS.items():
        channels[_channel_id(topic.value)] = {
            "address": topic.value,
            "messages": {cls.__name__: {"$ref": f"#/components/messages/{cls.__name__}"} for cls in classes},
            "bindings": {"kafka": {"bindingVersion": "0.5.0"}},
        }
        channels[_channel_id(dlq_topic(topic.value))] = {
            "address": dlq_topic(topic.value),
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
        }
    operations: dict[str, Any] = {}
    for action, table in (("send", SENDS), ("receive", RECEIVES)):
        for service, topics in table.items():
            for topic in topics:
                channel = _channel_id(topic.value)
                operations[f"{service}_{action}_{channel}"] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{channel}"},
                    "summary": f"{service} {action}s on {topic.value}",
                    "bindings": {"kafka": {"groupId": {"type": "string", "enum": [service]}}}
                    if action == "receive"
                    else {"kafka": {"bindingVersion": "0.5.0"}},
                }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Switchboard events",
            "version": __version__,
            "description": (
                "Every record value is a CloudEvents 1.0 event in JSON structured mode; the record key "
                "is the event's `partitionkey` (conversation id for messages, case id for cases)."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {**defs["$defs"], "RecordHeaders": RECORD_HEADERS}},
    }


def render() -> dict[str, str]:
    """Return every snapshot file's relative path and text."""
    files = {
        f"schemas/{name}.json": json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in event_schemas().items()
    }
    files["asyncapi.yaml"] = yaml.safe_dump(build_asyncapi(), sort_keys=False, allow_unicode=True, width=110)
    return files


def write_snapshots(directory: Path) -> list[Path]:
    """Write the snapshots under `directory`; return the paths written."""
    written = []
    for relative, text in render().items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def check_snapshots(directory: Path) -> list[str]:
    """Return one line per snapshot that is missing or differs from the models."""
    drift = []
    for relative, text in render().items():
        path = directory / relative
        if not path.exists():
            drift.append(f"missing: {path}")
        elif path.read_text() != text:
            drift.append(f"stale: {path} (run `switchboard contract` and commit the result)")
    return drift
