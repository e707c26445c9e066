"""Cross-channel linking: one customer's tweet, DM and email about one order make one case."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from router import handlers
from router.handlers import Deps, route_message, route_messages
from router.identifiers import LinkPolicy, identify
from router.rules import SHIPPED_RULES, load_rules
from router.store import RedisCaseStore
from switchboard.contract import (
    Author,
    CaseRouted,
    Classification,
    Message,
    MessageClassified,
    Queue,
    RoutedCase,
    encode,
)
from switchboard.testing import message_classified, support_classification

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
RULES = load_rules(SHIPPED_RULES)
LINK_ALL = LinkPolicy()


def classified(
    message_id: str,
    channel: str,
    conversation: str,
    author: str,
    text: str,
    classification: Classification | None = None,
) -> MessageClassified:
    message = Message(
        message_id=message_id,
        channel=channel,
        external_id=message_id,
        conversation_id=conversation,
        author=Author(id=author),
        text=text,
        created_at=NOW,
        received_at=NOW,
        visibility="public" if channel == "x" and ":dm:" not in conversation else "private",
    )
    if classification is None:
        classification = support_classification(
            is_complaint=True, language="fr", sentiment="negative", sentiment_score=-0.5, reply_privately=True
        )
    return message_classified(message, classification)


class Linked(list):
    def __call__(self, routed: RoutedCase) -> None:
        self.append(routed.message_id)


@pytest.fixture
def linked() -> Linked:
    return Linked()


def make_deps(redis: Redis, prefix: str, linked: Linked, policy: LinkPolicy = LINK_ALL, window: int = 3600):
    return Deps(
        cases=RedisCaseStore(redis, prefix),
        rules=lambda: RULES,
        window_seconds=window,
        clock=lambda: NOW,
        identify=lambda message: identify(message, policy),
        on_linked=linked,
    )


@pytest.fixture
def deps(redis: Redis, key_prefix: str, linked: Linked) -> Deps:
    return make_deps(redis, key_prefix, linked)


async def route(deps: Deps, event: MessageClassified) -> RoutedCase:
    (routed,) = await route_message(event, deps)
    return routed.data


async def test_a_tweet_then_a_dm_then_an_email_quoting_the_order_join_one_case(deps: Deps, linked: Linked):
    tweet = await route(
        deps, classified("m1", "x", "x:author:42", "42", "@brand ma commande #A-48213 n'est jamais arrivée")
    )
    dm = await route(deps, classified("m2", "x", "x:dm:42:99", "42", "je vous écris en privé"))
    email = await route(
        deps,
        classified(
            "m3", "email", "email:<r1@mail>", "marie@example.fr", "Bonjour, commande A-48213 toujours rien"
        ),
    )
    assert tweet.is_new_case and not dm.is_new_case and not email.is_new_case
    assert tweet.case_id == dm.case_id == email.case_id
    assert "linked" not in tweet.tags and "linked" in dm.tags and "linked" in email.tags
    assert linked == ["m2", "m3"]
    case = await deps.cases.get(tweet.case_id)
    assert case["channels"] == ["email", "x"]
    assert case["message_ids"] == ["m1", "m2", "m3"]


async def test_a_later_message_in_the_linked_conversation_stays_in_the_same_case(deps: Deps):
    first = await route(
        deps, classified("m1", "sms", "sms:brand:+33612345678", "+33612345678", "colis perdu")
    )
    email = await route(
        deps, classified("m2", "email", "email:<r2@mail>", "a@b.fr", "mon numéro est le 06 12 34 56 78")
    )
    again = await route(deps, classified("m3", "email", "email:<r2@mail>", "a@b.fr", "toujours rien"))
    assert first.case_id == email.case_id == again.case_id


async def test_customers_who_share_no_identifier_get_their_own_cases(deps: Deps):
    one = await route(deps, classified("m1", "email", "email:<a@mail>", "a@b.fr", "commande 111111 perdue"))
    two = await route(deps, classified("m2", "email", "email:<b@mail>", "c@d.fr", "commande 222222 perdue"))
    assert one.case_id != two.case_id and two.is_new_case


async def test_an_identifier_of_a_resolved_case_opens_a_new_case(deps: Deps):
    old = await route(deps, classified("m1", "x", "x:author:42", "42", "commande 123456 perdue"))
    await deps.cases.record_activity(old.case_id, "resolved", NOW)
    new = await route(deps, classified("m2", "email", "email:<r@mail>", "a@b.fr", "commande 123456 encore"))
    assert new.is_new_case and new.case_id != old.case_id


async def test_the_brands_own_address_links_nobody(redis: Redis, key_prefix: str, linked: Linked):
    deps = make_deps(redis, key_prefix, linked, LinkPolicy.from_entries(["@brand.example"]))
    text = "j'ai déjà écrit à support@brand.example"
    one = await route(deps, classified("m1", "chat", "chat:1", "v1", text))
    two = await route(deps, classified("m2", "chat", "chat:2", "v2", text))
    assert one.case_id != two.case_id and linked == []


async def test_messages_of_many_conversations_naming_one_order_at_once_make_one_case(deps: Deps):
    events = [classified(f"m{n}", "chat", f"chat:{n}", f"v{n}", "commande 123456 perdue") for n in range(20)]
    routed = await asyncio.gather(*(route(deps, e) for e in events))
    assert len({r.case_id for r in routed}) == 1
    assert sum(r.is_new_case for r in routed) == 1


async def test_identifier_pointers_live_as_long_as_the_case_window(
    redis: Redis, key_prefix: str, linked: Linked
):
    deps = make_deps(redis, key_prefix, linked, window=600)
    await route(
        deps, classified("m1", "chat", "chat:1", "v1", "commande 123456, mail a@b.fr, tel 0612345678")
    )
    keys = [k async for k in redis.scan_iter(match=f"{key_prefix}router:link:*", count=10_000)]
    assert len(keys) == 3
    for key in keys:
        assert 0 < await redis.ttl(key) <= 600
    assert not [k for k in keys if b"a@b.fr" in k or b"123456" in k], "index keys must not spell out PII"


async def test_a_customer_message_on_a_resolved_case_reopens_it(deps: Deps):
    first = await route(deps, classified("m1", "chat", "chat:1", "v1", "mon colis"))
    await deps.cases.record_activity(first.case_id, "resolved", NOW)
    assert await deps.cases.open_cases(Queue.CUSTOMER_SERVICE, 10) == []
    again = await route(deps, classified("m2", "chat", "chat:1", "v1", "en fait toujours rien"))
    assert again.case_id == first.case_id
    assert (await deps.cases.get(first.case_id))["status"] == "open"
    assert [c["case_id"] for c in await deps.cases.open_cases(Queue.CUSTOMER_SERVICE, 10)] == [first.case_id]


async def test_routings_built_without_validation_are_what_validation_makes_of_them(deps: Deps):
    # The handler builds drafts and events with `trusted` (no validation): each must be the same model,
    # field for field and byte for byte, as validating its own JSON gives.
    events = [
        classified("v1", "x", "x:author:7", "7", "@brand order #A-11223 never came"),
        classified("v2", "email", "email:t1", "ana@example.com", "Invoice 2026-3 charged twice"),
        classified(
            "v3",
            "facebook",
            "fb:post:1:9",
            "9",
            "love the new campaign, count me in!",
            support_classification(category="marketing", intent="campaign", priority="P4"),
        ),
    ]
    routed = [out for outputs in await route_messages(events, deps) for out in outputs]
    assert [r.data.message_id for r in routed] == ["v1", "v2", "v3"]
    for event in routed:
        again = CaseRouted.model_validate_json(encode(event))
        assert again == event
        assert encode(again) == encode(event)
        # Equal is not enough (a str equals its StrEnum member): every value has the type validation gives.
        assert {k: type(v) for k, v in vars(again).items()} == {k: type(v) for k, v in vars(event).items()}
        assert {k: type(v) for k, v in vars(again.data).items()} == {
            k: type(v) for k, v in vars(event.data).items()
        }


def poll(size: int) -> list[MessageClassified]:
    """A poll of `size` messages over a few conversations, some naming one order number on two channels."""
    events = []
    for k in range(size):
        conversation = k % 37
        text = f"order #B-{70000 + conversation % 9} still missing" if conversation % 4 == 0 else "hello?"
        channel = "x" if conversation % 2 else "email"
        author = f"{conversation}@example.com" if channel == "email" else str(conversation)
        events.append(classified(f"p{k}", channel, f"{channel}:c{conversation}", author, text))
    return events


async def test_a_poll_larger_than_a_part_is_routed_as_one_call_would_route_it(
    redis: Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
):
    events = poll(3 * handlers.ATTACH_PART + 17)
    in_parts, at_once = Linked(), Linked()
    parted = await route_messages(events, make_deps(redis, f"{key_prefix}parts:", in_parts))
    monkeypatch.setattr(handlers, "ATTACH_PART", len(events))
    whole = await route_messages(events, make_deps(redis, f"{key_prefix}whole:", at_once))
    assert [out.data.message_id for (out,) in parted] == [e.data.message.message_id for e in events]
    assert [out.data for (out,) in parted] == [out.data for (out,) in whole]
    assert in_parts == at_once and in_parts  # some messages were linked by their order number
    assert len({out.data.case_id for (out,) in parted}) < 37  # linked conversations share a case


class FailingStore:
    """A case store whose `fail_on`-th call raises, as a Redis that goes away mid-poll would."""

    def __init__(self, store: RedisCaseStore, fail_on: int) -> None:
        self.store, self.fail_on, self.calls = store, fail_on, 0

    async def attach_many(self, attachments, window_seconds, now):
        self.calls += 1
        if self.calls == self.fail_on:
            raise ConnectionError("redis went away")
        return await self.store.attach_many(attachments, window_seconds, now)


async def test_a_part_that_fails_fails_the_whole_poll_and_counts_nothing(redis: Redis, key_prefix: str):
    routed: list[RoutedCase] = []
    deps = replace(make_deps(redis, key_prefix, Linked()), on_routed=routed.append)
    store = FailingStore(deps.cases, fail_on=2)
    with pytest.raises(ConnectionError):
        await route_messages(poll(4 * handlers.ATTACH_PART), replace(deps, cases=store))
    assert routed == []
    assert store.calls == 2  # the parts after the failed one are not attached
    # Read again, the poll routes every message, those of the part attached before the failure included.
    again = await route_messages(poll(4 * handlers.ATTACH_PART), deps)
    assert len(again) == len(routed) == 4 * handlers.ATTACH_PART


async def test_a_cancelled_poll_leaves_no_attaching_behind(redis: Redis, key_prefix: str):
    before = asyncio.all_tasks()
    task = asyncio.ensure_future(
        route_messages(poll(4 * handlers.ATTACH_PART), make_deps(redis, key_prefix, Linked()))
    )
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert {t for t in asyncio.all_tasks() - before if not t.done()} == set()
