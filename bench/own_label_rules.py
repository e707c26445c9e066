"""Do the two support rules help or blunt a model trained with a brand's own labels? Cross-validated, paired.

"A complaint is support" and "a support intent is support" let the complaint and intent heads, which
own labels (category-only lines) never train, overrule the category head those labels teach. This
deals a pool of labelled real messages into `own_labels_folds.py`'s five folds, trains one model per
fold on the packaged corpus plus N of the other folds' messages counted five times (what
`switchboard train --own` does), and decides the held fold three ways with that same model:

    everywhere  both rules on every message (the code before 2026-12-08)
    shipped     this code: an own-label model decides English messages without them, French with them
    off         neither rule on any message

The first two lines printed pair `shipped` and `off` against `everywhere` (McNemar's exact test). The
models are thrown away: the shipped one never sees these messages.

    .venv/bin/python bench/own_label_rules.py en12   # the first and second English samples (1,500)
    .venv/bin/python bench/own_label_rules.py en4    # the fourth English sample (2,130), the fresh pool
    .venv/bin/python bench/own_label_rules.py fr3    # the third French sample (2,050 tweets to Free)
    .venv/bin/python bench/own_label_rules.py fr12   # the first and second French samples (1,284)
"""

from __future__ import annotations

import argparse
import sys

import own_labels_folds as olf
import realdata
from classifier_eval import FIRST, FOURTH, SECOND, THIRD, macro_f1

from classifier import learning
from classifier.examples import CORPUS, read_examples

POOLS = {
    "en12": ("en", [FIRST["en"], SECOND["en"]]),
    "en4": ("en", [FOURTH["en"]]),
    "fr3": ("fr", [THIRD["fr"]]),
    "fr12": ("fr", [FIRST["fr"], SECOND["fr"]]),
}
WEIGHT = 5
RULE_KEYS = ("complaint_is_support", "support_intent_is_support", "own_labels_english_without_support_rules")
# Each way as the recipe's settings of the three decision rules it concerns.
WAYS = {
    "everywhere": dict(zip(RULE_KEYS, (True, True, False), strict=True)),
    "shipped": {key: learning.RECIPE[key] for key in RULE_KEYS},
    "off": dict.fromkeys(RULE_KEYS, False),
}


def decided_three_ways(items: list[realdata.Labelled], language: str, size: int) -> dict[str, list[str]]:
    """Decide every message of the pool by its fold's model, each way; `size` 0 takes all the others."""
    corpus = read_examples([CORPUS])
    models = [olf.fold_model(items, language, k, size, WEIGHT, corpus) for k in range(olf.FOLDS)]
    out = {}
    for way, settings in WAYS.items():
        saved = {key: learning.RECIPE[key] for key in settings}
        learning.RECIPE.update(settings)
        try:
            out[way] = olf.decide_by_fold(items, models.__getitem__)
        finally:
            learning.RECIPE.update(saved)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print each size's three macro-F1 figures and the pairings with the rules everywhere."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", choices=sorted(POOLS))
    parser.add_argument("--sizes", nargs="*", type=int, default=[1000, 0], help="0: all the other folds")
    args = parser.parse_args(argv)
    language, files = POOLS[args.pool]
    items = olf.pool_of(files)
    gold = [i.category for i in items]
    print(f"{args.pool}: {len(items)} messages ({gold.count('marketing')} marketing), own labels x{WEIGHT}")
    for size in args.sizes:
        out = decided_three_ways(items, language, size)
        base = out["everywhere"]
        figures = ", ".join(f"{way} {macro_f1(gold, got):.3f}" for way, got in out.items())
        print(f"N {size or 'all'}: {figures}", flush=True)
        for way in ("shipped", "off"):
            print(f"  {way} against everywhere: {olf.paired(gold, out[way], base)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
