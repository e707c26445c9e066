"""`switchboard retrain`: a candidate trained with agents' corrections, and the evidence for or against it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from classifier import learning, retraining
from classifier.examples import Example, Inbound, corpus_files, read_examples, weighted
from classifier.learning import TrainedModel
from classifier.retraining import folds_of, render, retrain
from classifier.training import train
from switchboard.cli import main
from switchboard.contract import Classification
from switchboard.testing import support_classification

# Agents keep moving to customer service the messages that name a product being recalled (an invented
# word the corpus has never seen), however happy they sound: a pattern only the contact centre knows.
RECALLED = [
    f"{a} the {b} vorplex {c}"
    for a, b, c in [
        ("loving", "new", "today"),
        ("so happy with", "shiny", "!!"),
        ("wow", "great", "😍"),
        ("in love with", "gorgeous", "lol"),
        ("cannot stop using", "awesome", "haha"),
        ("big fan of", "cool", "yay"),
        ("what a", "beautiful", "tbh"),
        ("cheers for", "lovely", "mate"),
        ("the best", "amazing", "ever"),
        ("finally got", "fantastic", "woo"),
    ]
]


@pytest.fixture(scope="module")
def corpus() -> list[Example]:
    """A tenth of the packaged corpus: enough to learn the categories, fast to train nine times."""
    return read_examples(corpus_files())[::10]


@pytest.fixture(scope="module")
def current(corpus: list[Example]) -> TrainedModel:
    """The model in force: trained on the corpus alone."""
    return train(corpus, holdout=0)


def support(texts: list[str]) -> list[Example]:
    """Corrections as `switchboard corrections` exports them: category-only, to customer service."""
    return [Example(text=t, channel="x", language="en", category="support") for t in texts]


def write(path: Path, examples: list[Example]) -> Path:
    """Write examples as labelled JSON lines."""
    path.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in examples), encoding="utf-8")
    return path


def test_folds_deal_each_category_evenly_whatever_order_the_export_wrote():
    lines = [
        Example(text=f"message {k}", language="en", category="support" if k % 3 else "marketing")
        for k in range(30)
    ]
    fold = folds_of(lines, 5, seed=0)
    by_category = Counter((e.category, f) for e, f in zip(lines, fold, strict=True))
    assert {n for (category, _), n in by_category.items() if category == "support"} == {4}
    assert {n for (category, _), n in by_category.items() if category == "marketing"} == {2}
    reversed_fold = folds_of(lines[::-1], 5, seed=0)
    assert reversed_fold[::-1] == fold
    assert folds_of(lines, 5, seed=1) != fold
    # Two customers writing the same words: one fold, so no model decides a text it was trained on.
    twice = [*lines, Example(text="message 3", language="en", category="support")]
    assert folds_of(twice, 5, seed=0)[-1] == folds_of(twice, 5, seed=0)[3]
    assert folds_of(twice, 5, seed=0)[:-1] == fold


class Memorising:
    """A fake model that calls support exactly the texts it was trained on: it can fix nothing unseen."""

    def __init__(self, examples: list[Example], version: str = "memorising") -> None:
        self.texts = {e.text for e in examples}
        self.version = version

    def classify_many(self, items: list[Inbound]) -> list[Classification]:
        return [
            support_classification(
                category="support" if i.text in self.texts else "marketing",
                intent="delivery" if i.text in self.texts else "praise",
                model_version=self.version,
            )
            for i in items
        ]


def test_each_correction_is_decided_by_a_model_trained_without_it(monkeypatch: pytest.MonkeyPatch):
    trained_on: list[set[str]] = []

    def fake_train(examples, seed=0, holdout=None):
        trained_on.append({e.text for e in examples})
        return Memorising(examples)

    monkeypatch.setattr(retraining, "train", fake_train)
    corrections = support(RECALLED)
    checked = retraining.cross_check([], corrections, Memorising([], "current"), folds=5)
    # One model per fold, each missing exactly its fold's two corrections: none decides a text it saw.
    assert len(trained_on) == 5
    assert sorted(len(texts) for texts in trained_on) == [8] * 5
    assert set().union(*(set(RECALLED) - texts for texts in trained_on)) == set(RECALLED)
    assert checked.only_candidate_right == 0 and checked.both_wrong == 10
    assert checked.current == "current"


def test_a_pattern_only_the_agents_know_is_fixed_on_corrections_the_candidate_had_not_seen(
    corpus: list[Example], current: TrainedModel
):
    corrections = support(RECALLED)
    # The model in force gets every one of them wrong: that is why agents moved them.
    assert {p.category for p in current.classify_many([Inbound.of(c) for c in corrections])} == {"marketing"}
    # The team's labelled sample happens to hold four of the corrected messages, and six others.
    others = [e for e in read_examples(corpus_files())[1::97] if e.language == "en"][:6]
    sample = [*corrections[:4], *others]
    retrained = retrain(corpus, corrections, current, sample, folds=3)
    # The candidate learnt those four: they would flatter it, so they are left out of the comparison.
    assert retrained.sample_left_out == 4 and retrained.sampled.size == 6
    assert "4 messages of the labelled sample are among the corrections" in render(retrained)
    checked = retrained.cross_checked
    assert checked.size == 10 and checked.only_current_right == 0
    # Trained on the other folds, the candidate already puts most of the unseen ones right.
    assert checked.only_candidate_right >= 6
    assert retrained.worth_shadowing, retrained.reasons
    assert "worth running in shadow" in render(retrained)


def test_corrections_that_contradict_the_labelling_guide_are_caught_on_the_corpus_and_the_sample(
    corpus: list[Example], current: TrainedModel
):
    # Plain praise and contest replies moved to customer service (say, a team that takes every public
    # message): 300 of the corpus's marketing lines that the small corpus does not hold, marked support.
    unseen = [e for k, e in enumerate(read_examples(corpus_files())) if k % 10 and e.category == "marketing"]
    contradicting = support([e.text for e in unseen[::20][:300]])
    sample = [e for e in unseen[1::20][:200] if e.language == "en"]
    retrained = retrain(corpus, contradicting, current, sample, folds=3)
    assert not retrained.worth_shadowing
    assert retrained.corpus_checked.only_current_right > retrained.corpus_checked.only_candidate_right
    assert any("corpus's held-out lines" in r for r in retrained.reasons)
    assert any("worse on the labelled sample" in r for r in retrained.reasons)
    assert "keep the model in force" in render(retrained)


def test_corrections_that_teach_an_emoji_to_mean_marketing_are_caught_by_the_behaviour_checks(
    corpus: list[Example], current: TrainedModel, monkeypatch: pytest.MonkeyPatch
):
    # A team that sends every "🙏" message to marketing: support pleas carrying it, moved there.
    pleas = [e for k, e in enumerate(read_examples(corpus_files())) if k % 10 and e.category == "support"]
    moved = [
        Example(text=f"{e.text} 🙏", channel=e.channel, language=e.language, category="marketing")
        for e in pleas[::40][:150]
    ]
    # The recipe's "a support intent is support" blunts such corrections (they teach the category alone,
    # and the intent head still vouches for the pleas): measured below against the same corrections
    # without it. Without that rule the harm is plain, and the perturbation checks are what see it.
    guarded = retrain(corpus, moved, current, folds=3)
    monkeypatch.setitem(learning.RECIPE, "support_intent_is_support", False)
    retrained = retrain(corpus, moved, current, folds=3)
    assert guarded.behaviour["candidate"]["flip_rate"] < retrained.behaviour["candidate"]["flip_rate"]
    # The pattern is learnt (unseen corrections "fixed"), the written corpus barely holds the emoji, so
    # only the perturbation checks see the harm: "flight delayed again 🙏" turned marketing.
    assert retrained.cross_checked.only_candidate_right > retrained.cross_checked.only_current_right
    flipped = retrained.behaviour["candidate"]["flip_rate"]
    assert flipped > max(0.02, retrained.behaviour["current"]["flip_rate"] + 0.01)
    assert not retrained.worth_shadowing
    assert any(r.startswith("behaviour checks: flip rate") for r in retrained.reasons)
    assert retrained.sampled is None and "No labelled sample (--sample) left to compare" in render(retrained)


def test_the_command_writes_the_model_switchboard_train_writes_and_exits_by_its_verdict(
    corpus: list[Example], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    data = write(tmp_path / "corpus.jsonl", corpus)
    corrections = write(tmp_path / "corrections.jsonl", support(RECALLED))
    current = tmp_path / "current"
    assert main(["train", "--data", str(data), "--out", str(current)]) == 0
    args = ["retrain", "--data", str(data), "--corrections", str(corrections), "--against", str(current)]
    assert main([*args, "--out", str(tmp_path / "candidate"), "--folds", "3"]) == 0
    printed = capsys.readouterr().out
    assert "Verdict:" in printed and "worth running in shadow" in printed
    assert main(["train", "--data", str(data), str(corrections), "--out", str(tmp_path / "trained")]) == 0
    candidate = json.loads((tmp_path / "candidate" / "meta.json").read_text())
    trained = json.loads((tmp_path / "trained" / "meta.json").read_text())
    assert candidate["model_sha256"] == trained["model_sha256"]
    assert (tmp_path / "candidate" / "model.npz").read_bytes() == (
        tmp_path / "trained" / "model.npz"
    ).read_bytes()


def test_too_few_corrections_for_the_folds_are_refused_with_the_reason(
    corpus: list[Example], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    data = write(tmp_path / "corpus.jsonl", corpus)
    corrections = write(tmp_path / "corrections.jsonl", support(RECALLED[:3]))
    args = ["retrain", "--data", str(data), "--corrections", str(corrections), "--against", "lexicon"]
    assert main([*args, "--out", str(tmp_path / "candidate")]) == 1
    assert "cannot retrain: 3 corrections: at least 5 are needed for 5 folds" in capsys.readouterr().err
    assert not (tmp_path / "candidate").exists()


def test_own_lines_count_their_weight_in_the_candidate_and_are_kept_out_of_the_sample(
    corpus: list[Example], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    data = write(tmp_path / "corpus.jsonl", corpus)
    corrections = write(tmp_path / "corrections.jsonl", support(RECALLED[:5]))
    own = write(tmp_path / "own.jsonl", support(RECALLED[5:]))
    # `--own F --own-weight 3` trains the model a file whose lines say "weight": 3 trains.
    weighted = tmp_path / "weighted.jsonl"
    weighted.write_text(
        "".join(json.dumps({**json.loads(line), "weight": 3}) + "\n" for line in own.read_text().splitlines())
    )
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                str(corrections),
                "--own",
                str(own),
                "--own-weight",
                "3",
                "--out",
                str(tmp_path / "trained"),
            ]
        )
        == 0
    )
    assert (
        main(["train", "--data", str(data), str(corrections), str(weighted), "--out", str(tmp_path / "file")])
        == 0
    )
    assert (
        main(["train", "--data", str(data), str(corrections), str(own), "--out", str(tmp_path / "once")]) == 0
    )
    sha = {
        d: json.loads((tmp_path / d / "meta.json").read_text())["model_sha256"]
        for d in ("trained", "file", "once")
    }
    assert sha["trained"] == sha["file"] != sha["once"]
    counted = json.loads((tmp_path / "trained" / "meta.json").read_text())["counts"]
    assert counted["weight"] == {"1": len(corpus) + 5, "3": 5}
    assert "weight" not in json.loads((tmp_path / "once" / "meta.json").read_text())["counts"]
    # retrain --own writes that same candidate; a sampled message among the own lines is left out.
    sample = write(tmp_path / "sample.jsonl", support(RECALLED[8:]) + corpus[:4])
    args = ["retrain", "--data", str(data), "--corrections", str(corrections), "--own", str(own)]
    args += [
        "--own-weight",
        "3",
        "--against",
        str(tmp_path / "once"),
        "--sample",
        str(sample),
        "--folds",
        "3",
    ]
    assert main([*args, "--out", str(tmp_path / "candidate")]) in (0, 3)
    candidate = json.loads((tmp_path / "candidate" / "meta.json").read_text())["model_sha256"]
    assert candidate == sha["trained"]
    printed = capsys.readouterr().out
    assert "2 messages of the labelled sample are among the corrections or own lines" in printed
    # Both kinds of new lines are cross-checked, each against the model in force, and both are reported.
    assert "On the corrections, each decided by a candidate trained without it:" in printed
    assert "On your own labelled lines, each decided by a candidate trained without it:" in printed


def test_a_weight_outside_one_to_a_hundred_is_refused_with_the_reason(
    corpus: list[Example], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    data = write(tmp_path / "corpus.jsonl", corpus[:50])
    own = write(tmp_path / "own.jsonl", support(RECALLED))
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--own",
                str(own),
                "--own-weight",
                "0",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 1
    )
    assert "cannot train: weight 0: Input should be greater than or equal to 1" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_own_labelled_lines_alone_are_cross_checked_and_can_make_a_candidate_worth_a_shadow(
    corpus: list[Example], current: TrainedModel, monkeypatch: pytest.MonkeyPatch
):
    # A team labelled a sample of its traffic; the recalled product's messages are support there, and the
    # model in force calls them marketing. No agent moved anything yet: no corrections.
    own = weighted(support(RECALLED), 5)
    # A model taught by own labels decides English without the two support rules. Trained on this
    # fixture (a tenth of the corpus) its category head alone fails the guide's written cases too often
    # (8.5% against the model in force's 5.9%; trained on the whole corpus with 1,000 real own labels,
    # 1.0% against 0.5%), and the behaviour guard says so. This test is about the cross-check, so it
    # keeps the rules; the guard's verdict on the exemption is checked first.
    refused = retrain(corpus, [], current, folds=3, own=own)
    assert not refused.worth_shadowing
    assert [r for r in refused.reasons if r.startswith("behaviour checks")] == refused.reasons
    monkeypatch.setitem(learning.RECIPE, "own_labels_english_without_support_rules", False)
    retrained = retrain(corpus, [], current, folds=3, own=own)
    assert retrained.cross_checked is None
    checked = retrained.own_checked
    assert checked.size == 10 and checked.only_current_right == 0 and checked.only_candidate_right >= 6
    assert retrained.worth_shadowing, retrained.reasons
    shown = render(retrained)
    assert "On your own labelled lines, each decided by a candidate trained without it:" in shown
    assert "On the corrections" not in shown


def test_own_labelled_lines_the_model_in_force_already_gets_right_are_no_gain(
    corpus: list[Example], current: TrainedModel
):
    # Ten messages of the traffic the model in force decides right: nothing for a candidate to fix.
    unseen = [e for k, e in enumerate(read_examples(corpus_files())) if k % 10 and e.language == "en"]
    decided = current.classify_many([Inbound.of(e) for e in unseen[:200]])
    right = [e for e, p in zip(unseen, decided, strict=False) if p.category == e.category][:10]
    own = [Example(text=e.text, channel=e.channel, language=e.language, category=e.category) for e in right]
    retrained = retrain(corpus, [], current, folds=3, own=own)
    assert retrained.own_checked.only_candidate_right == 0
    assert not retrained.worth_shadowing
    assert any(
        r.startswith("on own labelled lines it had not seen") and r.endswith("no gain")
        for r in retrained.reasons
    )


def test_retraining_with_neither_corrections_nor_own_lines_is_refused(
    corpus: list[Example], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    data = write(tmp_path / "corpus.jsonl", corpus[:50])
    assert main(["retrain", "--data", str(data), "--against", "lexicon", "--out", str(tmp_path / "c")]) == 1
    assert (
        "cannot retrain: no corrections and no own labelled lines to retrain with" in capsys.readouterr().err
    )
    assert not (tmp_path / "c").exists()


def test_a_loss_in_one_language_of_the_sample_is_named_even_beside_the_other(
    corpus: list[Example], current: TrainedModel
):
    # French praise moved to customer service; the sample: English lines and French marketing lines.
    unseen = [e for k, e in enumerate(read_examples(corpus_files())) if k % 10]
    french = [e for e in unseen if e.category == "marketing" and e.language == "fr"]
    contradicting = [
        Example(text=e.text, channel="x", language="fr", category="support") for e in french[::20][:300]
    ]
    sample = [e for e in unseen[1::40] if e.language == "en"][:150] + french[1::20][:100]
    retrained = retrain(corpus, contradicting, current, sample, folds=3)
    assert set(retrained.sampled_by_language) == {"en", "fr"}
    fr = retrained.sampled_by_language["fr"]
    assert fr.size == 100 and fr.only_current_right > fr.only_candidate_right and fr.p_value < 0.05
    assert any("labelled sample's fr messages" in r for r in retrained.reasons)
    assert "  fr alone: 100 messages" in render(retrained)
