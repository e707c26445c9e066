"""Whether neutralising a deployment's own brand names helps: "Free" the operator is not "free" the gift.

The corpus is written about invented brands, so a real brand whose name is a common word carries that
word's weight into every message to it: in the shipped category head "free" weighs 5.4 towards marketing
(giveaways), and it is the operator's name in the Free tweets. A contact centre knows its own names; this
replaces them (whole words, any case, with their @ and # forms) by one token the model never saw, before
classifying, and pairs the result with the texts as they are (McNemar's exact test):
- French: the Free tweets get {free, freebox, freemobile, "free mobile"}; the perfume chat none;
- English: the airline tweets get their airline's names; the other rows none.
Measured on the French test sets together (first sample's test thirds, second and third samples) and
the English test thirds with the second sample, then on the French third sample and development third.

    .venv/bin/python bench/brand_terms.py [--model learned|DIR]
"""

from __future__ import annotations

import argparse
import re

import realdata
from classifier_eval import FIRST, SECOND, THIRD, inbound, macro_f1
from own_labels_folds import paired

from classifier.choice import LEARNED, load_model

UNSEEN = "zzbrandzz"
FREE = ("free", "freebox", "freemobile", "free mobile")
AIRLINES = {
    "United": ("united",),
    "Delta": ("delta",),
    "Southwest": ("southwest", "southwestair"),
    "US Airways": ("usairways", "us airways"),
    "Virgin America": ("virginamerica", "virgin america"),
    "American": ("americanair", "american airlines"),
}


def pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """Return the pattern of a brand's terms: whole words, any case, with their @ or # forms."""
    spelled = sorted((r"\s+".join(map(re.escape, t.split())) for t in terms), key=len, reverse=True)
    return re.compile(rf"(?<![\w@#])[@#]?(?:{'|'.join(spelled)})(?!\w)", re.IGNORECASE)


def airline_of() -> dict[str, str]:
    """Return each airline tweet's airline by its row id."""
    path = realdata.DATASETS / "twitter-us-airline-sentiment" / "Airline-Sentiment-2-w-AA.csv"
    return {row["_unit_id"]: row["airline"] for row in realdata.dict_rows(path)}


def neutralised(item: realdata.Labelled, airlines: dict[str, str]) -> str:
    """Return a message's text with its brand's terms replaced by the unseen token."""
    if item.dataset == "fr-freemobile-tweets":
        terms = FREE
    elif item.dataset == "twitter-us-airline-sentiment":
        terms = AIRLINES[airlines[item.id]]
    else:
        return item.text
    return pattern(terms).sub(f" {UNSEEN} ", item.text)


def sets() -> dict[str, list[realdata.Labelled]]:
    """Return the yardsticks: the test sets per language, and the French third sample and development."""
    load = realdata.load
    first = {lang: load(realdata.LABELS / file) for lang, file in FIRST.items()}
    second = {lang: load(realdata.LABELS / file) for lang, file in SECOND.items()}
    third = load(realdata.LABELS / THIRD["fr"])
    return {
        "fr test sets": [i for i in first["fr"] if not realdata.is_dev(i)] + second["fr"] + third,
        "en test sets": [i for i in first["en"] if not realdata.is_dev(i)] + second["en"],
        "fr third sample": third,
        "fr dev": [i for i in first["fr"] if realdata.is_dev(i)],
        "en dev": [i for i in first["en"] if realdata.is_dev(i)],
    }


def main(argv: list[str] | None = None) -> int:
    """Print each yardstick as it is and with the brand's terms neutralised, paired."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=LEARNED)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    assert UNSEEN not in model.vocabularies["word"]
    airlines = airline_of()
    for name, items in sets().items():
        gold = [i.category for i in items]
        texts = [neutralised(i, airlines) for i in items]
        changed = sum(t != i.text for t, i in zip(texts, items, strict=True))
        as_is = [p.category for p in model.classify_many([inbound(i.dataset, i.text) for i in items])]
        after = [
            p.category
            for p in model.classify_many([inbound(i.dataset, t) for i, t in zip(items, texts, strict=True)])
        ]
        print(
            f"{name} (n={len(items)}, {changed} with a brand term): {macro_f1(gold, as_is):.3f} -> "
            f"{macro_f1(gold, after):.3f} ({paired(gold, after, as_is)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
