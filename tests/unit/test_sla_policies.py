"""SLA policy files: parsing, validation, matching, timer arithmetic and the file that ships."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import yaml

from sla.policies import (
    PolicyError,
    default_policies_path,
    load_policies,
    parse_duration,
    parse_policies,
)
from switchboard.contract import Author, Classification, Queue, RoutedCase

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 20, 17, 30, tzinfo=PARIS)  # a Friday evening

EXAMPLE = """
calendars:
  paris-office: {timezone: Europe/Paris, hours: {mon-fri: "09:00-18:00", sat: "10:00-13:00"}, holidays: FR}
policies:
  - name: complaint-public
    match: {category: support, is_complaint: true, visibility: public}
    first_response: 1h
    next_response: 2h
    resolution: 24h
    warn_at: [0.5, 0.8]
    escalate_after_breach: [15m, 1h]
    calendar: always
  - name: x-support
    match: {channel: x, category: support}
    first_response: 30m
  - name: meta-office
    match: {channel: [facebook, instagram, messenger], language: [fr, en]}
    first_response: 1h
    escalate_after_breach: [30m]
    calendar: paris-office
"""


def case(
    channel="x",
    queue=Queue.CUSTOMER_SERVICE,
    category="support",
    intent="delivery",
    complaint=False,
    visibility="public",
    priority="P3",
    language="en",
    tags=(),
    skill_group=None,
) -> RoutedCase:
    return RoutedCase(
        case_id="c1",
        message_id="m1",
        conversation_id="conv1",
        channel=channel,
        external_id="e1",
        text="where is my parcel",
        author=Author(id="a1"),
        visibility=visibility,
        queue=queue,
        priority=priority,
        tags=list(tags),
        skill_group=skill_group,
        rule="test",
        is_new_case=True,
        message_created_at=NOW,
        classification=Classification(
            category=category,
            intent=intent,
            is_complaint=complaint,
            language=language,
            sentiment="neutral",
            sentiment_score=0.0,
            priority=priority,
            reply_privately=False,
            confidence=0.9,
            model_version="test",
        ),
    )


@pytest.fixture(scope="module")
def example():
    return parse_policies(EXAMPLE)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("1h30m", 5400), ("2d", 172800), ("45s", 45), ("1.5h", 5400), (90, 90), ("90", 90)],
)
def test_durations_accept_units_combinations_and_plain_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30 min", "1x", "h", "", "-5m", 0, True, "1m30h", float("inf")])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_policy_reads_its_targets_defaults_and_calendar(example):
    complaint, x, meta = example.policies
    assert complaint.targets == {"first_response": 3600, "next_response": 7200, "resolution": 86400}
    assert (complaint.warn_at, complaint.escalate_after_breach) == ((0.5, 0.8), (900, 3600))
    assert x.targets == {"first_response": 1800}
    assert (x.warn_at, x.escalate_after_breach, x.calendar.name) == ((0.8,), (), "always")
    assert meta.calendar is example.calendars["paris-office"]


def test_the_first_matching_policy_wins(example):
    # A public complaint on X fits both the first and the second policy.
    assert example.match(case(channel="x", complaint=True)).name == "complaint-public"
    assert example.match(case(channel="x", complaint=False)).name == "x-support"
    assert example.match(case(channel="x", complaint=True, visibility="private")).name == "x-support"


def test_a_list_in_match_means_any_of(example):
    for channel in ("facebook", "instagram", "messenger"):
        assert example.match(case(channel=channel, language="fr")).name == "meta-office"
    assert example.match(case(channel="facebook", language="other")) is None
    assert example.match(case(channel="whatsapp")) is None


def test_match_reads_queue_priority_and_intent():
    policies = parse_policies("""
policies:
  - {name: p1-triage, match: {queue: review, priority: [P1, P2]}, first_response: 5m}
  - {name: outage, match: {intent: outage}, first_response: 10m}
  - {name: rest, first_response: 1h}
