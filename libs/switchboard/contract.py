"""The event contract: topic names, the CloudEvents envelope and every event Switchboard publishes.

Every Kafka record value is a CloudEvents 1.0 event in JSON structured mode. The record key is the
event's `partitionkey` extension attribute (the conversation id for messages, the case id for cases),
so the events of one conversation or case stay in order on one partition.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum, StrEnum
from functools import partial
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SPEC_VERSION = "1.0"
# Ids derived from a cause are UUIDv5 in this namespace, so reprocessing a record yields the same ids.
ID_NAMESPACE = uuid.UUID("6f1c0d3e-5b8a-4c1e-9e0b-2f7f5a9d3c11")
_NAMESPACE_BYTES = ID_NAMESPACE.bytes
MAX_SAFE_INTEGER = 2**53 - 1
M = TypeVar("M", bound=BaseModel)


class Topic(StrEnum):
    """Kafka topics of the public contract."""

    MESSAGES_RECEIVED = "messages.received"
    MESSAGES_CLASSIFIED = "messages.classified"
    CASES_CUSTOMER_SERVICE = "cases.customer-service"
    CASES_MARKETING = "cases.marketing"
    CASES_REVIEW = "cases.review"
    CASES_ACTIVITY = "cases.activity"
    SLA_EVENTS = "sla.events"


def dlq_topic(topic: str) -> str:
    """Return the dead-letter topic of a topic."""
    return f"{topic}.dlq"


ALL_TOPICS: tuple[str, ...] = tuple(t.value for t in Topic) + tuple(dlq_topic(t.value) for t in Topic)


Visibility = Literal["public", "private"]


class Channel(StrEnum):
    """Where a customer wrote."""

    X = "x"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    MESSENGER = "messenger"
    WHATSAPP = "whatsapp"
    EMAIL = "email"
    CHAT = "chat"
    SMS = "sms"
    REVIEW = "review"


PUBLIC_CHANNELS = frozenset({Channel.X, Channel.FACEBOOK, Channel.INSTAGRAM, Channel.REVIEW})


def default_visibility(channel: Channel) -> Visibility:
    """Return how visible a message on this channel usually is: posts and reviews are public."""
    return "public" if channel in PUBLIC_CHANNELS else "private"


class Queue(StrEnum):
    """The teams a case can be handed to."""

    CUSTOMER_SERVICE = "customer-service"
    MARKETING = "marketing"
    REVIEW = "review"

    @property
    def topic(self) -> Topic:
        """Return the Kafka topic of this queue."""
        return Topic(f"cases.{self.value}")


Category = Literal["support", "marketing"]
Language = Literal["fr", "en", "other"]
Sentiment = Literal["negative", "neutral", "positive"]
Priority = Literal["P1", "P2", "P3", "P4"]
ActivityType = Literal["responded", "resolved", "waiting_on_customer", "reopened", "reassigned"]
SlaClock = Literal["first_response", "next_response", "resolution"]

SUPPORT_INTENTS = (
    "complaint",
    "outage",
    "delivery",
    "billing",
    "account",
    "technical",
    "returns_refund",
    "product_question",
)
MARKETING_INTENTS = ("praise", "campaign", "partnership_press", "chatter", "spam")
Intent = Literal[
    "complaint",
    "outage",
    "delivery",
    "billing",
    "account",
    "technical",
    "returns_refund",
    "product_question",
    "praise",
    "campaign",
    "partnership_press",
    "chatter",
    "spam",
]


class Model(BaseModel):
    """Base of every contract model: unknown fields are refused, so typos surface."""

    model_config = ConfigDict(extra="forbid")


class Author(Model):
    """Who wrote a message, as the channel knows them."""

    id: str = Field(min_length=1, max_length=256)
    handle: str | None = Field(default=None, max_length=256)
    name: str | None = Field(default=None, max_length=512)
    followers: int | None = Field(
        default=None,
        ge=0,
        # The largest integer every JSON reader holds exactly (I-JSON, RFC 7493): JavaScript loses digits
        # beyond it and 64-bit readers overflow soon after; no account has that many followers.
        le=MAX_SAFE_INTEGER,
        description="The author's reach when the channel gives it.",
    )


class Message(Model):
    """One normalised inbound message, whatever channel it came from."""

    message_id: str = Field(description="Switchboard's id for this message.")
    channel: Channel
    external_id: str = Field(description="The channel's own id for this message.")
    conversation_id: str = Field(description="Messages of one thread, DM pair or email thread share it.")
    author: Author
    text: str
    created_at: AwareDatetime
    received_at: AwareDatetime
    visibility: Visibility
    in_reply_to: str | None = None
    language: str | None = Field(default=None, description="Language hint from the channel, if any.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class Classification(Model):
    """What the classifier decided about a message."""

    category: Category
    intent: Intent
    is_complaint: bool
    language: Language
    sentiment: Sentiment
    sentiment_score: float = Field(ge=-1.0, le=1.0)
    priority: Priority
    reply_privately: bool
    confidence: float = Field(ge=0.0, le=1.0)
    model_version: str
    explanation: list[str] = Field(default_factory=list, description="The terms that weighed most.")


class ClassifiedMessage(Model):
    """A message and its classification."""

    message: Message
    classification: Classification


# The rule or a tag of a routing its case decided rather than the routing rules (docs/events.md): a
# message published again, or a later one sent, where a person moved its case (rule); a later message
# sent where its case is (rule); one that moved its marketing or review case to customer service (tag).
REASSIGNED = "reassigned"
FOLLOW_CASE = "follow-case"
ESCALATED = "escalated"


class RoutedCase(Model):
    """A case handed to a queue."""

    case_id: str
    message_id: str
    conversation_id: str
    channel: Channel
    external_id: str
    text: str
    author: Author
    visibility: Visibility
    queue: Queue
    skill_group: str | None = None
    priority: Priority
    tags: list[str] = Field(
        default_factory=list,
        description="The rule's tags and the router's: `complaint`, `unsure`, `linked`, `reassigned`, "
        "`follow-case`, `escalated` (this message moved its case to customer service).",
    )
    rule: str = Field(
        description="The routing rule that decided, or `reassigned` (a person moved the case) or "
        "`follow-case` (a later message sent to its case's queue, not where it alone would go)."
    )
    is_new_case: bool
    message_created_at: AwareDatetime
    classification: Classification


class CaseActivity(Model):
    """Something the contact centre did on a case."""

    activity_id: str
    case_id: str
    type: ActivityType
    at: AwareDatetime
    agent: str | None = None
    note: str | None = None
    to_queue: Queue | None = Field(default=None, description="Target queue of a `reassigned` activity.")


class SlaTimer(Model):
    """The state of one SLA clock of a case when an SLA event happened."""

    case_id: str
    clock: SlaClock
    policy: str
    queue: Queue
    channel: Channel
    priority: Priority
    started_at: AwareDatetime
    due_at: AwareDatetime
    target_seconds: float
    elapsed_seconds: float = Field(description="Business time elapsed on the clock when the event happened.")
    threshold: float | None = Field(default=None, description="Fraction of the target, for warnings.")
    level: int | None = Field(default=None, description="Escalation level, for escalations.")
    reason: str | None = Field(default=None, description="Why a clock stopped.")


# Attributes CloudEvents requires that the models fill in when an event is built in code: a document must
# carry them. A record without an id, given a new one on each reading, would pass every consumer's dedupe
# as a new event on each redelivery.
_REQUIRED_ON_THE_WIRE = ("specversion", "id")


def _required_on_the_wire(schema: dict[str, Any]) -> None:
    """Mark the attributes CloudEvents requires as required in the JSON Schema, as `decode` does.

    The models fill them in when an event is built in code, so pydantic would list them as optional;
    `type` has a default too, and `decode` needs it to pick the event's class.
    """
    required = schema.setdefault("required", [])
    for name in (*_REQUIRED_ON_THE_WIRE, "type"):
        if name not in required:
            required.append(name)


class CloudEvent(Model):
    """A CloudEvents 1.0 envelope in JSON structured mode."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_required_on_the_wire)

    specversion: Literal["1.0"] = SPEC_VERSION
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    time: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str
    datacontenttype: Literal["application/json"] = "application/json"
    partitionkey: str = Field(description="CloudEvents partitioning extension: the Kafka record key.")
    data: Any

    TOPIC: ClassVar[Topic]

    def topic(self) -> str:
        """Return the topic this event is published to."""
        return self.TOPIC.value


