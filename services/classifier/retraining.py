"""Retrain with agents' corrections and say, before anything goes live, whether the candidate is better.

Corrections are the messages the model in force got wrong with confidence, so a candidate trained on them
looks perfect on them and any model that disagrees with the one in force looks good on them. The check
here is cross-validated instead: the corrections are dealt into folds, and each fold is decided by a
candidate trained on the corpus and the *other* folds, as a message it has not seen. What that says is
how many errors like the ones the agents corrected the candidate fixes; what it breaks on everything else
only a random labelled sample of the contact centre's own traffic can say (`sample`), and the behaviour
checks catch what a person notices at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from classifier import behaviour, evaluation
from classifier.evaluation import Classifier, Paired
from classifier.examples import Example, Inbound, split
from classifier.learning import RECIPE, TrainedModel
from classifier.training import train

FOLDS = 5
# What the shipped model is held to by its unit tests (tests/unit/test_classifier_behaviour.py): a candidate
# over these, and worse than the model in force by more than half of one, on the labelling guide's cases or
# on right answers flipped by harmless perturbations, is not shadowed.
BEHAVIOUR_LIMITS = {"failure_rate": 0.03, "flip_rate": 0.02}


@dataclass(frozen=True, slots=True)
class Retrained:
    """A candidate trained with corrections and own labelled lines, and the evidence for or against it."""

    candidate: TrainedModel
    # The corrections decided by candidates that had not seen them, against the model in force (None
    # without corrections).
    cross_checked: Paired | None
    # The corpus's held-out share, decided by a model trained on the rest with the corrections and own
    # lines and by one trained on the rest alone: what the new lines cost the written examples.
    corpus_checked: Paired
    # A labelled random sample of the traffic, both models on it, without the messages the candidate
    # was trained on (None when none was given, or none is left).
    sampled: Paired | None
    sample_left_out: int
    behaviour: dict[str, dict]
    worth_shadowing: bool
    reasons: list[str]
    # The own labelled lines (a random sample of the traffic, labelled) decided by candidates that had
    # not seen them, against the model in force: unbiased, unlike corrections (None without them).
    own_checked: Paired | None = None
    # The labelled sample's comparison on each language alone, when it holds two or more.
    sampled_by_language: dict[str, Paired] = field(default_factory=dict)


def folds_of(examples: Sequence[Example], folds: int, seed: int) -> list[int]:
    """Deal the examples into `folds` folds, each category spread evenly, by a hash of the text and seed.

    The same lines always fall in the same folds, whatever order the export wrote them in, and lines of
    the same text (two customers writing "help") in the same fold: a model never decides a text it saw.
    """
    first: dict[str, str] = {}
    for example in examples:
        first.setdefault(example.text, example.category)

    def draw(text: str) -> tuple[str, str]:
        return first[text], hashlib.sha256(f"{seed}\n{text}".encode()).hexdigest()

    fold_of = {text: position % folds for position, text in enumerate(sorted(first, key=draw))}
    return [fold_of[example.text] for example in examples]


def cross_check(
    corpus: Sequence[Example],
    corrections: Sequence[Example],
    current: Classifier,
    folds: int = FOLDS,
    seed: int = 0,
    name: str = "candidate",
    kind: str = "corrections",
) -> Paired:
    """Decide every correction (or own line) with a candidate trained without it; count against the model
    in force."""
    if len(corrections) < folds:
        raise ValueError(f"{len(corrections)} {kind}: at least {folds} are needed for {folds} folds")
    fold = folds_of(corrections, folds, seed)
    decided = [""] * len(corrections)
    for k in range(folds):
        held = [i for i, f in enumerate(fold) if f == k]
        rest = [c for c, f in zip(corrections, fold, strict=True) if f != k]
        # No held-out twin: only these decisions are wanted from each fold's model.
        model = train([*corpus, *rest], seed=seed, holdout=0)
        for i, p in zip(held, model.classify_many([Inbound.of(corrections[i]) for i in held]), strict=True):
            decided[i] = p.category
    live = current.classify_many([Inbound.of(c) for c in corrections])
    return evaluation.paired(
        [c.category for c in corrections],
        decided,
        [p.category for p in live],
        (f"{name} (cross-checked)", live[0].model_version),
    )


def corpus_check(corpus: Sequence[Example], corrections: Sequence[Example], seed: int = 0) -> Paired:
    """Decide the corpus's held-out share with and without the new lines (corrections, own labelled lines)
    in training, message by message.

    The corpus is written by the labelling guide; new lines that contradict it (a case moved for a reason
    other than its category, a team labelling every public message support) show as right answers lost.
    """
    rest, held = split(corpus, seed, RECIPE["holdout"])
    items = [Inbound.of(e) for e in held]
    with_them = train([*rest, *corrections], seed=seed, holdout=0).classify_many(items)
    without = train(rest, seed=seed, holdout=0).classify_many(items)
    return evaluation.paired(
        [e.category for e in held],
        [p.category for p in with_them],
        [p.category for p in without],
        ("with the new lines", "without"),
    )


def retrain(
    corpus: Sequence[Example],
    corrections: Sequence[Example],
    current: Classifier,
    sample: Sequence[Example] = (),
    folds: int = FOLDS,
    seed: int = 0,
    own: Sequence[Example] = (),
) -> Retrained:
    """Train a candidate on the corpus, the corrections and own labelled lines; weigh it against the model
    in force.

    The candidate is the model `switchboard train --data CORPUS CORRECTIONS --own OWN --seed SEED` writes
    (`own` weighted already). It is worth running in shadow when, on corrections it had not seen, it
    fixes more of the model in force's errors than it makes new ones; when, on own lines it had not seen
    (a labelled random sample of the traffic, cross-checked the same way), it is not significantly worse,
    and better when there are no corrections; when its behaviour checks stay within the shipped model's
    limits (or within half of them of the model in force's); when the new lines do not cost the corpus's
    held-out lines significantly; and, given a labelled sample, when it is not significantly worse there
    (McNemar's exact test, p < 0.05, for each comparison), in all and, when the sample holds two
    languages or more, in each.
    """
    if not corrections and not own:
        raise ValueError("no corrections and no own labelled lines to retrain with")
    candidate = train([*corpus, *corrections, *own], seed=seed)
    version = candidate.version
    checked = (
        cross_check([*corpus, *own], corrections, current, folds, seed, version) if corrections else None
    )
    own_checked = (
        cross_check([*corpus, *corrections], own, current, folds, seed, version, "own labelled lines")
        if own
        else None
    )
    corpus_checked = corpus_check(corpus, [*corrections, *own], seed)
    # A sampled message that was also corrected, or labelled as one's own, is one the candidate learnt: it
    # would flatter it there.
    seen = {c.text for c in [*corrections, *own]}
    unseen = [e for e in sample if e.text not in seen]
    sampled, sampled_by_language = (
        evaluation.compare_by_language(candidate, current, unseen) if unseen else (None, {})
    )
    # `train` ran the candidate's behaviour checks already; only the model in force's are left to run.
    checks = {
        "candidate": candidate.evaluation["behaviour"],
        "current": behaviour.summary(behaviour.check(current.classify_many, behaviour.load(), "")),
    }
    reasons = []
    if checked is not None and checked.only_candidate_right <= checked.only_current_right:
        reasons.append(
            f"on corrections it had not seen it fixed {checked.only_candidate_right} errors of the model in "
            f"force and got {checked.only_current_right} of its right answers wrong: no gain"
        )
    if own_checked is not None:
        gained, lost = own_checked.only_candidate_right, own_checked.only_current_right
        # Without corrections the own lines must show a gain; with them, no significant loss is enough.
        wrong = "worse" if _worse(own_checked) else "no gain" if checked is None and gained <= lost else None
        if wrong:
            reasons.append(
                f"on own labelled lines it had not seen it got {gained} right that the model in force got "
                f"wrong, {lost} the other way (p = {own_checked.p_value:.3f}): {wrong}"
            )
    for rate, limit in BEHAVIOUR_LIMITS.items():
        # Over the shipped model's limit, and clearly worse than the model in force (which a corpus of
        # one's own may already put over it): two trainings on nearly the same data differ by a few cases.
        found, before = checks["candidate"][rate], checks["current"][rate]
        if found > max(limit, before + limit / 2):
            reasons.append(
                f"behaviour checks: {rate.replace('_', ' ')} {found:.1%}, over {limit:.0%} and over the "
                f"model in force's {before:.1%} by more than {limit / 2:.1%}"
            )
    if _worse(corpus_checked):
        reasons.append(
            f"the new lines cost the corpus's held-out lines {corpus_checked.only_current_right} right "
            f"answers for {corpus_checked.only_candidate_right} (p = {corpus_checked.p_value:.3f}): some "
            "may contradict the labelling guide"
        )
    for where, compared in (
        ("", sampled),
        *((f"'s {lang} messages", p) for lang, p in sampled_by_language.items()),
    ):
        if compared is not None and _worse(compared):
            reasons.append(
                f"worse on the labelled sample{where}: {compared.only_candidate_right} messages right that "
                f"the model in force got wrong, {compared.only_current_right} the other way "
                f"(p = {compared.p_value:.3f})"
            )
    left_out = len(sample) - len(unseen)
    return Retrained(
        candidate,
        checked,
        corpus_checked,
        sampled,
        left_out,
        checks,
        not reasons,
        reasons,
        own_checked,
        sampled_by_language,
    )


def _worse(paired: Paired) -> bool:
    """Tell whether the candidate loses more messages than it gains, beyond chance."""
    return paired.only_current_right > paired.only_candidate_right and paired.p_value < 0.05


def render(retrained: Retrained) -> str:
    """Write the evidence and the verdict, in the order an operator reads them."""
    checks = retrained.behaviour
    lines = []
    for title, paired in (
        ("On the corrections, each decided by a candidate trained without it:", retrained.cross_checked),
        (
            "On your own labelled lines, each decided by a candidate trained without it:",
            retrained.own_checked,
        ),
        ("On the corpus's held-out lines, trained with and without the new lines:", retrained.corpus_checked),
    ):
        if paired is not None:
            lines += [title, "  " + evaluation.render_paired(paired).replace("\n", "\n  ")]
    if retrained.sample_left_out:
        lines.append(
            f"{retrained.sample_left_out} messages of the labelled sample are among the corrections or "
            "own lines the candidate learnt from: left out of its comparison."
        )
    if retrained.sampled is not None:
        lines += [
            "On the labelled sample of your traffic:",
            "  " + evaluation.render_paired(retrained.sampled).replace("\n", "\n  "),
        ]
        for lang, compared in retrained.sampled_by_language.items():
            lines.append(
                f"  {lang} alone: {compared.size} messages, macro-F1 candidate {compared.macro_f1[0]:.3f}, "
                f"current {compared.macro_f1[1]:.3f}; {compared.only_candidate_right} right only for the "
                f"candidate, {compared.only_current_right} only for the current (p = {compared.p_value:.3f})"
            )
    else:
        lines.append(
            "No labelled sample (--sample) left to compare: what the candidate changes on the rest of your "
            "traffic is not measured here; the shadow's disagreements will show how much it changes."
        )
    lines.append(
        "Behaviour checks: "
        + "; ".join(
            f"{role} {c['failed']} of {c['cases']} cases failed, {c['flipped']} of {c['perturbed']} flipped"
            for role, c in checks.items()
        )
    )
    if retrained.worth_shadowing:
        lines.append(
            f"Verdict: {retrained.candidate.version} is worth running in shadow (CLASSIFIER_SHADOW_MODEL) "
            "before it replaces the model in force."
        )
    else:
        lines.append("Verdict: keep the model in force:")
        lines += [f"  - {reason}" for reason in retrained.reasons]
    return "\n".join(lines)
