"""What a brand's own labelled messages buy on the brand's other messages: cross-validated, paired.

`own_labels_curve.py` adds one sample's messages to the corpus and scores another; this deals one pool of
labelled real messages into five folds (by a hash of the text: identical texts fall together) and decides
each fold with models trained on the packaged corpus plus the first N messages (hash order) of the other
four folds, each counted W times (`weighted`, as `switchboard train --own-weight` counts them), as
category-only lines (what `switchboard corrections` and `switchboard label` write). Every message of the
pool is decided once per setting, by a model that never saw it; the pooled figures are paired against the
corpus alone (N = 0; McNemar's exact test). The models are thrown away: the shipped one never sees these
messages.

Pools: French, the third labelled sample (2,050 customer tweets to one operator, one period: one brand's
traffic); English, the first and second English samples together (several brands).

    .venv/bin/python bench/own_labels_folds.py fr [--sizes 250 500 1000 0] [--weights 1 5]   # 0: all
    .venv/bin/python bench/own_labels_folds.py en
    .venv/bin/python bench/own_labels_folds.py fr --alone     # the recipe trained on the other folds alone

`--alone` (a diagnostic) fits the recipe's features and category head on the other four folds only, no
corpus: how far the brand's own labels go by themselves.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable, Sequence

import realdata
from classifier_eval import FIRST, SECOND, THIRD, inbound, macro_f1
from sklearn.linear_model import LogisticRegression

from classifier import evaluation
from classifier.examples import CORPUS, Example, read_examples, weighted
from classifier.learning import BLOCKS, RECIPE, TrainedModel, parse
from classifier.training import matrix, train, vectorizer

FOLDS = 5
POOLS = {"fr": [THIRD["fr"]], "en": [FIRST["en"], SECOND["en"]]}


def digest(text: str) -> str:
    """Return the hash that orders a pool and deals it into folds."""
    return hashlib.sha256(text.encode()).hexdigest()


def pool(language: str) -> list[realdata.Labelled]:
    """Return one language's pool in hash order, each text once (its first label kept)."""
    return pool_of(POOLS[language])


def pool_of(files: Sequence[str]) -> list[realdata.Labelled]:
    """Return the labelled messages of these files in hash order, each text once (its first label kept)."""
    seen: dict[str, realdata.Labelled] = {}
    for file in files:
        for item in realdata.load(realdata.LABELS / file):
            seen.setdefault(item.text, item)
    return sorted(seen.values(), key=lambda i: digest(i.text))


def fold_of(item: realdata.Labelled) -> int:
    """Return the fold a message falls in."""
    return int(digest("fold:" + item.text), 16) % FOLDS


def as_example(item: realdata.Labelled, language: str) -> Example:
    """Return a labelled message as a category-only corpus line."""
    return Example(
        text=item.text,
        channel=inbound(item.dataset, item.text).channel,
        language=language,
        category=item.category,
    )


def decide_by_fold(items: list[realdata.Labelled], model_for: Callable[[int], TrainedModel]) -> list[str]:
    """Decide each fold's messages with the model `model_for` gives for that fold; return the categories."""
    decided: list[str] = [""] * len(items)
    for k in range(FOLDS):
        held = [n for n, i in enumerate(items) if fold_of(i) == k]
        got = model_for(k).classify_many([inbound(items[n].dataset, items[n].text) for n in held])
        for n, p in zip(held, got, strict=True):
            decided[n] = p.category
    return decided


def decide(items: list[realdata.Labelled], language: str, size: int, weight: int) -> list[str]:
    """Decide every message of the pool by a model trained on the corpus and N of the other folds' messages.

    `size` 0 with `weight` 0 is the corpus alone; `size` 0 with a weight, all the other folds' messages.
    """
    corpus = read_examples([CORPUS])
    return decide_by_fold(items, lambda k: fold_model(items, language, k, size, weight, corpus))


def fold_model(
    items: list[realdata.Labelled], language: str, k: int, size: int, weight: int, corpus: list[Example]
) -> TrainedModel:
    """Train fold `k`'s model: the corpus and the first `size` messages of the other folds (0: all of
    them), each counted `weight` times (weight 0: none of them)."""
    others = [as_example(i, language) for i in items if fold_of(i) != k]
    own = (others if size == 0 else others[:size]) if weight else []
    return train([*corpus, *weighted(own, max(weight, 1))], holdout=0)


