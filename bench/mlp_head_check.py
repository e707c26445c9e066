"""A non-linear category head measured against the shipped recipe's, under a rule written first.

The category head becomes a one-hidden-layer perceptron (scikit-learn's MLPClassifier) on the recipe's
own features; the complaint head and "a complaint is support" stay. Its configuration is chosen on the
corpus's held-out fifth only (split as `switchboard train` draws it), among a grid fixed before any
measurement: hidden layer 64 or 256, L2 alpha 1e-4 or 1e-2, early stopping (batches of 1,000: the default 200
updates the first layer's 10^7 weights too often to train in minutes). The chosen one is then
measured once on the development thirds of the first labelled sample, paired against the shipped recipe
trained on the same corpus. The rule (services/classifier/README.md): each development third gains 4 or
more messages net and neither is lower, before the test is touched. Nothing here is shipped.

    .venv/bin/python bench/mlp_head_check.py select     # the grid on the corpus's held-out fifth
    .venv/bin/python bench/mlp_head_check.py check --hidden H --alpha A   # the development thirds
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from classifier_eval import FIRST, macro_f1
from dev_check import development
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from classifier import evaluation
from classifier.examples import Example, corpus_files, read_examples, split
from classifier.learning import BLOCKS, RECIPE, parse
from classifier.training import matrix, vectorizer

GRID = [(hidden, alpha) for hidden in (64, 256) for alpha in (1e-4, 1e-2)]


class Heads:
    """The recipe's features fitted on some examples, a category head of either kind, the complaint head."""

    def __init__(self, examples: Sequence[Example], hidden: int | None, alpha: float = 1e-4) -> None:
        parsed = [parse(e.text) for e in examples]
        with threadpool_limits(limits=1):
            self.fitted = {b: vectorizer(b).fit([p.norm for p in parsed]) for b in BLOCKS}
            x = matrix(self.fitted, parsed)
            y = [e.category for e in examples]
            if hidden is None:
                self.category = LogisticRegression(**RECIPE["logistic"]).fit(x, y)
            else:
                self.category = MLPClassifier(
                    hidden_layer_sizes=(hidden,),
                    alpha=alpha,
                    early_stopping=True,
                    random_state=0,
                    max_iter=200,
                    batch_size=1000,
                ).fit(x, y)
            rows = [i for i, e in enumerate(examples) if e.is_complaint is not None]
            self.complaint = LogisticRegression(**RECIPE["logistic"]).fit(
                x[rows], [examples[i].is_complaint for i in rows]
            )

    def decide(self, texts: Sequence[str]) -> list[str]:
        """Decide the category as the shipped model does: a complaint is support."""
        x: sp.csr_matrix = matrix(self.fitted, [parse(t) for t in texts])
        with threadpool_limits(limits=1):
            support = self.category.predict_proba(x)[:, list(self.category.classes_).index("support")]
            complained = self.complaint.predict_proba(x)[:, list(self.complaint.classes_).index(True)]
        support = np.where(complained >= 0.5, np.maximum(support, complained), support)
        return ["support" if s >= 0.5 else "marketing" for s in support]


def select() -> None:
    """Score every configuration of the grid, and the logistic head, on the corpus's held-out fifth."""
    rest, held = split(read_examples(corpus_files()), 0, RECIPE["holdout"])
    gold = [e.category for e in held]
    texts = [e.text for e in held]
    for hidden, alpha in [(None, 0.0), *GRID]:
        started = time.perf_counter()
        got = Heads(rest, hidden, alpha).decide(texts)
        right = sum(g == p for g, p in zip(gold, got, strict=True))
        name = "logistic (shipped)" if hidden is None else f"hidden {hidden}, alpha {alpha:g}"
        print(
            f"{name}: held-out fifth ({len(held)}) macro-F1 {macro_f1(gold, got):.4f}, {right} right "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )


def check(hidden: int, alpha: float) -> None:
    """Train both heads on the whole corpus and compare them on the development thirds, paired."""
    examples = read_examples(corpus_files())
    variants = {"shipped": Heads(examples, None), "perceptron": Heads(examples, hidden, alpha)}
    for language in FIRST:
        items = development(language)
        got = {name: heads.decide([i.text for i in items]) for name, heads in variants.items()}
        result = evaluation.paired(
            [i.category for i in items],
            got["perceptron"],
            got["shipped"],
            ("perceptron head", "shipped recipe"),
        )
        print(f"[{language} dev] " + evaluation.render_paired(result).replace("\n", "\n  "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("select", "check"))
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--alpha", type=float, default=1e-4)
    args = parser.parse_args(argv)
    if args.step == "select":
        select()
    else:
        check(args.hidden, args.alpha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