class MessageReceived(CloudEvent):
    """Ingest accepted a message."""

    type: Literal["switchboard.message.received"] = "switchboard.message.received"
    data: Message
    TOPIC: ClassVar[Topic] = Topic.MESSAGES_RECEIVED


class MessageClassified(CloudEvent):
    """The classifier decided what a message is about."""

    type: Literal["switchboard.message.classified"] = "switchboard.message.classified"
    data: ClassifiedMessage
    TOPIC: ClassVar[Topic] = Topic.MESSAGES_CLASSIFIED


class CaseRouted(CloudEvent):
    """The router handed a case to a queue."""

    type: Literal["switchboard.case.routed"] = "switchboard.case.routed"
    data: RoutedCase
    TOPIC: ClassVar[Topic] = Topic.CASES_REVIEW

    def topic(self) -> str:
        """Return the topic of the queue the case went to."""
        return self.data.queue.topic.value


class CaseActivityRecorded(CloudEvent):
    """The contact centre acted on a case."""

    type: Literal["switchboard.case.activity_recorded"] = "switchboard.case.activity_recorded"
    data: CaseActivity
    TOPIC: ClassVar[Topic] = Topic.CASES_ACTIVITY


class SlaStarted(CloudEvent):
    """An SLA clock started on a case."""

    type: Literal["switchboard.sla.started"] = "switchboard.sla.started"
    data: SlaTimer
    TOPIC: ClassVar[Topic] = Topic.SLA_EVENTS