def variants_main(
    argv: list[str] | None,
    description: str,
    variants: Sequence[str],
    decide_variant: Callable[[list[realdata.Labelled], str | None], tuple[list[str], str]],
) -> int:
    """The command line of a script that compares variants of the corpus model on a language's pool:
    `LANGUAGE [--variants ...]`, then `compare_variants`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("language", choices=sorted(POOLS))
    parser.add_argument("--variants", nargs="*", choices=variants, default=list(variants))
    args = parser.parse_args(argv)
    compare_variants(args.language, args.variants, decide_variant)
    return 0


def compare_variants(
    language: str,
    variants: Sequence[str],
    decide_variant: Callable[[list[realdata.Labelled], str | None], tuple[list[str], str]],
) -> None:
    """Print the corpus model's pooled macro-F1 on a language's pool, then each variant's, paired with it.

    `decide_variant(items, variant)` returns the pool's categories and a note on the models it fitted
    (None: the corpus model).
    """
    items = pool(language)
    gold = [i.category for i in items]
    marketing = sum(g == "marketing" for g in gold)
    print(f"{language}: {len(items)} messages ({marketing} marketing), {FOLDS} folds", flush=True)
    start = time.monotonic()
    before, note = decide_variant(items, None)
    parts = [note, f"{time.monotonic() - start:.0f} s"]
    print(f"corpus alone: {macro_f1(gold, before):.3f} ({'; '.join(filter(None, parts))})", flush=True)
    for variant in variants:
        start = time.monotonic()
        after, note = decide_variant(items, variant)
        parts = [
            paired(gold, after, before),
            f"marketing found {marketing_found(gold, after)} of {marketing}",
            note,
            f"{time.monotonic() - start:.0f} s",
        ]
        print(f"{variant}: {macro_f1(gold, after):.3f} ({'; '.join(filter(None, parts))})", flush=True)


def decide_alone(items: list[realdata.Labelled]) -> list[str]:
    """Decide every message with the recipe's features and category head fitted on the other folds alone."""
    decided: list[str] = [""] * len(items)
    for k in range(FOLDS):
        held = [n for n, i in enumerate(items) if fold_of(i) == k]
        rest = [i for i in items if fold_of(i) != k]
        parsed = [parse(i.text) for i in rest]
        vectorizers = {block: vectorizer(block).fit([p.norm for p in parsed]) for block in BLOCKS}
        head = LogisticRegression(**RECIPE["logistic"]).fit(
            matrix(vectorizers, parsed), [i.category for i in rest]
        )
        got = head.predict(matrix(vectorizers, [parse(items[n].text) for n in held]))
        for n, category in zip(held, got, strict=True):
            decided[n] = str(category)
    return decided


def marketing_found(gold: list[str], decided: list[str]) -> int:
    """Return how many marketing messages were decided marketing."""
    return sum(g == d == "marketing" for g, d in zip(gold, decided, strict=True))


def paired(gold: list[str], after: list[str], before: list[str]) -> str:
    """Return messages gained and lost by `after` against `before`, and McNemar's exact p."""
    counted = evaluation.paired(gold, after, before, ("after", "before"))
    return f"+{counted.only_candidate_right} -{counted.only_current_right}, p = {counted.p_value:.3f}"


def main(argv: list[str] | None = None) -> int:
    """Print each setting's pooled macro-F1 and its paired difference with the corpus alone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("language", choices=sorted(POOLS))
    parser.add_argument("--sizes", nargs="*", type=int, default=[250, 500, 1000, 0], help="0: all")
    parser.add_argument("--weights", nargs="*", type=int, default=[1, 5])
    parser.add_argument("--alone", action="store_true", help="the other folds alone, no corpus")
    args = parser.parse_args(argv)
    items = pool(args.language)
    gold = [i.category for i in items]
    marketing = sum(g == "marketing" for g in gold)
    print(f"{args.language}: {len(items)} messages ({marketing} marketing), {FOLDS} folds", flush=True)
    if args.alone:
        alone = decide_alone(items)
        found = marketing_found(gold, alone)
        print(f"own labels alone: {macro_f1(gold, alone):.3f} (marketing found {found} of {marketing})")
        return 0
    start = time.monotonic()
    before = decide(items, args.language, 0, 0)
    print(f"corpus alone: {macro_f1(gold, before):.3f} ({time.monotonic() - start:.0f} s)", flush=True)
    runs: dict[tuple[int, int], list[str]] = {}
    for weight in args.weights:
        for size in args.sizes:
            start = time.monotonic()
            after = runs[weight, size] = decide(items, args.language, size, weight)
            found = marketing_found(gold, after)
            lighter = [w for w in args.weights if w < weight and (w, size) in runs]
            against = (
                f"; against weight {lighter[-1]}: {paired(gold, after, runs[lighter[-1], size])}"
                if lighter
                else ""
            )
            print(
                f"N {size or 'all'} weight {weight}: {macro_f1(gold, after):.3f} "
                f"({paired(gold, after, before)}; "
                f"marketing found {found} of {marketing}{against}) "
                f"({time.monotonic() - start:.0f} s)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
