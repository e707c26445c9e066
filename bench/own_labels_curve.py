"""How far a contact centre's own labelled messages take the model: a learning curve on real messages.

The second labelled sample (750 English tweets, 604 French messages, `bench/labels/*_2.jsonl`) plays a
brand's own traffic, labelled by its team: its first N messages per language (in a fixed order, by a hash
of the text) are added to the corpus as category-only lines, as `switchboard corrections` writes them,
and each model is scored on the first sample's test thirds, message by message against the model with
none (McNemar's exact test). The models are thrown away: the shipped one never sees these messages.

    .venv/bin/python bench/own_labels_curve.py [N ...]      # default 0 100 250 600 750, ~50 s
    .venv/bin/python bench/own_labels_curve.py --least-confident [N ...]

`--least-confident` takes the messages the shipped model is least sure of first, as a team labelling
`switchboard sample --least-confident` would, instead of the fixed hash order (a random draw).
"""

from __future__ import annotations

import argparse
import hashlib

import realdata
from classifier_eval import FIRST, SECOND, inbound, macro_f1
from scipy.stats import binomtest

from classifier.choice import LEARNED, load_model
from classifier.examples import CORPUS, Example, read_examples
from classifier.training import train


def own_labels(language: str, least_confident: bool = False) -> list[Example]:
    """Return the second sample of one language as category-only lines, in a fixed or confidence order."""
    items = realdata.load(realdata.LABELS / SECOND[language])
    items.sort(key=lambda i: hashlib.sha256(i.text.encode()).hexdigest())
    if least_confident:
        decided = load_model(LEARNED).classify_many([inbound(i.dataset, i.text) for i in items])
        order = sorted(range(len(items)), key=lambda k: decided[k].confidence)
        items = [items[k] for k in order]
    return [
        Example(
            text=i.text, channel=inbound(i.dataset, i.text).channel, language=language, category=i.category
        )
        for i in items
    ]


def main(argv: list[str] | None = None) -> int:
    """Train with 0, then more, of the own labels, and print each model's test figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[0, 100, 250, 600, 750])
    parser.add_argument("--least-confident", action="store_true", help="the least sure messages first")
    args = parser.parse_args(argv)
    sizes = args.sizes
    corpus = read_examples([CORPUS])
    labels = {language: own_labels(language, args.least_confident) for language in FIRST}
    tests = {}
    for language, file in FIRST.items():
        items = [i for i in realdata.load(realdata.LABELS / file) if not realdata.is_dev(i)]
        tests[language] = ([i.category for i in items], [inbound(i.dataset, i.text) for i in items])
    without: dict[str, list[str]] = {}
    for n in [0, *(n for n in sizes if n)]:
        extra = [e for language in FIRST for e in labels[language][:n]]
        model = train([*corpus, *extra], holdout=0)
        figures = []
        for language, (gold, items) in tests.items():
            decided = [p.category for p in model.classify_many(items)]
            before = without.setdefault(language, decided)
            gained = sum(g == d != b for g, d, b in zip(gold, decided, before, strict=True))
            lost = sum(g == b != d for g, d, b in zip(gold, decided, before, strict=True))
            p = binomtest(min(gained, lost), gained + lost).pvalue if gained + lost else 1.0
            figures.append(f"{language} {macro_f1(gold, decided):.3f} (+{gained} -{lost}, p = {p:.3f})")
        print(f"{n} own labels per language ({len(extra)} lines): {', '.join(figures)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
