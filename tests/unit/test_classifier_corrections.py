"""Agents' corrections: the handler that keeps them, category-only lines in training and evaluation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from classifier import handlers
from classifier.evaluation import evaluate, render, score
from classifier.examples import Example, corpus_files, counts, data_hash, read_examples, split
from classifier.store import Correction
from classifier.training import train
from switchboard.contract import (
    Author,
    CaseRouted,
    Classification,
    Queue,
    RoutedCase,
    Topic,
    event_type,
)
from switchboard.handling import BatchHandler

NOW = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
FULL = {
    "text": "Mon colis n'est toujours pas arrivé",
    "channel": "x",
    "language": "fr",
    "category": "support",
    "intent": "delivery",
    "is_complaint": True,
    "sentiment": "negative",
}
CORRECTED = {"text": "Trop hâte de voir la collab avec vous 😍", "channel": "instagram", "language": "fr"}


def write_lines(path: Path, lines: Sequence[dict]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


# Category-only lines


def test_a_line_without_intent_complaint_and_sentiment_is_category_only(tmp_path: Path):
    path = write_lines(tmp_path / "c.jsonl", [FULL, {**CORRECTED, "category": "marketing", "case_id": "c1"}])
    full, corrected = read_examples([path])
    assert not full.category_only
    assert corrected.category_only and corrected.category == "marketing"
    assert (corrected.intent, corrected.is_complaint, corrected.sentiment) == (None, None, None)


@pytest.mark.parametrize("missing", ["intent", "is_complaint", "sentiment"])
def test_a_line_missing_some_but_not_all_fine_labels_is_refused_by_place(missing: str, tmp_path: Path):
    line = {k: v for k, v in FULL.items() if k != missing}
    path = write_lines(tmp_path / "partial.jsonl", [FULL, line])
    with pytest.raises(ValueError, match=rf"partial\.jsonl:2: .*{missing} missing"):
        read_examples([path])


def test_a_fully_labelled_line_hashes_as_before_category_only_lines_existed():
    # The hash of a line is the sorted JSON of its seven fields, as it was before any could be absent.
    before = json.dumps(FULL, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    assert data_hash([Example.model_validate(FULL)]) == hashlib.sha256(before).hexdigest()


def test_counts_and_the_held_out_split_take_category_only_lines_without_naming_a_label():
    corpus = read_examples(corpus_files())[::10]
    corrections = [
        Example.model_validate({**CORRECTED, "text": f"{CORRECTED['text']} {i}", "category": c})
        for i, c in enumerate(["marketing", "support"] * 10)
    ]
    tally = counts([*corpus, *corrections])
    assert tally["category"] == {
        "marketing": counts(corpus)["category"]["marketing"] + 10,
        "support": counts(corpus)["category"]["support"] + 10,
    }
    assert tally["intent"] == counts(corpus)["intent"]
    assert "none" not in tally["is_complaint"] and "none" not in tally["sentiment"]
    rest, held = split([*corpus, *corrections], seed=0, share=0.2)
    assert sum(e.category_only for e in held) == 4 and len(rest) + len(held) == len(corpus) + 20


# Training and evaluation with category-only lines


def test_category_only_lines_teach_the_category_head_alone(tmp_path: Path):
    corpus = read_examples(corpus_files())[::6]
    # A made-up word the corpus never uses, taught as support by corrections alone.
    corrections = [
        Example.model_validate({**CORRECTED, "text": f"zorglub {word}", "category": "support"})
        for word in ("aujourd'hui", "encore", "svp", "merci", "vite", "please", "again", "now") * 3
    ]
    model = train([*corpus, *corrections], seed=0, holdout=0)
    without = train(corpus, seed=0, holdout=0)
    assert model.counts["category"]["support"] == without.counts["category"]["support"] + len(corrections)
    assert model.counts["intent"] == without.counts["intent"]
    assert model.version != without.version
    zorglub = model.classify("zorglub", channel="instagram", visibility="public")
    assert zorglub.category == "support"
    assert "zorglub" in zorglub.explanation


def test_training_on_corrections_alone_is_refused_with_the_head_that_has_no_label(tmp_path: Path):
    corrections = [
        Example.model_validate({**CORRECTED, "text": f"{word} {CORRECTED['text']}", "category": c})
        for word, c in zip(["encore", "vite", "merci", "svp"], ["support", "marketing"] * 2, strict=True)
    ]
    with pytest.raises(ValueError, match="no intent label"):
        train(corrections, holdout=0)


def decision(category: str, intent: str) -> Classification:
    return Classification(
        category=category,
        intent=intent,
        is_complaint=False,
        language="fr",
        sentiment="neutral",
        sentiment_score=0.0,
        priority="P3",
        reply_privately=False,
        confidence=0.8,
        model_version="hand-made",
    )


def test_evaluation_scores_category_only_lines_on_the_category_alone():
    gold = [
        Example.model_validate({**FULL, "text": "a"}),
        Example.model_validate({**CORRECTED, "category": "marketing"}),
        Example.model_validate({**CORRECTED, "category": "support"}),
    ]
    predicted = [
        decision("support", "delivery"),
        decision("marketing", "praise"),
        decision("marketing", "chatter"),
    ]
    report = score(gold, predicted, "hand-made")
    assert report.size == 3
    assert sum(c.support for c in report.heads["category"].classes) == 3
    assert report.heads["category"].accuracy == pytest.approx(2 / 3)
    for head in ("intent", "is_complaint", "sentiment"):
        assert sum(c.support for c in report.heads[head].classes) == 1, head
    assert report.heads["intent"].accuracy == 1.0
    assert "intent: accuracy 1.000, macro-F1 1.000 (on the 1 that carry this label)" in render(report)


def test_a_file_of_corrections_alone_gets_a_category_report_only():
    gold = [Example.model_validate({**CORRECTED, "category": c}) for c in ("support", "marketing")]

    class Fixed:
        version = "hand-made"

        def classify_many(self, items):
            return [decision("support", "delivery"), decision("support", "billing")]

    report = evaluate(Fixed(), gold)
    assert list(report.heads) == ["category"]
    assert report.heads["category"].accuracy == 0.5
    assert "category: accuracy 0.500" in render(report)


# The handler that keeps reassignments


class FakeCorrections:
    """Keeps corrections in a dict by message id, as the Redis store does."""

    def __init__(self) -> None:
        self.kept: dict[str, Correction] = {}

    async def record_many(self, corrections: Sequence[Correction]) -> list[bool]:
        new = []
        for c in corrections:
            old = self.kept.get(c.message_id)
            fresh = old is None or (old.event_id != c.event_id and old.at <= c.at)
            if fresh:
                self.kept[c.message_id] = c
            new.append(fresh)
        return new

    async def export(self):
        for c in sorted(self.kept.values(), key=lambda c: c.at):
            yield c.line()


def routed(
    queue: Queue,
    rule: str = "reassigned",
    model_category: str = "marketing",
    message_id: str = "m1",
    minutes=0,
) -> CaseRouted:
    classification = decision(model_category, "praise" if model_category == "marketing" else "delivery")
    case = RoutedCase(
        case_id="case-1",
        message_id=message_id,
        conversation_id="conv-1",
        channel="instagram",
        external_id="e1",
        text="Ma commande n'est jamais arrivée, bravo 👏",
        author=Author(id="a1"),
        visibility="public",
        queue=queue,
        priority="P3",
        tags=["reassigned"] if rule == "reassigned" else [],
        rule=rule,
        is_new_case=rule != "reassigned",
        message_created_at=NOW,
        classification=classification.model_copy(update={"model_version": "tfidf-lr-abc-s0"}),
    )
    at = NOW + timedelta(minutes=minutes)
    return CaseRouted(source="test", subject="case-1", partitionkey="case-1", time=at, data=case)


class Moves(list):
    def __call__(self, from_category: str, to_category: str) -> None:
        self.append((from_category, to_category))


async def test_a_case_moved_to_customer_service_is_kept_as_a_support_label():
    store, moves = FakeCorrections(), Moves()
    deps = handlers.Deps(corrections=store, on_corrected=moves)
    event = routed(Queue.CUSTOMER_SERVICE)
    assert await handlers.record_corrections([event], deps) == [[]]
    kept = store.kept["m1"]
    assert (kept.category, kept.model_category, kept.model_version) == (
        "support",
        "marketing",
        "tfidf-lr-abc-s0",
    )
    assert (kept.text, kept.channel, kept.language, kept.case_id) == (
        event.data.text,
        "instagram",
        "fr",
        "case-1",
    )
    assert kept.at == event.time and kept.event_id == event.id
    assert moves == [("marketing", "support")]
    line = json.loads(kept.line())
    example = Example.model_validate_json(kept.line())
    assert example.category_only and example.category == "support" and line["model_category"] == "marketing"


async def test_every_other_routing_is_ignored():
    store, moves = FakeCorrections(), Moves()
    deps = handlers.Deps(corrections=store, on_corrected=moves)
    events = [
        routed(Queue.MARKETING, rule="default", message_id="m1"),
        routed(Queue.CUSTOMER_SERVICE, rule="complaint-x", model_category="support", message_id="m2"),
        routed(Queue.REVIEW, message_id="m3"),
    ]
    assert await handlers.record_corrections(events, deps) == [[], [], []]
    assert store.kept == {} and moves == []


async def test_a_redelivered_reassignment_is_kept_and_counted_once_and_a_later_one_replaces_it():
    store, moves = FakeCorrections(), Moves()
    deps = handlers.Deps(corrections=store, on_corrected=moves)
    first = routed(Queue.CUSTOMER_SERVICE, minutes=1)
    await handlers.record_corrections([first], deps)
    await handlers.record_corrections([first], deps)
    assert moves == [("marketing", "support")]
    back = routed(Queue.MARKETING, minutes=5)
    await handlers.record_corrections([back], deps)
    assert store.kept["m1"].category == "marketing"
    assert moves == [("marketing", "support"), ("marketing", "marketing")]


async def test_without_a_store_nothing_is_recorded_but_the_routings_are_still_consumed():
    moves = Moves()
    deps = handlers.Deps(on_corrected=moves)
    table = handlers.handler_table(deps)
    for topic in (Topic.CASES_CUSTOMER_SERVICE, Topic.CASES_MARKETING):
        handler = table[topic.value][event_type(CaseRouted)]
        assert isinstance(handler, BatchHandler)
        assert await handler.handle([routed(Queue.CUSTOMER_SERVICE)]) == [[]]
    assert Topic.CASES_REVIEW.value not in table
    assert moves == []


class Says:
    """A shadow model that gives one category to every message, and remembers what it was shown."""

    version = "shadow-fake"

    def __init__(self, category: str) -> None:
        self.category, self.seen = category, []

    def classify_many(self, items):
        self.seen += [(i.text, i.channel, i.visibility) for i in items]
        intent = "praise" if self.category == "marketing" else "delivery"
        return [decision(self.category, intent) for _ in items]


class Verdicts(list):
    def __call__(self, role: str, right: bool) -> None:
        self.append((role, right))


async def test_with_a_shadow_each_new_correction_says_which_model_had_the_persons_category():
    store, verdicts, shadow = FakeCorrections(), Verdicts(), Says("support")
    deps = handlers.Deps(corrections=store, shadow=lambda: shadow, on_judged=verdicts)
    event = routed(Queue.CUSTOMER_SERVICE)  # the live model had said marketing
    await handlers.record_corrections([event], deps)
    assert verdicts == [("live", False), ("shadow", True)]
    # The shadow saw the message as the channel gave it.
    assert shadow.seen == [(event.data.text, "instagram", "public")]
    # A redelivery is judged once, like it is counted once.
    await handlers.record_corrections([event], deps)
    assert len(verdicts) == 2
    # Moved back to marketing later: the live model's marketing was right after all, the shadow's not.
    await handlers.record_corrections([routed(Queue.MARKETING, minutes=5)], deps)
    assert verdicts[2:] == [("live", True), ("shadow", False)]


async def test_a_shadow_that_fails_on_corrections_is_counted_and_the_correction_is_still_kept():
    class Broken:
        def classify_many(self, items):
            raise RuntimeError("boom")

    store, verdicts, moves, failures = FakeCorrections(), Verdicts(), Moves(), []
    deps = handlers.Deps(
        corrections=store,
        shadow=lambda: Broken(),
        on_judged=verdicts,
        on_corrected=moves,
        on_shadow_failed=lambda: failures.append(1),
    )
    await handlers.record_corrections([routed(Queue.CUSTOMER_SERVICE)], deps)
    assert "m1" in store.kept and moves == [("marketing", "support")]
    assert verdicts == [] and failures == [1]


async def test_without_a_shadow_no_correction_is_judged():
    store, verdicts = FakeCorrections(), Verdicts()
    deps = handlers.Deps(corrections=store, on_judged=verdicts)
    await handlers.record_corrections([routed(Queue.CUSTOMER_SERVICE)], deps)
    assert "m1" in store.kept and verdicts == []
