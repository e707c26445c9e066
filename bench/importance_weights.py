"""Whether a deployment's unlabelled traffic adapts the model by weighting the corpus (covariate shift).

The corpus is written; the traffic is real. Importance weighting, a classic correction that needs no
label: a domain classifier tells corpus lines from the deployment's own messages, and each corpus line is
counted by its odds of looking like the traffic, so the lines that resemble real messages teach more.
Pools and folds are those of `own_labels_folds.py`: each fold is decided by heads trained on the corpus
with weights from a domain classifier that saw the other four folds' texts (their labels unused), paired
with the corpus model on the same folds (McNemar's exact test).

The domain classifier: logistic regression (C = 1, balanced) over the recipe's word and stem TF-IDF
fitted on corpus and traffic; each corpus line's p(traffic) from 5-fold cross-fitting over the corpus
lines; weight p / (1 - p), clipped to [0.05, 20], normalised to a mean of 1. Variants: `w` that weight,
`sqrt` its square root. The heads keep the corpus's vocabulary and frequencies, as shipped.

    .venv/bin/python bench/importance_weights.py fr|en [--variants w sqrt]

The models are thrown away: the shipped one never sees these messages.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from classifier_eval import inbound, macro_f1
from own_labels_folds import FOLDS, POOLS, fold_of, marketing_found, paired, pool
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from classifier.examples import CORPUS, Example, counts, data_hash, read_examples
from classifier.learning import BLOCKS, HEADS, RECIPE, TrainedModel, parse
from classifier.training import from_sklearn, matrix, train, vectorizer

VARIANTS = ("w", "sqrt")
CLIP = (0.05, 20.0)
CROSS_FITS = 5


def traffic_odds(corpus: list[str], traffic: list[str]) -> np.ndarray:
    """Return each corpus text's odds of being traffic, cross-fitted so no line scores itself."""
    blocks = {b: vectorizer(b).fit(corpus + traffic) for b in BLOCKS}

    def features(texts: list[str]) -> sp.csr_matrix:
        return sp.hstack([blocks[b].transform(texts) for b in BLOCKS], format="csr")

    x_corpus, x_traffic = features(corpus), features(traffic)
    part = np.arange(len(corpus)) % CROSS_FITS
    p = np.zeros(len(corpus))
    for k in range(CROSS_FITS):
        rest = np.flatnonzero(part != k)
        x = sp.vstack([x_corpus[rest], x_traffic], format="csr")
        y = np.r_[np.zeros(len(rest)), np.ones(len(traffic))]
        domain = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(x, y)
        held = np.flatnonzero(part == k)
        p[held] = domain.predict_proba(x_corpus[held])[:, 1]
    odds = np.clip(p / np.maximum(1.0 - p, 1e-9), *CLIP)
    return odds / odds.mean()


def fit(examples: Sequence[Example], weights: np.ndarray) -> TrainedModel:
    """Fit the recipe's blocks on the corpus and the four heads with the corpus lines weighted."""
    parsed = [parse(e.text) for e in examples]
    norms = [p.norm for p in parsed]
    vectorizers = {b: vectorizer(b).fit(norms) for b in BLOCKS}
    features = matrix(vectorizers, parsed)
    heads = {}
    for head in HEADS:
        rows = [i for i, e in enumerate(examples) if getattr(e, head) is not None]
        y = np.array([getattr(examples[i], head) for i in rows])
        x = features if len(rows) == len(examples) else features[rows]
        heads[head] = LogisticRegression(**RECIPE["logistic"]).fit(x, y, sample_weight=weights[rows])
    return from_sklearn(vectorizers, heads, data_hash(examples), 0, counts(examples))


def decide(items, variant: str | None) -> tuple[list[str], list[float]]:
    """Decide every message of the pool fold by fold; return the categories and each fold's effective
    share of the corpus (Kish: (sum w)^2 / sum w^2 over the number of lines)."""
    corpus = read_examples([CORPUS])
    texts = [parse(e.text).norm for e in corpus]
    decided: list[str] = [""] * len(items)
    effective = []
    alone = train(corpus, holdout=0) if variant is None else None
    for k in range(FOLDS):
        held = [n for n, i in enumerate(items) if fold_of(i) == k]
        model = alone
        if model is None:
            traffic = [parse(i.text).norm for i in items if fold_of(i) != k]
            with threadpool_limits(limits=1):
                weights = traffic_odds(texts, traffic)
                if variant == "sqrt":
                    weights = np.sqrt(weights) / np.sqrt(weights).mean()
                model = fit(corpus, weights)
            effective.append(weights.sum() ** 2 / (weights**2).sum() / len(weights))
        got = model.classify_many([inbound(items[n].dataset, items[n].text) for n in held])
        for n, p in zip(held, got, strict=True):
            decided[n] = p.category
    return decided, effective


def main(argv: list[str] | None = None) -> int:
    """Print the corpus model's pooled macro-F1, then each variant's, paired with it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("language", choices=sorted(POOLS))
    parser.add_argument("--variants", nargs="*", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args(argv)
    items = pool(args.language)
    gold = [i.category for i in items]
    marketing = sum(g == "marketing" for g in gold)
    print(f"{args.language}: {len(items)} messages ({marketing} marketing), {FOLDS} folds", flush=True)
    start = time.monotonic()
    before, _ = decide(items, None)
    print(f"corpus alone: {macro_f1(gold, before):.3f} ({time.monotonic() - start:.0f} s)", flush=True)
    for variant in args.variants:
        start = time.monotonic()
        after, effective = decide(items, variant)
        print(
            f"{variant}: {macro_f1(gold, after):.3f} ({paired(gold, after, before)}; marketing found "
            f"{marketing_found(gold, after)} of {marketing}; effective corpus share "
            f"{min(effective):.2f}-{max(effective):.2f}; {time.monotonic() - start:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
