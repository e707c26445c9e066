"""Score a classifier on labelled examples: per-class precision, recall and F1, confusion, calibration."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from scipy.stats import binomtest
from sklearn.metrics import f1_score

from classifier.choice import Lexicon
from classifier.examples import Example, Inbound
from switchboard.contract import MARKETING_INTENTS, SUPPORT_INTENTS, Classification

# Label orders for reports: support side first, as the contract lists them.
ORDERS: dict[str, tuple[str, ...]] = {
    "category": ("support", "marketing"),
    "intent": (*SUPPORT_INTENTS, *MARKETING_INTENTS),
    "is_complaint": ("true", "false"),
    "sentiment": ("negative", "neutral", "positive"),
}
BINS = 10


class Classifier(Protocol):
    """Anything that classifies a batch of inbound messages."""

    def classify_many(self, items: Sequence[Inbound]) -> list[Classification]: ...


# The lexicon behind the batch interface, so both models are scored the same way.
Baseline = Lexicon


@dataclass(frozen=True, slots=True)
class ClassScores:
    """How well one label was found."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class HeadReport:
    """One decision's scores: per class, overall, and which label was taken for which (rows are gold)."""

    head: str
    labels: list[str]
    classes: list[ClassScores]
    accuracy: float
    macro_f1: float
    confusion: list[list[int]]


@dataclass(frozen=True, slots=True)
class Bin:
    """Messages whose category confidence fell in [lower, upper): how sure the model was, how right."""

    lower: float
    upper: float
    count: int
    confidence: float
    accuracy: float


@dataclass(frozen=True, slots=True)
class Report:
    """A model's scores on a labelled set; a head no example carries a label for has no report."""

    model_version: str
    size: int
    heads: dict[str, HeadReport]
    ece: float
    bins: list[Bin]
    # The category head on each labelled language's examples alone, when there are two languages or more
    # (the targets are per language; a figure over both hides the weaker one).
    by_language: dict[str, HeadReport] = field(default_factory=dict)


def _label(value: object) -> str:
    """Spell a label as reports do ("true", not True)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _head(head: str, gold: list[str], predicted: list[str]) -> HeadReport:
    """Score one decision; the labels are those seen in either list, macro-F1 their plain mean."""
    seen = set(gold) | set(predicted)
    labels = [label for label in ORDERS[head] if label in seen]
    at = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        confusion[at[g]][at[p]] += 1
    classes = []
    for i, label in enumerate(labels):
        hit = confusion[i][i]
        taken = sum(row[i] for row in confusion)
        actual = sum(confusion[i])
        precision = hit / taken if taken else 0.0
        recall = hit / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        classes.append(ClassScores(label, precision, recall, f1, actual))
    right = sum(confusion[i][i] for i in range(len(labels)))
    return HeadReport(
        head=head,
        labels=labels,
        classes=classes,
        accuracy=right / len(gold) if gold else 0.0,
        macro_f1=sum(c.f1 for c in classes) / len(classes) if classes else 0.0,
        confusion=confusion,
    )


def _calibration(confidence: list[float], correct: list[bool]) -> tuple[float, list[Bin]]:
    """Bin category confidences in tenths; the expected calibration error weighs each bin's gap by size."""
    members: list[list[int]] = [[] for _ in range(BINS)]
    for i, c in enumerate(confidence):
        members[min(int(c * BINS), BINS - 1)].append(i)
    bins, ece = [], 0.0
    for b, inside in enumerate(members):
        mean = sum(confidence[i] for i in inside) / len(inside) if inside else 0.0
        accuracy = sum(correct[i] for i in inside) / len(inside) if inside else 0.0
        ece += len(inside) / len(confidence) * abs(accuracy - mean) if confidence else 0.0
        bins.append(Bin(b / BINS, (b + 1) / BINS, len(inside), mean, accuracy))
    return ece, bins


def score(examples: Sequence[Example], predicted: Sequence[Classification], model_version: str) -> Report:
    """Compare decisions with the labels of the same examples."""
    if len(examples) != len(predicted):
        raise ValueError(f"{len(examples)} examples but {len(predicted)} decisions")
    heads = {}
    for head in ORDERS:
        # A category-only line (an agent's correction) scores the category head alone.
        pairs = [(e, p) for e, p in zip(examples, predicted, strict=True) if getattr(e, head) is not None]
        if pairs or head == "category":
            gold = [_label(getattr(e, head)) for e, _ in pairs]
            heads[head] = _head(head, gold, [_label(getattr(p, head)) for _, p in pairs])
    ece, bins = _calibration(
        [p.confidence for p in predicted],
        [p.category == e.category for e, p in zip(examples, predicted, strict=True)],
    )
    by_language = {
        lang: _head("category", [examples[i].category for i in at], [predicted[i].category for i in at])
        for lang, at in _by_language(examples).items()
    }
    return Report(model_version, len(examples), heads, ece, bins, by_language)


def _by_language(examples: Sequence[Example]) -> dict[str, list[int]]:
    """Return each labelled language's positions among the examples, in language order, when there are
    two languages or more (with one, the per-language figures would repeat the overall ones)."""
    at: dict[str, list[int]] = {}
    for i, example in enumerate(examples):
        at.setdefault(example.language, []).append(i)
    return dict(sorted(at.items())) if len(at) > 1 else {}


def evaluate(model: Classifier, examples: Sequence[Example]) -> Report:
    """Classify the examples as the service would see them and score the decisions."""
    predicted = model.classify_many([Inbound.of(e) for e in examples])
    version = predicted[0].model_version if predicted else getattr(model, "version", "")
    return score(examples, predicted, version)


