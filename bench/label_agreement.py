"""How far two labellings of the same real messages agree: a ceiling for any model scored on them.

    .venv/bin/python bench/label_agreement.py    # bench/labels/*.jsonl against their .second.jsonl

The `.second.jsonl` files are a second labelling made blind (2026-12-07): another annotator read the
texts in a shuffled order with the source's name and the labelling guide, without the first labels, a
model or any script's suggestion. Agreement on `category` and `is_complaint` is printed overall, on the
development and test splits of `bench/realdata.py`, and on the rows neither annotator marked unsure.
The third French sample's second labelling covers 400 of its rows, drawn at random, the third English
sample's 200: each is compared on those (those samples are all test, so they have no split). It reads
only the label files: the texts are not needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from realdata import LABELS, is_dev_row
from sklearn.metrics import cohen_kappa_score, f1_score


def rows(path: Path) -> dict[tuple[str, str, str], dict]:
    """Return a label file's lines by row (dataset, file, id)."""
    lines = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {(d["dataset"], d["file"], d["id"]): d for d in lines}


def compare(first: dict, second: dict, field: str) -> str:
    """Return agreement, Cohen's kappa and the macro-F1 of the second labelling scored against the first."""
    keys = sorted(first)
    a, b = [str(first[k][field]) for k in keys], [str(second[k][field]) for k in keys]
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / len(keys)
    return (
        f"{field}: agreement {agree:.3f}, kappa {cohen_kappa_score(a, b):.3f}, "
        f"macro-F1 {f1_score(a, b, average='macro'):.3f}"
    )


def main() -> int:
    """Print the agreement of each labelled set with its second labelling."""
    for name, split in (
        ("en_tweets", True),
        ("fr_messages", True),
        ("fr_messages_3", False),
        ("en_tweets_3", False),
        ("en_tweets_4", False),
    ):
        first, second = rows(LABELS / f"{name}.jsonl"), rows(LABELS / f"{name}.second.jsonl")
        if split and first.keys() != second.keys():
            print(f"{name}: the two labellings do not name the same rows", file=sys.stderr)
            return 1
        if not second.keys() <= first.keys() or any(first[k]["sha"] != second[k]["sha"] for k in second):
            print(f"{name}: the second labelling names rows the first does not have", file=sys.stderr)
            return 1
        parts = {"all" if split else f"the {len(second)} relabelled": list(second)}
        if split:
            parts["dev"] = [k for k in second if is_dev_row(k[0], k[2])]
            parts["test"] = [k for k in second if not is_dev_row(k[0], k[2])]
        parts["neither unsure"] = [k for k in second if not first[k]["unsure"] and not second[k]["unsure"]]
        for part, keys in parts.items():
            one, two = {k: first[k] for k in keys}, {k: second[k] for k in keys}
            both = f"{compare(one, two, 'category')}; {compare(one, two, 'is_complaint')}"
            print(f"{name} {part} (n={len(keys)}): {both}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