class SlaWarning(CloudEvent):
    """An SLA clock passed a warning threshold."""

    type: Literal["switchboard.sla.warning"] = "switchboard.sla.warning"
    data: SlaTimer
    TOPIC: ClassVar[Topic] = Topic.SLA_EVENTS


class SlaBreached(CloudEvent):
    """An SLA clock passed its due time without an answer."""

    type: Literal["switchboard.sla.breached"] = "switchboard.sla.breached"
    data: SlaTimer
    TOPIC: ClassVar[Topic] = Topic.SLA_EVENTS


class SlaEscalated(CloudEvent):
    """A breached case reached a further escalation level."""

    type: Literal["switchboard.sla.escalated"] = "switchboard.sla.escalated"
    data: SlaTimer
    TOPIC: ClassVar[Topic] = Topic.SLA_EVENTS


class SlaStopped(CloudEvent):
    """An SLA clock stopped: answered, resolved or paused."""

    type: Literal["switchboard.sla.stopped"] = "switchboard.sla.stopped"
    data: SlaTimer
    TOPIC: ClassVar[Topic] = Topic.SLA_EVENTS


EVENT_CLASSES: tuple[type[CloudEvent], ...] = (
    MessageReceived,
    MessageClassified,
    CaseRouted,
    CaseActivityRecorded,
    SlaStarted,
    SlaWarning,
    SlaBreached,
    SlaEscalated,
    SlaStopped,
)

AnyEvent = Annotated[
    MessageReceived
    | MessageClassified
    | CaseRouted
    | CaseActivityRecorded
    | SlaStarted
    | SlaWarning
    | SlaBreached
    | SlaEscalated
    | SlaStopped,
    Field(discriminator="type"),
]
_EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def event_type(cls: type[CloudEvent]) -> str:
    """Return the CloudEvents `type` of an event class."""
    return cls.model_fields["type"].default


