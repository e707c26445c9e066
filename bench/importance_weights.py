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

from collections.abc import Sequence

import numpy as np
import realdata
import scipy.sparse as sp
from own_labels_folds import decide_by_fold, fold_of, variants_main
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from classifier.examples import CORPUS, Example, counts, data_hash, read_examples
from classifier.learning import BLOCKS, TrainedModel, parse
from classifier.training import fit_heads, from_sklearn, matrix, train, vectorizer

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
    vectorizers = {b: vectorizer(b).fit([p.norm for p in parsed]) for b in BLOCKS}
    heads = fit_heads(examples, matrix(vectorizers, parsed), sample_weight=weights)
    return from_sklearn(vectorizers, heads, data_hash(examples), 0, counts(examples))


def decide(items: list[realdata.Labelled], variant: str | None) -> tuple[list[str], str]:
    """Decide every message of the pool fold by fold; return the categories and each fold's effective
    share of the corpus (Kish: (sum w)^2 / sum w^2 over the number of lines)."""
    corpus = read_examples([CORPUS])
    if variant is None:
        alone = train(corpus, holdout=0)
        return decide_by_fold(items, lambda _k: alone), ""
    texts = [parse(e.text).norm for e in corpus]
    effective = []

    def model_for(k: int) -> TrainedModel:
        traffic = [parse(i.text).norm for i in items if fold_of(i) != k]
        with threadpool_limits(limits=1):
            weights = traffic_odds(texts, traffic)
            if variant == "sqrt":
                weights = np.sqrt(weights) / np.sqrt(weights).mean()
            model = fit(corpus, weights)
        effective.append(weights.sum() ** 2 / (weights**2).sum() / len(weights))
        return model

    decided = decide_by_fold(items, model_for)
    return decided, f"effective corpus share {min(effective):.2f}-{max(effective):.2f}"


def main(argv: list[str] | None = None) -> int:
    """Print the corpus model's pooled macro-F1, then each variant's, paired with it."""
    return variants_main(argv, __doc__.splitlines()[0], VARIANTS, decide)


if __name__ == "__main__":
    raise SystemExit(main())