""")
    assert policies.match(case(queue=Queue.REVIEW, priority="P2")).name == "p1-triage"
    assert policies.match(case(queue=Queue.REVIEW, priority="P3")).name == "rest"
    assert policies.match(case(intent="outage")).name == "outage"
    assert policies.get("outage").targets["first_response"] == 600
    assert policies.get("nope") is None


def test_match_reads_what_the_routing_rule_set_tags_and_skill_group():
    policies = parse_policies("""
policies:
  - {name: vip, match: {tag: vip}, first_response: 15m}
  - {name: handle, match: {tag: [service-handle, escalated], queue: customer-service}, first_response: 20m}
  - {name: billing, match: {skill_group: [billing-fr, billing-en]}, first_response: 2h}
  - {name: rest, first_response: 1h}
""")
    assert policies.match(case(tags=("complaint", "vip"))).name == "vip"
    assert policies.match(case(tags=("escalated",))).name == "handle"
    assert policies.match(case(tags=("escalated",), queue=Queue.MARKETING)).name == "rest"
    assert policies.match(case(skill_group="billing-fr")).name == "billing"
    assert policies.match(case(skill_group="billing-de", tags=("complaint",))).name == "rest"
    assert policies.match(case()).name == "rest"


@pytest.mark.parametrize("match", ["{tag: []}", "{tag: ''}", "{skill_group: ['']}", "{tags: vip}"])
def test_an_empty_or_misspelt_tag_match_is_refused(match):
    with pytest.raises(PolicyError, match="policy 'p': match"):
        parse_policies(f"policies:\n  - {{name: p, match: {match}, first_response: 5m}}\n")


def test_due_warnings_and_escalations_follow_the_policy_calendar(example):
    meta = example.get("meta-office")
    # 1 h from Friday 17:30 in office hours: 30 min on Friday, 30 min on Saturday.
    assert meta.due("first_response", NOW) == datetime(2026, 11, 21, 10, 30, tzinfo=PARIS)
    assert meta.warn_times("first_response", NOW) == [(0.8, datetime(2026, 11, 21, 10, 18, tzinfo=PARIS))]
    assert meta.escalation_times("first_response", NOW) == [(2, datetime(2026, 11, 21, 11, 0, tzinfo=PARIS))]
    assert meta.elapsed(NOW, datetime(2026, 11, 22, 12, 0, tzinfo=PARIS)) == 3.5 * 3600


def test_escalation_levels_start_at_two_and_count_from_the_breach(example):
    complaint = example.get("complaint-public")
    start = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)
    assert complaint.due("next_response", start) == datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    assert complaint.warn_times("first_response", start) == [
        (0.5, datetime(2026, 11, 21, 23, 30, tzinfo=UTC)),
        (0.8, datetime(2026, 11, 21, 23, 48, tzinfo=UTC)),
    ]
    assert complaint.escalation_times("first_response", start) == [
        (2, datetime(2026, 11, 22, 0, 15, tzinfo=UTC)),
        (3, datetime(2026, 11, 22, 1, 0, tzinfo=UTC)),
    ]


def test_a_clock_the_policy_does_not_run_has_no_due_time(example):
    with pytest.raises(KeyError, match="runs no resolution clock"):
        example.get("x-support").due("resolution", NOW)


def test_scaled_multiplies_every_duration_and_leaves_the_original_alone(example):
    fast = example.scaled(1 / 60)
    complaint = fast.get("complaint-public")
    assert complaint.targets == {"first_response": 60, "next_response": 120, "resolution": 1440}
    assert complaint.escalate_after_breach == (15, 60)
    assert complaint.warn_at == (0.5, 0.8)
    assert fast.get("meta-office").calendar is example.get("meta-office").calendar
    assert example.get("complaint-public").targets["first_response"] == 3600
    assert [p.name for p in fast] == [p.name for p in example]
    with pytest.raises(ValueError):
        example.scaled(0)


def test_warn_at_is_sorted_and_deduplicated():
    policies = parse_policies("policies: [{name: p, first_response: 1h, warn_at: [0.9, 0.5, 0.9]}]")
    assert policies.get("p").warn_at == (0.5, 0.9)


def edited(path: str, value) -> str:
    """Return EXAMPLE with the value at a dotted path (list indexes as numbers) set, or removed if None."""
    data = yaml.safe_load(EXAMPLE)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = data
    for p in parents:
        node = node[p]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return yaml.safe_dump(data)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("policies.1.colour", "red", "policy 'x-support': colour: unknown key"),
        ("policies.1.match.chanel", "x", "policy 'x-support': match.chanel: unknown key (allowed: channel"),
        ("policies.1.match.channel", "twitter", "policy 'x-support': match.channel[0]: Input should be 'x'"),
        ("policies.1.match.channel", [], "policy 'x-support': match.channel: List should have at least 1"),
        ("policies.1.match.is_complaint", "maybe", "policy 'x-support': match.is_complaint[0]: Input"),
        ("policies.1.first_response", "30 min", "policy 'x-support': first_response: bad duration '30 min'"),
        ("policies.1.first_response", None, "policy 'x-support': first_response: required"),
        ("policies.0.resolution", "-1h", "policy 'complaint-public': resolution: bad duration"),
        (
            "policies.0.escalate_after_breach",
            ["1h", "15m"],
            "'complaint-public': escalate_after_breach: delays",
        ),
        ("policies.0.escalate_after_breach", ["1h", "soon"], "escalate_after_breach[1]: bad duration 'soon'"),
        ("policies.0.warn_at", [0.5, 1.0], "policy 'complaint-public': warn_at: 1.0 is not a fraction"),
        ("policies.0.warn_at", [0], "policy 'complaint-public': warn_at: 0.0 is not a fraction"),
        ("policies.0.warn_at", [-0.2], "policy 'complaint-public': warn_at: -0.2 is not a fraction"),
        ("policies.0.calendar", "lyon", "policy 'complaint-public': calendar: unknown calendar 'lyon'"),
        ("policies.2.name", "x-support", "policy 'x-support': name: another policy has this name"),
        ("policies.2.name", "meta office", "policy 'meta office': name: String should match pattern"),
        ("policies.1.name", None, "policy #2: name: required"),
        (
            "calendars.paris-office.timezone",
            "Europe/Lutece",
            "calendar 'paris-office': timezone: unknown timezone",
        ),
        ("calendars.paris-office.hours", {"mon-fri": "9-18"}, "calendar 'paris-office': hours: bad time '9'"),
        (
            "calendars.paris-office.hours",
            {"weekdays": "09:00-18:00"},
            "calendar 'paris-office': hours: bad day",
        ),
        (
            "calendars.paris-office.holidays",
            "ZZ",
            "calendar 'paris-office': holidays: Country ZZ not available",
        ),
        ("calendars.paris-office.subdivision", "99", "calendar 'paris-office': subdivision:"),
        (
            "calendars.paris-office.opens",
            "9",
            "calendar 'paris-office': opens: unknown key (allowed: timezone",
        ),
        ("calendars.paris-office.timezone", None, "calendar 'paris-office': timezone: required"),
        (
            "calendars.always",
            {"timezone": "UTC", "hours": {"mon": "09:00-10:00"}},
            "calendar 'always': the name",
        ),
        ("settings", {"a": 1}, "file: settings: unknown key (allowed: calendars, policies)"),
        ("policies", [], "file: policies: List should have at least 1 item"),
    ],
)
def test_every_validation_error_names_the_policy_or_calendar_and_the_field(path, value, expected):
    with pytest.raises(PolicyError) as caught:
        parse_policies(edited(path, value))
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems
    assert expected in str(caught.value)


def test_all_problems_are_reported_at_once():
    text = edited("policies.0.warn_at", [2]).replace("first_response: 30m", "first_response: soon")
    with pytest.raises(PolicyError) as caught:
        parse_policies(text)
    assert len(caught.value.problems) == 2


def test_a_broken_calendar_is_reported_once_not_again_by_its_policies():
    with pytest.raises(PolicyError) as caught:
        parse_policies(edited("calendars.paris-office.timezone", "Mars/Olympus"))
    assert len(caught.value.problems) == 1


def test_a_policy_after_a_catch_all_is_refused():
    text = """