_IMMUTABLE = (str, int, float, bool, bytes, type(None), tuple, frozenset, Enum)
# Per model class: its field names in order, the defaults shared as they are, and the defaults made anew.
_PLANS: dict[type[BaseModel], tuple[tuple[str, ...], dict[str, Any], dict[str, Callable[[], Any]]]] = {}


def _plan(cls: type[BaseModel]) -> tuple[tuple[str, ...], dict[str, Any], dict[str, Callable[[], Any]]]:
    if cls.__pydantic_post_init__ or cls.__private_attributes__ or cls.model_config.get("extra") == "allow":
        raise TypeError(f"{cls.__name__} needs pydantic's own model_construct")
    shared: dict[str, Any] = {}
    fresh: dict[str, Callable[[], Any]] = {}
    for name, info in cls.model_fields.items():
        if info.alias is not None or info.validation_alias is not None:
            raise TypeError(f"{cls.__name__}.{name} has an alias: use model_construct")
        if info.default_factory is not None:
            if info.default_factory_takes_validated_data:
                raise TypeError(f"{cls.__name__}.{name}: a default factory that takes data")
            fresh[name] = info.default_factory  # type: ignore[assignment]
        elif not info.is_required():
            if isinstance(info.default, _IMMUTABLE):
                shared[name] = info.default
            else:
                fresh[name] = partial(copy.deepcopy, info.default)
    plan = (tuple(cls.model_fields), shared, fresh)
    _PLANS[cls] = plan
    return plan


def trusted(cls: type[M], /, **values: Any) -> M:
    """Build a model from values that already have its fields' types, without validating them.

    The same instance as `cls.model_construct(**values)` (defaults filled in, the given names as the set
    fields), at about a third of its cost: the field plan is worked out once per class. For the hot paths
    that build events from data validated on the way in; values must be field names, not aliases.
    """
    names, shared, fresh = _PLANS.get(cls) or _plan(cls)
    if len(values) == len(names) and tuple(values) == names:
        # Every field given, in the fields' order: the keyword dict (this call's own) is the instance's.
        fields = values
    else:
        fields = {}
        for name in names:
            if name in values:
                fields[name] = values[name]
            elif name in shared:
                fields[name] = shared[name]
            elif name in fresh:
                fields[name] = fresh[name]()
    instance = cls.__new__(cls)
    _set = object.__setattr__
    _set(instance, "__dict__", fields)
    _set(instance, "__pydantic_fields_set__", set(values))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


def derive_id(cause_id: str, step: str) -> str:
    """Return a stable event id for the event that `step` makes of `cause_id`: uuid5(ID_NAMESPACE, ...).

    Computed here rather than with `uuid.uuid5`, which builds two UUID objects per id; the handlers derive
    two ids per message, on the hot path. The result is the same string.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{cause_id}/{step}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode(event: CloudEvent) -> bytes:
    """Serialise an event as a CloudEvents JSON document."""
    # The serializer's own bytes: `model_dump_json` would decode them to a str, then `.encode()` copy them
    # back (the same bytes, about a sixth more of the cost on every event published).
    return event.__pydantic_serializer__.to_json(event, exclude_none=True)


def decode(raw: bytes | str) -> CloudEvent:
    """Parse and validate a CloudEvents JSON document into its event class.

    Raises pydantic.ValidationError for anything that is not a known, valid event.
    """
    event = _EVENT_ADAPTER.validate_json(raw)
    missing = [name for name in _REQUIRED_ON_THE_WIRE if name not in event.model_fields_set]
    if missing:
        errors = [{"type": "missing", "loc": (event.type, name), "input": {}} for name in missing]
        raise ValidationError.from_exception_data("CloudEvent", errors)  # type: ignore[arg-type]
    return event
