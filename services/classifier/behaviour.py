"""Behaviour checks of the category decision: the labelling guide's rules as short, unambiguous messages.

After CheckList (Ribeiro et al., ACL 2020). `behaviour.yaml` holds capabilities (templates expanded with
each brand handle of their language, with the category the guide gives) and perturbations (a link, an
emoji, "thanks"...) that must not change who should act. A model fails a case when it gives another
category, and a perturbation when it flips its own decision on a case it got right.

The checks measure behaviour a contact centre notices at once (a "help" sent to marketing) and that a
macro-F1 on a few hundred real messages hides; they are not a yardstick of accuracy on real traffic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from classifier.examples import Inbound
from classifier.model import normalise
from switchboard.contract import Classification

ClassifyMany = Callable[[Sequence[Inbound]], list[Classification]]

SUITE = Path(__file__).resolve().parent / "behaviour.yaml"
CHANNEL = "x"
LANGUAGES = ("en", "fr")


@dataclass(frozen=True, slots=True)
class Case:
    """One expanded message and the category the guide gives it."""

    capability: str
    language: str
    text: str
    expect: str


@dataclass(frozen=True, slots=True)
class Perturbation:
    """Text added before or after a case that must not change its category."""

    name: str
    prepend: str = ""
    append: str = ""
    language: str | None = None
    only: str | None = None

    def applies(self, case: Case) -> bool:
        """Tell whether the perturbation is meant for this case's language and category."""
        return self.language in (None, case.language) and self.only in (None, case.expect)

    def apply(self, case: Case) -> Case:
        """Return the case with the perturbation's text around it."""
        return Case(case.capability, case.language, f"{self.prepend}{case.text}{self.append}", case.expect)


@dataclass(frozen=True, slots=True)
class Suite:
    """The cases and the perturbations of a behaviour file."""

    cases: list[Case]
    perturbations: list[Perturbation]


@dataclass
class Report:
    """What a model failed: per capability and language, per perturbation, and the failing texts."""

    model_version: str
    cases: Counter[tuple[str, str]] = field(default_factory=Counter)
    tried: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[Case, str]] = field(default_factory=list)
    flips: list[tuple[str, Case, str]] = field(default_factory=list)

    @property
    def failed(self) -> Counter[tuple[str, str]]:
        """The failed cases per (capability, language)."""
        return Counter((c.capability, c.language) for c, _ in self.failures)

    @property
    def flipped(self) -> Counter[str]:
        """The flipped right answers per perturbation."""
        return Counter(name for name, _, _ in self.flips)

    @property
    def failure_rate(self) -> float:
        """Share of the plain cases given the wrong category."""
        return self.failed.total() / max(1, self.cases.total())

    @property
    def flip_rate(self) -> float:
        """Share of the perturbed cases whose category flipped from a right answer."""
        return self.flipped.total() / max(1, self.tried.total())


def load(path: Path = SUITE) -> Suite:
    """Read and expand a behaviour file; refuse a category other than support or marketing.

    Templates of the languages in `LANGUAGES` are expanded with each brand of their language; a
    template slot other than `{brand}` raises KeyError.
    """
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    brands = raw["brands"]
    cases = []
    for capability in raw["capabilities"]:
        expect = capability["expect"]
        if expect not in ("support", "marketing"):
            raise ValueError(f"{path}: {capability['name']}: expect must be support or marketing")
        for language in LANGUAGES:
            for template in capability.get(language, []):
                cases += [
                    Case(capability["name"], language, template.format(brand=brand), expect)
                    for brand in brands[language]
                ]
    perturbations = [
        Perturbation(p["name"], p.get("prepend", ""), p.get("append", ""), p.get("lang"), p.get("only"))
        for p in raw.get("perturbations", [])
    ]
    return Suite(cases, perturbations)


def check(classify_many: ClassifyMany, suite: Suite, model_version: str) -> Report:
    """Classify every case and every perturbed case in two batches and count what the model got wrong."""
    report = Report(model_version)
    plain = classify_many([_inbound(c) for c in suite.cases])
    decided = [p.category for p in plain]
    for case, category in zip(suite.cases, decided, strict=True):
        report.cases[case.capability, case.language] += 1
        if category != case.expect:
            report.failures.append((case, category))
    # A perturbation is judged on the cases the model got right: a flip is a decision it changed.
    varied = [
        (p.name, p.apply(c))
        for c, category in zip(suite.cases, decided, strict=True)
        if category == c.expect
        for p in suite.perturbations
        if p.applies(c)
    ]
    for (name, case), result in zip(varied, classify_many([_inbound(c) for _, c in varied]), strict=True):
        report.tried[name] += 1
        if result.category != case.expect:
            report.flips.append((name, case, result.category))
    return report


def copied(suite: Suite, texts: Iterable[str]) -> list[tuple[str, Case]]:
    """Return the texts (corpus lines) that are a case of the suite once @handles are set aside."""
    key = {_bare(c.text): c for c in suite.cases}
    return [(text, key[bare]) for text in texts if (bare := _bare(text)) in key]


def render(report: Report, show: int = 10) -> str:
    """Lay the report out as a table per capability, one line per perturbation, and a few failures."""
    failed, flipped = report.failed, report.flipped
    lines = [
        f"behaviour checks of {report.model_version}: {failed.total()} of {report.cases.total()} "
        f"cases failed ({report.failure_rate:.1%}); perturbations flipped {flipped.total()} of "
        f"{report.tried.total()} right answers ({report.flip_rate:.1%})",
        "",
        f"{'capability':<24}{'lang':<6}{'failed':>8}{'cases':>7}",
    ]
    for (capability, language), n in report.cases.items():
        lines.append(f"{capability:<24}{language:<6}{failed[capability, language]:>8}{n:>7}")
    lines += ["", f"{'perturbation':<24}{'flipped':>14}{'tried':>7}"]
    lines += [f"{name:<24}{flipped[name]:>14}{n:>7}" for name, n in report.tried.items()]
    if show and report.failures:
        lines += ["", f"first {min(show, len(report.failures))} failures:"]
        lines += [
            f"  [{c.capability} {c.language}] expected {c.expect}, got {got}: {c.text}"
            for c, got in report.failures[:show]
        ]
    if show and report.flips:
        lines += ["", f"first {min(show, len(report.flips))} flips:"]
        lines += [
            f"  [{name}] expected {c.expect}, got {got}: {c.text}" for name, c, got in report.flips[:show]
        ]
    return "\n".join(lines)


def summary(report: Report) -> dict:
    """Return the report's figures as plain JSON-able values."""
    failed = report.failed
    return {
        "model_version": report.model_version,
        "cases": report.cases.total(),
        "failed": failed.total(),
        "failure_rate": report.failure_rate,
        "by_capability": {
            f"{capability}/{language}": [failed[capability, language], n]
            for (capability, language), n in report.cases.items()
        },
        "perturbed": report.tried.total(),
        "flipped": report.flipped.total(),
        "flip_rate": report.flip_rate,
    }


def _inbound(case: Case) -> Inbound:
    return Inbound(case.text, CHANNEL, "public")


def _bare(text: str) -> str:
    return " ".join(t for t in normalise(text).split() if not t.startswith("@"))
