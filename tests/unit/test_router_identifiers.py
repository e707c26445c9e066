"""Identifiers that link one customer's messages across channels: what is read, what is not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from router.identifiers import MAX_IDENTIFIERS, LinkPolicy, extract, identify, normalise_phone
from switchboard.contract import Author, Classification, ClassifiedMessage, Message

NOW = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ma commande #A-48213 n'est jamais arrivée", ["order:A48213"]),
        ("commande 123456 toujours pas livrée", ["order:123456"]),
        ("Ma commande n° 556677 et le remboursement ?", ["order:556677"]),
        ("commande numéro 778899", ["order:778899"]),
        ("order no. 123-4567 is late", ["order:1234567"]),
        ("Order number: 987654321", ["order:987654321"]),
        ("ma réf : AB-12345", ["order:AB12345"]),
        ("order #FR123456 please", ["order:FR123456"]),
        ("the parcel of #123456 is lost", ["order:123456"]),
        ("still waiting for #a-4821", ["order:A4821"]),
    ],
)
def test_order_numbers_are_read_after_a_hash_or_an_order_word(text, expected):
    assert extract(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "#fashion #2024 #BF2024 bravo",
        "order 2024",
        "I ordered 3 items for 12345 euros",
        "référence 12 avril",
        "order 12-3 please",
        "my code is 48213",
    ],
)
def test_numbers_without_an_order_cue_or_too_short_are_not_order_numbers(text):
    assert extract(text) == []


def test_the_same_order_written_two_ways_is_one_identifier():
    assert extract("#A-48213") == extract("commande A48213") == ["order:A48213"]


def test_email_addresses_are_read_lower_cased():
    assert extract("write to Marie.L+cc@Example.FR please") == ["email:marie.l+cc@example.fr"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call me at +33 6 12 34 56 78", ["phone:+33612345678"]),
        ("call me at +33 (0)6 12 34 56 78", ["phone:+33612345678"]),
        ("appelez le 06.12.34.56.78", ["phone:+33612345678"]),
        ("appelez le 0612345678", ["phone:+33612345678"]),
        ("or +44 7700 900123", ["phone:+447700900123"]),
        ("or +1 (555) 123-4567", ["phone:+15551234567"]),
        ("call 555 123 4567", []),
    ],
)
def test_phone_numbers_are_read_in_international_or_french_form_as_e164(text, expected):
    assert extract(text) == expected


def test_an_order_number_with_dashes_is_not_read_again_as_a_phone():
    text = "order no. 123-4567, mail a.b@x.com, tel 06 12 34 56 78"
    assert extract(text) == ["order:1234567", "email:a.b@x.com", "phone:+33612345678"]


def test_each_identifier_is_listed_once():
    assert extract("#A-48213 and again commande #A-48213") == ["order:A48213"]


def test_phone_numbers_that_are_neither_international_nor_french_are_refused():
    assert normalise_phone("555 1234") is None
    assert normalise_phone("+1 2") is None
    assert normalise_phone("0012345678") is None


def classified(channel: str, author_id: str, text: str = "hello", intent: str = "delivery"):
    message = Message(
        message_id="m1",
        channel=channel,
        external_id="e1",
        conversation_id="c1",
        author=Author(id=author_id),
        text=text,
        created_at=NOW,
        received_at=NOW,
        visibility="private",
    )
    classification = Classification(
        category="marketing" if intent == "spam" else "support",
        intent=intent,
        is_complaint=False,
        language="fr",
        sentiment="neutral",
        sentiment_score=0.0,
        priority="P3",
        reply_privately=True,
        confidence=0.9,
        model_version="test",
    )
    return ClassifiedMessage(message=message, classification=classification)


@pytest.mark.parametrize(
    ("channel", "author_id", "expected"),
    [
        ("email", "Marie@Example.fr", ["email:marie@example.fr"]),
        ("sms", "+33612345678", ["phone:+33612345678"]),
        ("whatsapp", "33612345678", ["phone:+33612345678"]),
        ("x", "42", ["author:x:42"]),
        ("facebook", "42", []),
        ("chat", "visitor-9", []),
    ],
)
def test_the_sender_is_an_identifier_where_the_channel_names_them_the_same_everywhere(
    channel, author_id, expected
):
    assert identify(classified(channel, author_id), LinkPolicy()) == expected


def test_identifiers_in_the_text_come_before_the_sender():
    found = identify(classified("email", "marie@example.fr", "commande 123456"), LinkPolicy())
    assert found == ["order:123456", "email:marie@example.fr"]


def test_spam_links_nothing():
    assert identify(classified("x", "42", "commande 123456", intent="spam"), LinkPolicy()) == []


def test_linking_switched_off_links_nothing():
    assert identify(classified("x", "42", "commande 123456"), LinkPolicy(enabled=False)) == []


def test_ignored_addresses_domains_and_numbers_never_link():
    policy = LinkPolicy.from_entries(["@brand.example", "sav@partner.example", "+33 1 00 00 00 00"])
    text = "j'ai écrit à support@brand.example, sav@partner.example et au 01 00 00 00 00, moi c'est a@b.fr"
    assert identify(classified("chat", "v1", text), policy) == ["email:a@b.fr"]


def test_a_message_naming_many_things_links_on_the_first_few_only():
    text = " ".join(f"commande {100000 + n}" for n in range(20))
    assert len(identify(classified("chat", "v1", text), LinkPolicy())) == MAX_IDENTIFIERS
