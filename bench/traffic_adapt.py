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

from collections.abc import Sequence

import realdata
from own_labels_folds import decide_by_fold, fold_of, variants_main
from sklearn.feature_extraction.text import TfidfVectorizer
from threadpoolctl import threadpool_limits

from classifier.examples import CORPUS, Example, counts, data_hash, read_examples
from classifier.learning import BLOCKS, TrainedModel, parse
from classifier.training import fit_heads, from_sklearn, matrix, train, vectorizer

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
        heads = fit_heads(examples, matrix(vectorizers, parsed))
    return from_sklearn(vectorizers, heads, data_hash(examples), 0, counts(examples))


def decide(items: list[realdata.Labelled], variant: str | None) -> tuple[list[str], str]:
    """Decide every message of the pool fold by fold; return the categories and the vocabularies' sizes."""
    corpus = read_examples([CORPUS])
    sizes = []
    alone = train(corpus, holdout=0) if variant is None else None

    def model_for(k: int) -> TrainedModel:
        traffic = [i.text for i in items if fold_of(i) != k]
        model = alone or fit(corpus, traffic, idf_with_traffic=variant == "restricted+idf")
        sizes.append(sum(len(v) for v in model.vocabularies.values()))
        return model

    decided = decide_by_fold(items, model_for)
    return decided, f"vocabulary {min(sizes)}-{max(sizes)}"


def main(argv: list[str] | None = None) -> int:
    """Print the corpus model's pooled macro-F1, then each variant's, paired with it."""
    return variants_main(argv, __doc__.splitlines()[0], VARIANTS, decide)


if __name__ == "__main__":
    raise SystemExit(main())
