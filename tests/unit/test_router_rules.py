"""The router's rules engine: matching, routing outcomes, validation and the rules that ship."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime

import pytest

from router.rules import SHIPPED_RULES, RulesError, RuleSet, load_rules, parse_rules
from switchboard.contract import Author, Classification, ClassifiedMessage, Message, Queue

# Thursday 19 November 2026, 12:00 UTC = 13:00 in Paris (UTC+1 in November).
NOON = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)

HEAD = """\
version: 1
timezone: Europe/Paris
review_below_confidence: 0.5
lists:
  vips: {handles: [BigBrand], ids: ["x:42"]}
  press: {handles: ["@lemonde"]}
"""
DEFAULT = """\
default:
  support: {queue: customer-service, skill_group: "{intent}-{language}"}
  marketing: {queue: marketing, skill_group: "community-{language}"}
"""


def make(
    text: str = "hello",
    *,
    channel: str = "x",
    visibility: str = "public",
    author_id: str = "x:1",
    handle: str | None = None,
    followers: int | None = None,
    category: str = "support",
    intent: str = "delivery",
    complaint: bool = False,
    language: str = "en",
    sentiment: str = "neutral",
    score: float = 0.0,
    priority: str = "P3",
    confidence: float = 0.9,
    metadata: dict | None = None,
) -> ClassifiedMessage:
    message = Message(
        message_id="m1",
        channel=channel,
        external_id="e1",
        conversation_id="c1",
        author=Author(id=author_id, handle=handle, followers=followers),
        text=text,
        created_at=NOON,
        received_at=NOON,
        visibility=visibility,
        metadata=metadata or {},
    )
    classification = Classification(
        category=category,
        intent=intent,
        is_complaint=complaint,
        language=language,
        sentiment=sentiment,
        sentiment_score=score,
        priority=priority,
        reply_privately=False,
        confidence=confidence,
        model_version="test",
    )
    return ClassifiedMessage(message=message, classification=classification)


def ruleset(rules: str) -> RuleSet:
    return parse_rules(HEAD + "rules:\n" + rules + DEFAULT)


def matches(when: str, message: ClassifiedMessage, now: datetime = NOON) -> bool:
    rules = ruleset(f"  - {{name: hit, when: {when}, queue: review}}\n")
    return rules.decide(message, now).rule == "hit"


# --- Order and outcomes ------------------------------------------------------------------------------------


def test_the_first_matching_rule_wins():
    rules = ruleset(
        "  - {name: first, when: {intent: delivery}, queue: marketing}\n"
        "  - {name: second, when: {channel: x}, queue: review}\n"
    )

    decision = rules.decide(make(intent="delivery", channel="x"), NOON)

    assert (decision.rule, decision.queue) == ("first", Queue.MARKETING)


def test_a_later_rule_decides_when_earlier_ones_do_not_match():
    rules = ruleset(
        "  - {name: first, when: {intent: billing}, queue: marketing}\n"
        "  - {name: second, when: {channel: x}, queue: review}\n"
    )

    assert rules.decide(make(intent="delivery"), NOON).rule == "second"


def test_unmatched_support_goes_to_customer_service_with_its_intent_and_language():
    decision = ruleset("  - {name: never, when: {channel: sms}, queue: review}\n").decide(
        make(intent="delivery", language="fr"), NOON
    )

    assert decision == dataclasses.replace(
        decision, queue=Queue.CUSTOMER_SERVICE, rule="default", skill_group="delivery-fr", priority="P3"
    )
    assert decision.tags == ()


def test_unmatched_marketing_goes_to_the_community_team_of_its_language():
    decision = ruleset("  - {name: never, when: {channel: sms}, queue: review}\n").decide(
        make(category="marketing", intent="praise", language="fr"), NOON
    )

    assert (decision.queue, decision.rule, decision.skill_group) == (
        Queue.MARKETING,
        "default",
        "community-fr",
    )


# --- What a rule can test ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "fields", "expected"),
    [
        ("{channel: x}", {"channel": "x"}, True),
        ("{channel: [email, sms]}", {"channel": "x"}, False),
        ("{channel: [email, sms]}", {"channel": "sms"}, True),
        ("{category: marketing}", {"category": "support"}, False),
        ("{intent: [billing, outage]}", {"intent": "outage"}, True),
        ("{intent: [billing, outage]}", {"intent": "delivery"}, False),
        ("{language: fr}", {"language": "fr"}, True),
        ("{language: fr}", {"language": "en"}, False),
        ("{priority: [P1, P2]}", {"priority": "P2"}, True),
        ("{priority: [P1, P2]}", {"priority": "P3"}, False),
        ("{sentiment: negative}", {"sentiment": "positive"}, False),
        ("{visibility: private}", {"visibility": "private"}, True),
        ("{is_complaint: true}", {"complaint": True}, True),
        ("{is_complaint: true}", {"complaint": False}, False),
        ("{is_complaint: false}", {"complaint": False}, True),
        ("{confidence: {lt: 0.8}}", {"confidence": 0.79}, True),
        ("{confidence: {lt: 0.8}}", {"confidence": 0.8}, False),
        ("{confidence: {lte: 0.8}}", {"confidence": 0.8}, True),
        ("{confidence: {gte: 0.95}}", {"confidence": 0.95}, True),
        ("{confidence: {gt: 0.95}}", {"confidence": 0.95}, False),
        ("{confidence: {gte: 0.6, lt: 0.7}}", {"confidence": 0.65}, True),
        ("{confidence: {gte: 0.6, lt: 0.7}}", {"confidence": 0.7}, False),
        ("{sentiment_score: {lte: -0.5}}", {"score": -0.7}, True),
        ("{followers: {gte: 10000}}", {"followers": 10000}, True),
        ("{followers: {gte: 10000}}", {"followers": 9999}, False),
        ("{followers: {gte: 10000}}", {"followers": None}, False),
        ("{followers: {lt: 10}}", {"followers": None}, False),
        ("{author: {handle_in: ['@Acme']}}", {"handle": "acme"}, True),
        ("{author: {handle_in: [acme]}}", {"handle": "@ACME"}, True),
        ("{author: {handle_in: [acme]}}", {"handle": "acme2"}, False),
        ("{author: {handle_in: [acme]}}", {"handle": None}, False),
        ("{author: {id_in: ['x:7']}}", {"author_id": "x:7"}, True),
        ("{author: {id_in: ['x:7']}}", {"author_id": "X:7"}, False),
        ("{vip: vips}", {"handle": "@bigbrand"}, True),
        ("{vip: vips}", {"author_id": "x:42"}, True),
        ("{vip: vips}", {"handle": "smallbrand"}, False),
        ("{vip: [vips, press]}", {"handle": "LeMonde"}, True),
        ("{intent: delivery, language: fr}", {"intent": "delivery", "language": "en"}, False),
        ("{intent: delivery, language: fr}", {"intent": "delivery", "language": "fr"}, True),
    ],
)
def test_a_rule_matches_on_each_field_it_names(when, fields, expected):
    assert matches(when, make(**fields)) is expected


@pytest.mark.parametrize(
    ("keywords", "text", "expected"),
    [
        ("[refund]", "I want a REFUND now", True),
        ("[refund]", "Refund!", True),
        ("[refund]", "is this refundable?", False),
        ("[refund]", "nonrefund policy", False),
        ("[refund, invoice]", "where is my invoice", True),
        ("[remboursement]", "Je veux être REMBOURSÉ", False),
        ("['débité']", "j'ai ete debite deux fois", True),
        ("[debite]", "J'ai été DÉBITÉ deux fois", True),
        ("[debite]", "J'ai été De\u0301bite\u0301 deux fois", True),
        ("['rembours*']", "Remboursez-moi", True),
        ("['rembours*']", "un remboursement", True),
        ("['rembours*']", "nonremboursable", False),
        ("['charged twice']", "I was\ncharged   twice!", True),
        ("['charged twice']", "I was charged and then twice more", False),
        # The typographic apostrophe is the point: it must match the typed one.
        ("['l’abonnement']", "résilier l'abonnement", True),  # noqa: RUF001
        ("[oeuvre]", "une Œuvre", True),
        ("['#panne']", "encore une #panne", True),
        ("['#panne']", "encore une panne", False),
        ("[c++]", "help with c++ please", True),
    ],
)
def test_keywords_ignore_case_and_accents_and_respect_word_boundaries(keywords, text, expected):
    assert matches(f"{{keywords: {keywords}}}", make(text)) is expected


@pytest.mark.parametrize(
    ("when", "now", "expected"),
    [
        # Paris is UTC+1 in November: 17:30 UTC is 18:30 there.
        ('{time: {between: "18:00-08:00"}}', datetime(2026, 11, 19, 17, 30, tzinfo=UTC), True),
        ('{time: {between: "18:00-08:00"}}', datetime(2026, 11, 19, 16, 30, tzinfo=UTC), False),
        ('{time: {between: "18:00-08:00"}}', datetime(2026, 11, 19, 23, 30, tzinfo=UTC), True),
        ('{time: {between: "18:00-08:00"}}', datetime(2026, 11, 20, 6, 59, tzinfo=UTC), True),
        ('{time: {between: "18:00-08:00"}}', datetime(2026, 11, 20, 7, 0, tzinfo=UTC), False),
        ('{time: {between: "09:00-17:00"}}', NOON, True),
        ('{time: {between: "09:00-17:00"}}', datetime(2026, 11, 19, 16, 0, tzinfo=UTC), False),
        ('{time: {between: "22:00-24:00"}}', datetime(2026, 11, 19, 22, 59, tzinfo=UTC), True),
        # Friday 23:30 UTC is already Saturday 00:30 in Paris.
        ("{time: {days: [sat, sun]}}", datetime(2026, 11, 20, 23, 30, tzinfo=UTC), True),
        ("{time: {days: [sat, sun]}}", datetime(2026, 11, 20, 22, 30, tzinfo=UTC), False),
        ("{time: {days: sun}}", datetime(2026, 11, 22, 12, 0, tzinfo=UTC), True),
        # The rule's own timezone wins over the file's: 03:00 UTC is 22:00 the day before in New York.
        (
            '{time: {between: "18:00-23:00", days: thu, timezone: America/New_York}}',
            datetime(2026, 11, 20, 3, 0, tzinfo=UTC),
            True,
        ),
        ('{time: {between: "18:00-23:00", days: fri}}', datetime(2026, 11, 20, 21, 0, tzinfo=UTC), True),
        ('{time: {between: "18:00-23:00", days: fri}}', datetime(2026, 11, 19, 21, 0, tzinfo=UTC), False),
        # A naive moment is taken as UTC.
        ('{time: {between: "18:00-08:00"}}', datetime(2026, 11, 19, 17, 30), True),
    ],
)
def test_time_rules_use_the_local_time_and_weekday_and_cross_midnight(when, now, expected):
    assert matches(when, make(), now) is expected


@pytest.mark.parametrize(
    ("channel", "metadata", "account", "expected"),
    [
        # Each adapter's field for the brand account written to (X's webhook account, the Facebook page,
        # the Instagram or Messenger account, an email's To, an SMS's number).
        ("x", {"for_user_id": "783214"}, "x:783214", True),
        ("x", {"for_user_id": "783214"}, "x:783215", False),
        ("x", {"for_user_id": "783214"}, "facebook:783214", False),
        ("facebook", {"page_id": "1029384756", "post_id": "p"}, "facebook:1029384756", True),
        ("instagram", {"account_id": "17841400"}, "instagram:17841400", True),
        ("messenger", {"account_id": "55"}, "messenger:55", True),
        (
            "email",
            {"to": "Service Client <SAV@Brand.example>, Marie <m@perso.example>"},
            "email:sav@brand.example",
            True,
        ),
        ("email", {"to": "Service Client <SAV@Brand.example>"}, "email:m@perso.example", False),
        ("email", {"to": ""}, "email:sav@brand.example", False),
        ("sms", {"to": "+33612345678"}, "sms:+33612345678", True),
        # A generic API message names its account itself.
        ("chat", {"account": "site-FR"}, "chat:site-fr", True),
        ("chat", {"account": "site-fr"}, "chat:site-be", False),
        # No account known: no match, no error (an id that is not text, a list, nothing at all).
        ("x", {}, "x:783214", False),
        ("x", {"for_user_id": ["783214"]}, "x:783214", False),
        ("chat", {"account": {"id": "site-fr"}}, "chat:site-fr", False),
    ],
)
def test_account_rules_match_the_brand_account_a_message_was_written_to(channel, metadata, account, expected):
    message = make(channel=channel, visibility="private", metadata=metadata)
    assert matches(f'{{account: "{account}"}}', message) is expected


def test_an_account_rule_takes_any_of_several_accounts_and_combines_with_other_conditions():
    to_support = make(channel="x", category="marketing", metadata={"for_user_id": "2"})
    to_brand = make(channel="x", category="marketing", metadata={"for_user_id": "1"})
    when = '{account: ["X : 2", "email:help@brand.example"], category: marketing}'

    assert matches(when, to_support) is True
    assert matches(when, to_brand) is False
    assert matches(when, make(channel="x", category="support", metadata={"for_user_id": "2"})) is False


# --- What a rule sets --------------------------------------------------------------------------------------


def test_skill_group_templates_are_filled_from_the_message_and_its_classification():
    rules = ruleset(
        "  - name: t\n    when: {channel: email}\n    queue: customer-service\n"
        '    skill_group: "{intent}-{language}/{channel}-{visibility}-{category}-{priority}-{sentiment}"\n'
    )

    decision = rules.decide(
        make(channel="email", intent="billing", language="fr", visibility="private"), NOON
    )

    assert decision.skill_group == "billing-fr/email-private-support-P3-neutral"


def test_a_rule_overrides_the_priority_and_adds_its_tags_after_the_complaint_tag():
    rules = ruleset(
        "  - {name: urgent, when: {intent: outage}, queue: customer-service,"
        " priority: P1, tags: [outage, x]}\n"
    )

    decision = rules.decide(make(intent="outage", complaint=True, priority="P3"), NOON)

    assert (decision.priority, decision.tags) == ("P1", ("complaint", "outage", "x"))


def test_a_rule_without_a_priority_keeps_the_classifier_priority():
    rules = ruleset("  - {name: keep, when: {intent: outage}, queue: customer-service, tags: [a, a]}\n")

    decision = rules.decide(make(intent="outage", priority="P2"), NOON)

    assert (decision.priority, decision.tags, decision.skill_group) == ("P2", ("a",), None)


def test_one_rule_set_routes_a_stream_of_different_messages_each_on_its_own_merits():
    rules = ruleset("  - {name: urgent, when: {intent: outage}, queue: customer-service, priority: P1}\n")
    messages = [
        make(intent="outage", language="fr", complaint=True),
        make(intent="outage", language="en", priority="P4"),
        make(intent="delivery", language="fr", priority="P2"),
        make(intent="delivery", language="en", complaint=True),
        make(intent="outage", language="fr", complaint=True),
    ]

    decisions = [rules.decide(m, NOON) for m in messages]

    assert [(d.rule, d.skill_group, d.priority, d.tags) for d in decisions] == [
        ("urgent", None, "P1", ("complaint",)),
        ("urgent", None, "P1", ()),
        ("default", "delivery-fr", "P2", ()),
        ("default", "delivery-en", "P3", ("complaint",)),
        ("urgent", None, "P1", ("complaint",)),
    ]


# --- Unsure classifications --------------------------------------------------------------------------------


def test_a_low_confidence_message_goes_to_review_before_the_rules():
    rules = ruleset("  - {name: all-x, when: {channel: x}, queue: marketing}\n")

    decision = rules.decide(make(confidence=0.49, complaint=True, priority="P2"), NOON)

    assert (decision.queue, decision.rule, decision.skill_group) == (Queue.REVIEW, "low-confidence", None)
    assert (decision.priority, decision.tags) == ("P2", ("complaint", "unsure"))


def test_a_message_at_the_threshold_is_not_unsure():
    rules = ruleset("  - {name: all-x, when: {channel: x}, queue: marketing}\n")

    assert rules.decide(make(confidence=0.5), NOON).rule == "all-x"


def test_a_message_the_model_calls_marketing_may_need_more_confidence_than_a_support_one():
    text = HEAD.replace(
        "review_below_confidence: 0.5\n",
        "review_below_confidence: 0.5\nreview_marketing_below_confidence: 0.9\n",
    )
    rules = parse_rules(
        text + "rules:\n  - {name: all-x, when: {channel: x}, queue: customer-service}\n" + DEFAULT
    )

    praise = rules.decide(make(category="marketing", intent="praise", confidence=0.85), NOON)
    sure_praise = rules.decide(make(category="marketing", intent="praise", confidence=0.9), NOON)
    complaint = rules.decide(make(category="support", confidence=0.6), NOON)
    unsure_complaint = rules.decide(make(category="support", confidence=0.49), NOON)

    assert (praise.queue, praise.rule, praise.tags) == (Queue.REVIEW, "low-confidence", ("unsure",))
    assert sure_praise.rule == "all-x"
    assert complaint.rule == "all-x"
    assert unsure_complaint.rule == "low-confidence"
    assert rules.describe()["review_marketing_below_confidence"] == 0.9
    # Without it, one threshold for both.
    assert (
        ruleset("  - {name: all-x, when: {channel: x}, queue: marketing}\n").describe()[
            "review_marketing_below_confidence"
        ]
        == 0.5
    )


def test_a_rule_that_applies_to_unsure_messages_is_tried_before_review():
    rules = ruleset(
        "  - {name: plain, when: {channel: x}, queue: marketing}\n"
        "  - {name: vip, when: {vip: vips}, queue: customer-service, applies_to_unsure: true, tags: [vip]}\n"
    )

    vip = rules.decide(make(handle="BigBrand", confidence=0.2), NOON)
    other = rules.decide(make(handle="nobody", confidence=0.2), NOON)

    assert (vip.rule, vip.queue, vip.tags) == ("vip", Queue.CUSTOMER_SERVICE, ("unsure", "vip"))
    assert other.rule == "low-confidence"


# --- Validation --------------------------------------------------------------------------------------------

GOOD = "  - {name: first, when: {channel: x}, queue: marketing}\n"


@pytest.mark.parametrize(
    ("second_rule", "expected"),
    [
        (
            "{name: second, when: {intnet: billing}, queue: review}",
            ["when.intnet", "unknown field", "intent"],
        ),
        ("{name: second, when: {channel: x}, queue: review, colour: red}", ["colour", "unknown field"]),
        ("{name: second, when: {channel: x}, queue: sales}", ["queue", "'customer-service'"]),
        ("{name: second, when: {channel: telegram}, queue: review}", ["when.channel[0]", "'whatsapp'"]),
        ("{name: second, when: {intent: [billing, refunds]}, queue: review}", ["when.intent[1]"]),
        ("{name: second, when: {priority: P5}, queue: review}", ["when.priority[0]", "'P1'"]),
        ("{name: second, when: {channel: x}, queue: review, priority: high}", ["priority", "'P4'"]),
        ("{name: second, when: {time: {between: '18h-8h'}}, queue: review}", ["when.time.between", "HH:MM"]),
        ("{name: second, when: {time: {between: '25:00-08:00'}}, queue: review}", ["when.time.between"]),
        (
            "{name: second, when: {time: {between: '08:00-08:00'}}, queue: review}",
            ["when.time.between", "empty"],
        ),
        ("{name: second, when: {time: {days: [saturday]}}, queue: review}", ["when.time.days[0]", "'sat'"]),
        ("{name: second, when: {time: {timezone: Europe/Pariss, days: sat}}, queue: review}", ["timezone"]),
        ("{name: second, when: {time: {}}, queue: review}", ["when.time", "at least one of between"]),
        ("{name: second, when: {confidence: {below: 0.5}}, queue: review}", ["when.confidence.below"]),
        ("{name: second, when: {confidence: {}}, queue: review}", ["when.confidence", "lt"]),
        ("{name: second, when: {author: {}}, queue: review}", ["when.author", "handle_in"]),
        ("{name: second, when: {account: '783214'}, queue: review}", ["when.account[0]", "<channel>:"]),
        ("{name: second, when: {account: 783214}, queue: review}", ["when.account[0]", "<channel>:"]),
        ("{name: second, when: {account: 'twitter:783214'}, queue: review}", ["when.account[0]", "x:783214"]),
        ("{name: second, when: {account: 'x: '}, queue: review}", ["when.account[0]", "<channel>:"]),
        (
            "{name: second, when: {vip: brand-vips}, queue: review}",
            ["when.vip", "undefined list 'brand-vips'"],
        ),
        ("{name: first, when: {channel: sms}, queue: review}", ["name", "duplicate of rule #1"]),
        ("{name: second, when: {}, queue: review}", ["when", "no conditions"]),
        ("{name: second, queue: review}", ["when", "Field required"]),
        ("{name: second, when: {channel: x}}", ["queue", "Field required"]),
        ("{name: second, when: {keywords: ['  ']}, queue: review}", ["when.keywords[0]", "empty"]),
        (
            "{name: second, when: {channel: x}, queue: review, skill_group: '{intnet}-x'}",
            ["skill_group", "{intnet}"],
        ),
        (
            "{name: second, when: {channel: x}, queue: review, skill_group: '{intent'}",
            ["skill_group", "malformed"],
        ),
        ("{name: default, when: {channel: x}, queue: review}", ["name", "reserved"]),
        ("{name: 'two words', when: {channel: x}, queue: review}", ["name", "letters, digits"]),
    ],
)
def test_a_mistake_in_a_rule_is_reported_with_the_rule_and_the_field(second_rule, expected):
    with pytest.raises(RulesError) as caught:
        ruleset(GOOD + f"  - {second_rule}\n")

    name = re.search(r"name: '?([\w -]+)", second_rule)[1]
    message = str(caught.value)
    assert f"rule #2 '{name}': " in message
    for part in expected:
        assert part in message


def test_a_rule_without_a_name_is_reported_by_its_number():
    with pytest.raises(RulesError) as caught:
        ruleset(GOOD + "  - {when: {channel: x}, queue: review}\n")

    assert str(caught.value) == "rules: rule #2: name: Field required"


def test_every_mistake_of_a_file_is_reported_at_once():
    with pytest.raises(RulesError) as caught:
        ruleset(
            GOOD + "  - {name: a, when: {channel: fax}, queue: review}\n  - {name: b, when: {}, queue: x}\n"
        )

    assert len(caught.value.problems) == 2
    assert caught.value.problems[0].startswith("rule #2 'a': when.channel[0]")
    assert caught.value.problems[1].startswith("rule #3 'b': queue")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEAD + "rules: []\n" + DEFAULT, "rules: List should have at least 1 item"),
        (HEAD + "rules:\n" + GOOD, "default: Field required"),
        (
            HEAD.replace("version: 1", "version: 2") + "rules:\n" + GOOD + DEFAULT,
            "version: Input should be 1",
        ),
        (HEAD.replace("Europe/Paris", "Paris") + "rules:\n" + GOOD + DEFAULT, "timezone: unknown timezone"),
        (
            HEAD.replace("0.5", "1.5") + "rules:\n" + GOOD + DEFAULT,
            "review_below_confidence: Input should be",
        ),
        (
            HEAD.replace("lists:", "review_marketing_below_confidence: -0.1\nlists:")
            + "rules:\n"
            + GOOD
            + DEFAULT,
            "review_marketing_below_confidence: Input should be",
        ),
        (
            HEAD.replace("lists:", "follow_the_case: sometimes\nlists:") + "rules:\n" + GOOD + DEFAULT,
            "follow_the_case: Input should be a valid boolean",
        ),
        (HEAD.replace("lists:", "list:") + "rules:\n" + GOOD + DEFAULT, "list: unknown field"),
        (HEAD + "rules:\n" + GOOD + DEFAULT.replace("customer-service", "cs"), "default.support.queue"),
        (HEAD + "rules:\n" + GOOD + DEFAULT + "  other: {queue: review}\n", "default.other: unknown field"),
        (HEAD + "rules:\n" + GOOD + DEFAULT.replace("{intent}", "{topic}"), "default.support.skill_group"),
        (HEAD + "lists: {}\nrules:\n" + GOOD + DEFAULT, "duplicate key 'lists'"),
        (HEAD + "rules:\n  - {name: [\n" + DEFAULT, "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        ("", "expected a mapping"),
    ],
)
def test_a_mistake_outside_the_rules_is_reported_with_its_field(text, expected):
    with pytest.raises(RulesError) as caught:
        parse_rules(text)

    assert expected in str(caught.value)


def test_a_file_is_loaded_and_its_mistakes_are_reported_with_its_path(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(HEAD + "rules:\n" + GOOD + DEFAULT, encoding="utf-8")
    bad.write_text(HEAD + "rules:\n  - {name: x, when: {channel: fax}, queue: review}\n" + DEFAULT)

    assert load_rules(good).decide(make(channel="x"), NOON).rule == "first"
    with pytest.raises(RulesError) as caught:
        load_rules(bad)
    assert str(caught.value).startswith(f"{bad}: rule #1 'x': when.channel[0]: Input should be")


def test_a_missing_file_is_reported_with_its_path(tmp_path):
    path = tmp_path / "nope.yaml"

    with pytest.raises(RulesError, match=r"nope\.yaml: cannot read the file"):
        load_rules(path)


# --- The rule set as a value -------------------------------------------------------------------------------


def test_describe_lists_the_rules_in_order_with_the_version_and_a_content_hash():
    text = (
        HEAD
        + "rules:\n"
        + GOOD
        + "  - {name: vip, when: {vip: vips}, queue: review, applies_to_unsure: true}\n"
    )
    summary = parse_rules(text + DEFAULT).describe()

    assert json.loads(json.dumps(summary)) == summary
    assert (summary["version"], summary["rules"], summary["applies_to_unsure"]) == (
        1,
        ["first", "vip"],
        ["vip"],
    )
    assert summary["hash"] == parse_rules(text + DEFAULT).describe()["hash"]
    assert summary["hash"] != parse_rules(text + "# changed\n" + DEFAULT).describe()["hash"]


def test_a_rule_set_cannot_be_changed_once_loaded():
    rules = ruleset(GOOD)

    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.review_below_confidence = 0.1


# --- The rules that ship -----------------------------------------------------------------------------------

# Tuesday 17 November 2026, 10:00 in Paris; then 23:00 on a weekday and Saturday noon.
DAY = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
NIGHT = datetime(2026, 11, 17, 22, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("message", "now", "expected"),
    [
        (
            make("Bonjour, j'ai été débité deux fois ce mois-ci", intent="billing", language="fr"),
            DAY,
            ("billing", Queue.CUSTOMER_SERVICE, "billing-fr", "P3", ("billing",)),
        ),
        (
            make("Je demande le REMBOURSEMENT de ma commande", intent="returns_refund", language="fr"),
            DAY,
            ("billing", Queue.CUSTOMER_SERVICE, "billing-fr", "P3", ("billing",)),
        ),
        (
            make("I was charged twice, I want a refund", intent="billing", complaint=True, priority="P2"),
            DAY,
            ("billing", Queue.CUSTOMER_SERVICE, "billing-en", "P2", ("complaint", "billing")),
        ),
        (
            make("Le site est en panne depuis ce matin", intent="technical", language="fr"),
            DAY,
            ("outage-words", Queue.CUSTOMER_SERVICE, "technical-fr", "P1", ("outage",)),
        ),
        (
            make("Nothing loads", intent="outage", priority="P2"),
            DAY,
            ("outage", Queue.CUSTOMER_SERVICE, "technical-en", "P1", ("outage",)),
        ),
        (
            make("Ma commande ?", handle="@LeMondeFR", language="fr", confidence=0.3),
            DAY,
            ("vip-authors", Queue.CUSTOMER_SERVICE, "vip-fr", "P3", ("unsure", "vip")),
        ),
        (
            make(
                "Journaliste au Parisien, une question", category="marketing", intent="chatter", language="fr"
            ),
            DAY,
            ("press-words", Queue.MARKETING, "press", "P3", ("press",)),
        ),
        (
            make("Partnership proposal", category="marketing", intent="partnership_press", priority="P4"),
            DAY,
            ("press", Queue.MARKETING, "press", "P4", ("press",)),
        ),
        (
            make("Colis toujours pas arrivé, honteux", intent="delivery", complaint=True, language="fr"),
            NIGHT,
            ("after-hours-night", Queue.CUSTOMER_SERVICE, "delivery-fr", "P3", ("complaint", "after-hours")),
        ),
        (
            make("Still no parcel, shameful", intent="delivery", complaint=True),
            SATURDAY,
            (
                "after-hours-weekend",
                Queue.CUSTOMER_SERVICE,
                "delivery-en",
                "P3",
                ("complaint", "after-hours"),
            ),
        ),
        (
            make("Colis toujours pas arrivé", intent="delivery", complaint=True, language="fr"),
            DAY,
            ("default", Queue.CUSTOMER_SERVICE, "delivery-fr", "P3", ("complaint",)),
        ),
        (
            make(
                "Colis pas arrivé", intent="delivery", complaint=True, visibility="private", channel="email"
            ),
            NIGHT,
            ("default", Queue.CUSTOMER_SERVICE, "delivery-en", "P3", ("complaint",)),
        ),
        (
            make("Love the new app!", category="marketing", intent="praise", sentiment="positive"),
            DAY,
            ("default", Queue.MARKETING, "community-en", "P3", ()),
        ),
        (
            make("euh", intent="chatter", category="marketing", language="fr", confidence=0.4),
            DAY,
            ("low-confidence", Queue.REVIEW, None, "P3", ("unsure",)),
        ),
    ],
)
def test_the_shipped_rules_route_typical_french_and_english_messages(message, now, expected):
    decision = load_rules(SHIPPED_RULES).decide(message, now)

    assert (decision.rule, decision.queue, decision.skill_group, decision.priority, decision.tags) == expected


def test_a_message_in_another_language_goes_to_review_unless_a_desk_for_them_takes_it():
    from classifier import model as lexicon

    text = "Hola, mi pedido no ha llegado todavía y nadie me responde"
    classification = lexicon.classify(text, channel="x", visibility="public")
    message = ClassifiedMessage(message=make(text).message, classification=classification)
    assert classification.language == "other"

    assert load_rules(SHIPPED_RULES).decide(message, NOON).queue == Queue.REVIEW
    desk = ruleset(
        "  - {name: other-languages, when: {language: other}, applies_to_unsure: true,"
        " queue: customer-service, skill_group: other-languages}\n"
    )
    decision = desk.decide(message, NOON)
    assert (decision.rule, decision.queue) == ("other-languages", Queue.CUSTOMER_SERVICE)
