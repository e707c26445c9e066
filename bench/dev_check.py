"""Decide a corpus change on the development thirds alone, before the test is touched.

Trains a candidate on the given corpus files or directories and compares it, message by message, with
the model in force on the first labelled sample's development thirds only (the third whose errors may
be read): per language, each model's macro-F1, the messages only one of them gets right, and McNemar's
exact test. The test thirds and the second sample are not decided, so a rule written before the
measurement can be applied here and the test measured once afterwards (`classifier_eval.py --train ...
--against learned`).

    .venv/bin/python bench/dev_check.py CORPUS [CORPUS ...] [--against learned|DIR]
"""

from __future__ import annotations

import argparse
import sys

import realdata
from classifier_eval import FIRST, inbound

from classifier import evaluation
from classifier.choice import LEARNED, load_model
from classifier.examples import read_examples
from classifier.training import train


def development(language: str) -> list[realdata.Labelled]:
    """Return a language's development third of the first labelled sample."""
    return [i for i in realdata.load(realdata.LABELS / FIRST[language]) if realdata.is_dev(i)]


def main(argv: list[str] | None = None) -> int:
    """Train the candidate, decide both development thirds with it and the model in force, paired."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="+", help="the candidate's training files or directories")
    parser.add_argument("--against", default=LEARNED, help="the model in force: learned or a directory")
    args = parser.parse_args(argv)
    candidate = train(read_examples(args.corpus), holdout=0)
    current = load_model(args.against)
    for language in FIRST:
        items = development(language)
        messages = [inbound(i.dataset, i.text) for i in items]
        result = evaluation.paired(
            [i.category for i in items],
            [p.category for p in candidate.classify_many(messages)],
            [p.category for p in current.classify_many(messages)],
            (candidate.version, current.version),
        )
        print(f"[{language} dev] " + evaluation.render_paired(result).replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