policies:
  - {name: everything, first_response: 1h}
  - {name: x, match: {channel: x}, first_response: 1m}
"""
    with pytest.raises(PolicyError, match="policy 'x': match: never used, 'everything' before it"):
        parse_policies(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("policies: [name: x", "not valid YAML"), ("", "must be a mapping"), ("- 1", "must be a mapping")],
)
def test_a_file_that_is_not_a_policy_document_is_refused(text, expected):
    with pytest.raises(PolicyError, match=expected):
        parse_policies(text)


def test_load_policies_names_the_file_it_could_not_read(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match=r"nope\.yaml"):
        load_policies(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies: [{name: p, first_response: 5 minutes}]")
    with pytest.raises(PolicyError, match=r"bad\.yaml:\n  policy 'p': first_response: bad duration"):
        load_policies(bad)


@pytest.fixture(scope="module")
def shipped():
    return load_policies(default_policies_path())


@pytest.mark.parametrize(
    ("kwargs", "name", "first_response"),
    [
        ({"channel": "x"}, "x-support", 1800),
        ({"channel": "x", "complaint": True}, "x-support", 1800),
        ({"channel": "x", "priority": "P1"}, "urgent", 900),
        ({"channel": "facebook"}, "meta-support", 7200),
        ({"channel": "instagram", "complaint": True}, "complaint-public", 3600),
        ({"channel": "messenger", "complaint": True, "visibility": "private"}, "meta-support", 7200),
        ({"channel": "whatsapp", "visibility": "private"}, "messaging-support", 3600),
        ({"channel": "sms", "visibility": "private", "priority": "P1"}, "urgent", 900),
        ({"channel": "chat", "visibility": "private"}, "chat-support", 300),
        ({"channel": "chat", "visibility": "private", "priority": "P1"}, "chat-support", 300),
        # The routing rules' VIP authors: the urgent clock on any channel but live chat's faster one.
        ({"channel": "email", "visibility": "private", "tags": ("vip",)}, "vip", 900),
        ({"channel": "x", "tags": ("complaint", "vip")}, "vip", 900),
        ({"channel": "chat", "visibility": "private", "tags": ("vip",)}, "chat-support", 300),
        ({"channel": "email", "visibility": "private"}, "email-support", 86400),
        ({"channel": "review"}, "review-support", 86400),
        ({"channel": "review", "complaint": True}, "complaint-public", 3600),
        ({"channel": "email", "queue": Queue.REVIEW}, "review-triage", 3600),
        ({"channel": "x", "queue": Queue.REVIEW, "priority": "P1"}, "urgent", 900),
        (
            {"channel": "instagram", "queue": Queue.MARKETING, "category": "marketing", "intent": "praise"},
            "marketing",
            86400,
        ),
        (
            {"channel": "x", "queue": Queue.MARKETING, "category": "marketing", "priority": "P1"},
            "marketing",
            86400,
        ),
    ],
)
def test_the_shipped_policies_route_typical_cases_as_intended(shipped, kwargs, name, first_response):
    policy = shipped.match(case(**kwargs))
    assert (policy.name, policy.targets["first_response"]) == (name, first_response)


def test_the_shipped_policies_put_email_and_marketing_on_office_hours(shipped):
    assert shipped.get("email-support").calendar.name == "paris-office"
    assert shipped.get("marketing").calendar.name == "paris-office"
    assert shipped.get("complaint-public").calendar.is_always
    # An email on Friday evening is due 24 office hours later: Wednesday 11:30.
    due = shipped.get("email-support").due("first_response", NOW)
    assert due == datetime(2026, 11, 25, 11, 30, tzinfo=PARIS)


def test_the_shipped_policies_give_every_case_a_policy(shipped):
    channels = ("x", "facebook", "instagram", "messenger", "whatsapp", "email", "chat", "sms", "review")
    for channel in channels:
        for queue in Queue:
            for complaint in (True, False):
                assert shipped.match(case(channel=channel, queue=queue, complaint=complaint)) is not None
