"""Whether a deployment's unlabelled traffic adapts the model: vocabulary kept to the traffic's words.

A classic domain-adaptation step that needs no label: the word and stem blocks keep only the terms that
also occur in the deployment's own messages, so that weight the corpus would give to words its real
traffic never uses (invented handles, written turns of phrase) goes to the words it does use. Pools and
folds are those of `own_labels_folds.py`: each fold is decided by a model trained on the packaged corpus
alone, whose vocabulary is restricted to the terms of the other four folds' texts (their labels unused),
and the pooled figures are paired with the corpus model on the same folds (McNemar's exact test).

- `restricted`: the terms also seen in the traffic, inverse document frequencies from the corpus;
- `restricted+idf`: the same terms, frequencies from the corpus and the traffic's texts together.

    .venv/bin/python bench/traffic_adapt.py fr|en [--variants restricted restricted+idf]

The models are thrown away: the shipped one never sees these messages.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
from classifier_eval import inbound, macro_f1
from own_labels_folds import FOLDS, POOLS, fold_of, marketing_found, paired, pool
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from classifier.examples import CORPUS, Example, counts, data_hash, read_examples
from classifier.learning import BLOCKS, HEADS, RECIPE, TrainedModel, parse
from classifier.training import from_sklearn, matrix, train, vectorizer

VARIANTS = ("restricted", "restricted+idf")


def restricted(block: str, corpus: list[str], traffic: list[str], idf_with_traffic: bool) -> TfidfVectorizer:
    """Return a block fitted on the corpus whose vocabulary keeps only the terms the traffic also holds."""
    learned = vectorizer(block).fit(corpus).vocabulary_
    seen = vectorizer(block).set_params(min_df=1).fit(traffic).vocabulary_
    kept = sorted(set(learned) & set(seen))
    fitted = vectorizer(block).set_params(vocabulary=kept)
    return fitted.fit(corpus + traffic if idf_with_traffic else corpus)


def fit(examples: Sequence[Example], traffic: list[str], idf_with_traffic: bool) -> TrainedModel:
    """Fit the recipe's blocks (restricted to the traffic's terms) and four heads, as `training._fit` does."""
    parsed = [parse(e.text) for e in examples]
    norms = [p.norm for p in parsed]
    traffic_norms = [parse(t).norm for t in traffic]
    with threadpool_limits(limits=1):
        vectorizers = {b: restricted(b, norms, traffic_norms, idf_with_traffic) for b in BLOCKS}
        features = matrix(vectorizers, parsed)
        heads = {}
        for head in HEADS:
            rows = [i for i, e in enumerate(examples) if getattr(e, head) is not None]
            y = np.array([getattr(examples[i], head) for i in rows])
            x = features if len(rows) == len(examples) else features[rows]
            heads[head] = LogisticRegression(**RECIPE["logistic"]).fit(x, y)
    return from_sklearn(vectorizers, heads, data_hash(examples), 0, counts(examples))


def decide(items, variant: str | None) -> tuple[list[str], list[int]]:
    """Decide every message of the pool fold by fold; return the categories and each fold's vocabulary."""
    corpus = read_examples([CORPUS])
    decided: list[str] = [""] * len(items)
    sizes = []
    alone = train(corpus, holdout=0) if variant is None else None
    for k in range(FOLDS):
        held = [n for n, i in enumerate(items) if fold_of(i) == k]
        traffic = [i.text for i in items if fold_of(i) != k]
        model = alone or fit(corpus, traffic, idf_with_traffic=variant == "restricted+idf")
        sizes.append(sum(len(v) for v in model.vocabularies.values()))
        got = model.classify_many([inbound(items[n].dataset, items[n].text) for n in held])
        for n, p in zip(held, got, strict=True):
            decided[n] = p.category
    return decided, sizes


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
    before, sizes = decide(items, None)
    print(
        f"corpus alone: {macro_f1(gold, before):.3f} (vocabulary {min(sizes)}-{max(sizes)}; "
        f"{time.monotonic() - start:.0f} s)",
        flush=True,
    )
    for variant in args.variants:
        start = time.monotonic()
        after, sizes = decide(items, variant)
        found = marketing_found(gold, after)
        print(
            f"{variant}: {macro_f1(gold, after):.3f} ({paired(gold, after, before)}; marketing found "
            f"{found} of {marketing}; vocabulary {min(sizes)}-{max(sizes)}; "
            f"{time.monotonic() - start:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
