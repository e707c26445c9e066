"""Train the learned classifier: fit scikit-learn's TF-IDF blocks and logistic heads, keep their numbers.

scikit-learn is imported here only: loading and running a model (`classifier.learning`) never need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from classifier import behaviour, evaluation
from classifier.examples import Example, counts, data_hash, split
from classifier.learning import BLOCKS, HEADS, RECIPE, Head, Parsed, TrainedModel, cue_rows, parse, prefixes


def vectorizer(block: str) -> TfidfVectorizer:
    """Build one unfitted TF-IDF block of the recipe."""
    params = {**RECIPE[block], **RECIPE["tfidf"]}
    if params["analyzer"] == "prefix":
        params["analyzer"] = prefixes
    else:
        params["ngram_range"] = tuple(params["ngram_range"])
    return TfidfVectorizer(**params, dtype=np.float64)


def matrix(vectorizers: dict[str, TfidfVectorizer], parsed: Sequence[Parsed]) -> sp.csr_matrix:
    """Build the feature matrix of parsed messages with scikit-learn's own transforms."""
    norms = [p.norm for p in parsed]
    return sp.hstack(
        [
            vectorizers["word"].transform(norms),
            vectorizers["stem"].transform(norms),
            sp.csr_matrix(cue_rows(parsed)),
        ],
        format="csr",
    )


def from_sklearn(
    vectorizers: dict[str, TfidfVectorizer],
    heads: dict[str, LogisticRegression],
    data_hash: str,
    seed: int,
    counts: dict[str, dict[str, int]],
) -> TrainedModel:
    """Keep the fitted numbers of scikit-learn's vectorizers and heads."""
    return TrainedModel(
        {b: {term: int(col) for term, col in vectorizers[b].vocabulary_.items()} for b in BLOCKS},
        {b: vectorizers[b].idf_ for b in BLOCKS},
        {h: Head(heads[h].classes_.tolist(), heads[h].coef_, heads[h].intercept_) for h in HEADS},
        data_hash,
        seed,
        counts,
    )


def as_sklearn(model: TrainedModel) -> tuple[dict[str, TfidfVectorizer], dict[str, LogisticRegression]]:
    """Rebuild scikit-learn's fitted vectorizers and heads from a model's numbers.

    Not used to classify: the benchmark's textbook path and the test that the model's own inference
    decides as scikit-learn would on the same numbers.
    """
    vectorizers = {}
    for block in BLOCKS:
        fitted = vectorizer(block).set_params(vocabulary=model.vocabularies[block])
        fitted.idf_ = model.idf[block]
        vectorizers[block] = fitted
    heads = {}
    for name, head in model.heads.items():
        fitted = LogisticRegression(**RECIPE["logistic"])
        fitted.classes_ = np.array(head.classes)
        fitted.coef_, fitted.intercept_ = head.coef, head.intercept
        heads[name] = fitted
    return vectorizers, heads


def _fit(examples: Sequence[Example], seed: int) -> TrainedModel:
    """Fit the TF-IDF blocks and the four heads on examples, on one thread so sums add up the same way.

    The TF-IDF blocks see every example's text; each head only the examples that carry its label. A line
    of weight W is fitted as W copies of itself (what `bench/own_labels_folds.py` measured).
    """
    lines = examples
    examples = [e for e in lines for _ in range(e.weight)]
    parsed = [parse(e.text) for e in examples]
    norms = [p.norm for p in parsed]
    with threadpool_limits(limits=1):
        vectorizers = {block: vectorizer(block).fit(norms) for block in BLOCKS}
        heads = fit_heads(examples, matrix(vectorizers, parsed))
    return from_sklearn(vectorizers, heads, data_hash(lines), seed, counts(lines))


def fit_heads(
    examples: Sequence[Example], features: sp.csr_matrix, sample_weight: np.ndarray | None = None
) -> dict[str, LogisticRegression]:
    """Fit the recipe's four heads on the examples' feature rows, each on the examples that carry its
    label (category-only lines: category), optionally with a weight per example."""
    heads = {}
    for head in HEADS:
        rows = [i for i, e in enumerate(examples) if getattr(e, head) is not None]
        y = np.array([getattr(examples[i], head) for i in rows])
        if len(set(y.tolist())) < 2:
            given = "only one" if rows else "no"
            raise ValueError(f"the examples give {given} {head} label; a head needs two or more")
        every = len(rows) == len(examples)
        x = features if every else features[rows]
        weights = None if sample_weight is None else sample_weight if every else sample_weight[rows]
        heads[head] = LogisticRegression(**RECIPE["logistic"]).fit(x, y, sample_weight=weights)
    return heads


def train(examples: Iterable[Example], seed: int = 0, *, holdout: float | None = None) -> TrainedModel:
    """Train on every example; first score a twin trained without a held-out share drawn with `seed`.

    The fit itself draws nothing at random: the seed picks the held-out split whose scores the model
    carries, and names the model. `holdout=0` skips that twin and its scores; the model carries its
    behaviour checks' counts either way.
    """
    examples = list(examples)
    share = RECIPE["holdout"] if holdout is None else holdout
    model = _fit(examples, seed)
    model.evaluation = {}
    if share:
        rest, held = split(examples, seed, share)
        model.evaluation = evaluation.summary(evaluation.evaluate(_fit(rest, seed), held))
    # The model itself (not its twin) on the behaviour checks, a fraction of a second: `GET /v1/model`
    # shows them with the held-out scores.
    checked = behaviour.summary(behaviour.check(model.classify_many, behaviour.load(), model.version))
    model.evaluation["behaviour"] = {
        k: v for k, v in checked.items() if k not in ("model_version", "by_capability")
    }
    return model