@dataclass(frozen=True, slots=True)
class Paired:
    """Two models' category decisions on the same labelled messages, counted message by message."""

    candidate: str
    current: str
    size: int
    both_right: int
    only_candidate_right: int
    only_current_right: int
    both_wrong: int
    macro_f1: tuple[float, float]
    # McNemar's exact test: how likely a split at least this uneven of the messages exactly one model
    # got right would be if the two models were equally good.
    p_value: float


def compare(candidate: Classifier, current: Classifier, examples: Sequence[Example]) -> Paired:
    """Decide the examples with both models and count where each is right, for a paired verdict.

    Two macro-F1 figures on a few hundred messages differ by a point or two by chance; the messages on
    which the models disagree say whether the difference is more than that.
    """
    return compare_by_language(candidate, current, examples)[0]


def compare_by_language(
    candidate: Classifier, current: Classifier, examples: Sequence[Example]
) -> tuple[Paired, dict[str, Paired]]:
    """Compare as `compare` does, and on each labelled language's examples alone when there are two
    languages or more (a gain in one can hide a loss in the other)."""
    items = [Inbound.of(e) for e in examples]
    new, old = candidate.classify_many(items), current.classify_many(items)
    versions = (new[0].model_version, old[0].model_version) if examples else ("", "")
    gold = [e.category for e in examples]
    new_categories, old_categories = [p.category for p in new], [p.category for p in old]
    overall = paired(gold, new_categories, old_categories, versions)
    by_language = {
        lang: paired(
            [gold[i] for i in at], [new_categories[i] for i in at], [old_categories[i] for i in at], versions
        )
        for lang, at in _by_language(examples).items()
    }
    return overall, by_language


def paired(gold: Sequence, new: Sequence, old: Sequence, versions: tuple[str, str]) -> Paired:
    """Count, label by label, where a candidate's and the current model's decisions are right."""
    # (candidate right, current right) for every message.
    tally = Counter((n == g, o == g) for n, o, g in zip(new, old, gold, strict=True))
    only_new, only_old = tally[True, False], tally[False, True]
    discordant = only_new + only_old
    p_value = binomtest(min(only_new, only_old), discordant, 0.5).pvalue if discordant else 1.0
    f1 = (
        float(f1_score(gold, new, average="macro", zero_division=0)),
        float(f1_score(gold, old, average="macro", zero_division=0)),
    )
    return Paired(
        *versions, len(gold), tally[True, True], only_new, only_old, tally[False, False], f1, float(p_value)
    )


def render_paired(paired: Paired, decision: str = "category") -> str:
    """Write the paired comparison of one decision and what it allows one to conclude."""
    gained = paired.only_candidate_right - paired.only_current_right
    verdict = (
        "the difference is unlikely to be chance (p < 0.05)"
        if paired.p_value < 0.05
        else "a difference this size is within chance (p >= 0.05): no evidence either is better here"
    )
    return "\n".join(
        [
            f"candidate {paired.candidate} against current {paired.current} on {paired.size} messages",
            f"  {decision} macro-F1: candidate {paired.macro_f1[0]:.3f}, current {paired.macro_f1[1]:.3f}",
            f"  both right {paired.both_right}, both wrong {paired.both_wrong}; only the candidate right "
            f"{paired.only_candidate_right}, only the current right {paired.only_current_right} "
            f"({gained:+d} messages for the candidate)",
            f"  McNemar's exact test p = {paired.p_value:.3f}: {verdict}",
        ]
    )


def summary(report: Report) -> dict:
    """Keep the headline numbers of a report, for an artefact's metadata."""
    return {
        "size": report.size,
        "accuracy": {h: round(r.accuracy, 4) for h, r in report.heads.items()},
        "macro_f1": {h: round(r.macro_f1, 4) for h, r in report.heads.items()},
        "category_ece": round(report.ece, 4),
    }


def render(report: Report) -> str:
    """Write a report as plain-text tables."""
    lines = [f"model {report.model_version} on {report.size} labelled messages", ""]
    for r in report.heads.values():
        scored = sum(c.support for c in r.classes)
        on = f" (on the {scored} that carry this label)" if scored != report.size else ""
        lines.append(f"{r.head}: accuracy {r.accuracy:.3f}, macro-F1 {r.macro_f1:.3f}{on}")
        width = max(len(label) for label in [*r.labels, "label"])
        lines.append(f"  {'label':<{width}}  precision  recall     F1  support")
        for c in r.classes:
            lines.append(
                f"  {c.label:<{width}}  {c.precision:9.3f}  {c.recall:6.3f}  {c.f1:5.3f}  {c.support:7d}"
            )
        short = [label[:6] for label in r.labels]
        lines.append("  confusion: rows are the labels, columns the decisions")
        lines.append(f"  {'':<{width}} {' '.join(f'{s:>6}' for s in short)}")
        for label, row in zip(r.labels, r.confusion, strict=True):
            lines.append(f"  {label:<{width}} {' '.join(f'{n:6d}' for n in row)}")
        lines.append("")
    if report.by_language:
        lines.append("category by the labelled language:")
        for lang, r in report.by_language.items():
            scored = sum(c.support for c in r.classes)
            f1 = ", ".join(f"{c.label} {c.f1:.3f}" for c in r.classes)
            lines.append(
                f"  {lang}: {scored} messages, accuracy {r.accuracy:.3f}, macro-F1 {r.macro_f1:.3f} (F1 {f1})"
            )
        lines.append("")
    lines.append(f"category calibration: expected calibration error {report.ece:.3f}")
    lines.append("  confidence   count  mean conf.  accuracy")
    for b in report.bins:
        if b.count:
            where = f"[{b.lower:.1f}, {b.upper:.1f}{']' if b.upper >= 1.0 else ')'}"
            lines.append(f"  {where}  {b.count:6d}  {b.confidence:10.3f}  {b.accuracy:8.3f}")
    return "\n".join(lines)
