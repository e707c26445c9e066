"""Unit tests of the behaviour checks: the suite file, the counting, and the shipped model against them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from classifier import behaviour
from classifier.examples import CORPUS, Inbound, read_examples
from classifier.retraining import BEHAVIOUR_LIMITS
from classifier.training import train
from switchboard.contract import Classification
from switchboard.testing import support_classification


def decided(category: str) -> Classification:
    """A decision whose category alone matters to the checks."""
    return support_classification(
        category=category, intent="chatter" if category == "marketing" else "complaint"
    )


def test_the_shipped_suite_expands_every_capability_in_both_languages():
    suite = behaviour.load()
    by_capability: dict[str, set[str]] = {}
    for case in suite.cases:
        by_capability.setdefault(case.capability, set()).add(case.language)
        assert "{" not in case.text and case.expect in ("support", "marketing")
    assert len(by_capability) >= 10
    assert all(languages == {"en", "fr"} for languages in by_capability.values()), by_capability
    # Both categories are checked, and every perturbation applies to some case.
    assert {c.expect for c in suite.cases} == {"support", "marketing"}
    assert all(any(p.applies(c) for c in suite.cases) for p in suite.perturbations)


def test_a_model_that_always_says_support_fails_exactly_the_marketing_cases():
    suite = behaviour.load()
    report = behaviour.check(lambda items: [decided("support") for _ in items], suite, "always-support")
    marketing = sum(c.expect == "marketing" for c in suite.cases)
    assert 0 < report.failed.total() == marketing < len(suite.cases)
    # It never changes its mind, so no perturbation flips a right answer.
    assert report.flipped.total() == 0 and report.tried.total() > 0
    assert "always-support" in behaviour.render(report)


def test_a_flip_is_counted_against_the_perturbation_that_caused_it(tmp_path: Path):
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(
        """
brands: {en: ["@A", "@B"], fr: ["@C"]}
capabilities:
  - name: plea
    expect: support
    en: ["{brand} help me"]
    fr: ["{brand} aidez-moi"]
perturbations:
  - {name: pray, append: " 🙏"}
  - {name: hello, prepend: "hi ", lang: en}
""",
        encoding="utf-8",
    )
    suite = behaviour.load(suite_file)

    def pray_means_marketing(items: Sequence[Inbound]) -> list[Classification]:
        return [decided("marketing" if "🙏" in i.text else "support") for i in items]

    report = behaviour.check(pray_means_marketing, suite, "fake")
    assert report.failed.total() == 0
    assert report.tried == {"pray": 3, "hello": 2}
    assert report.flipped == {"pray": 3}
    assert [c.text for _, c, _ in report.flips] == ["@A help me 🙏", "@B help me 🙏", "@C aidez-moi 🙏"]


def test_a_suite_with_an_unknown_category_is_refused(tmp_path: Path):
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(
        "brands: {en: ['@A'], fr: ['@B']}\ncapabilities:\n  - {name: x, expect: sales, en: ['{brand} hi']}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="expect must be support or marketing"):
        behaviour.load(suite_file)


def test_the_training_corpus_copies_no_case_of_the_suite():
    suite = behaviour.load()
    # The check itself sees a copy whatever handle it carries, and lets a different line through.
    case = next(c for c in suite.cases if c.text.startswith("@"))
    copy = case.text.replace(case.text.split()[0], "@SomeoneElse")
    assert [text for text, _ in behaviour.copied(suite, [copy, "a line of its own"])] == [copy]
    texts = [e.text for e in read_examples([CORPUS])]
    assert behaviour.copied(suite, texts) == []


@pytest.fixture(scope="module")
def shipped():
    return train(read_examples([CORPUS]), holdout=0)


def test_the_shipped_model_passes_the_behaviour_checks(shipped):
    """A regression guard: measured 2026-12-07, 6 of 390 cases failed (1.5%) and perturbations flipped 19
    of 2958 right answers (0.6%; 2.7% before the eleventh corpus round, written for the emojis that
    flipped them); the lexicon baseline fails 8.5% and flips 4.1%."""
    report = behaviour.check(shipped.classify_many, behaviour.load(), shipped.version)
    # The same limits `switchboard retrain` holds a candidate to.
    assert report.failure_rate <= BEHAVIOUR_LIMITS["failure_rate"] == 0.03, behaviour.render(report)
    assert report.flip_rate <= BEHAVIOUR_LIMITS["flip_rate"] == 0.02, behaviour.render(report)


def test_switchboard_evaluate_runs_the_checks_on_any_model(capsys: pytest.CaptureFixture[str]):
    from switchboard.cli import main

    assert main(["evaluate", "--model", "lexicon", "--behaviour", "--show", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("behaviour checks of lexicon-") and "first 2 failures:" in out
    # Without labelled data or the checks there is nothing to evaluate: said, not a traceback.
    assert main(["evaluate", "--model", "lexicon"]) == 2
    assert "give --data" in capsys.readouterr().err


def test_switchboard_evaluate_compares_a_candidate_with_the_model_in_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from switchboard.cli import main

    data = tmp_path / "labelled.jsonl"
    data.write_text(
        '{"text": "my parcel never arrived, where is it?", "language": "en", "category": "support"}\n'
        '{"text": "love the new collection, gorgeous", "language": "en", "category": "marketing"}\n',
        encoding="utf-8",
    )
    assert main(["evaluate", "--model", "lexicon", "--against", "lexicon", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "candidate lexicon-0.1.0 against current lexicon-0.1.0 on 2 messages" in out
    assert "McNemar's exact test p = 1.000" in out
    assert main(["evaluate", "--model", "lexicon", "--against", "lexicon", "--behaviour"]) == 2
    assert "--against compares two models on --data" in capsys.readouterr().err
