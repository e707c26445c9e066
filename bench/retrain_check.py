"""Run `switchboard retrain` as a contact centre would, on real messages standing in for its own.

The model's category errors on the development third of the labelled real messages play the agents'
corrections; the test messages (the first sample's test two thirds and the whole second sample) play a
labelled random sample of the traffic. Both are written to a temporary directory, never into the
project (the datasets' licences forbid redistributing them), and the command's report is printed as is.
The candidate is thrown away: nothing here is shipped.

    .venv/bin/python bench/retrain_check.py [--model learned|DIR] [--folds 5]
    .venv/bin/python bench/retrain_check.py --own fr|en [--size 1000]

`--own LANGUAGE` runs `switchboard retrain --own` instead, no corrections: the first `--size` messages of
`own_labels_folds.py`'s pool (French: the third sample, one operator's tweets; English: the first and
second samples) play the team's labelled sample it trains on, the rest of the pool a fresh labelled
sample that weighs it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import realdata
from classifier_eval import FIRST, SECOND, inbound
from own_labels_folds import as_example, pool

from classifier.choice import LEARNED, load_model
from switchboard.cli import main as switchboard


def line(item: realdata.Labelled, language: str) -> str:
    """Shape a labelled real message as a category-only line, as `switchboard corrections` writes them."""
    return as_example(item, language).model_dump_json(exclude_none=True, exclude={"weight"}) + "\n"


def own(args: argparse.Namespace) -> int:
    """Write the own labelled lines and the fresh sample, then run `switchboard retrain --own` on them."""
    items = pool(args.own)
    with tempfile.TemporaryDirectory() as scratch:
        labelled, sample = Path(scratch) / "labelled.jsonl", Path(scratch) / "sample.jsonl"
        labelled.write_text("".join(line(i, args.own) for i in items[: args.size]), encoding="utf-8")
        sample.write_text("".join(line(i, args.own) for i in items[args.size :]), encoding="utf-8")
        command = ["retrain", "--own", str(labelled), "--sample", str(sample), "--against", args.model]
        return switchboard([*command, "--out", str(Path(scratch) / "candidate"), "--folds", args.folds])


def main(argv: list[str] | None = None) -> int:
    """Write the corrections and the sample, then run the command on them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=LEARNED, help="the model in force: learned or a directory")
    parser.add_argument("--folds", default="5")
    parser.add_argument("--own", choices=("fr", "en"), help="retrain on own labelled lines of this language")
    parser.add_argument("--size", type=int, default=1000, help="own labelled lines (--own)")
    args = parser.parse_args(argv)
    if args.own:
        return own(args)
    current = load_model(args.model)
    with tempfile.TemporaryDirectory() as scratch:
        corrections, sample = Path(scratch) / "corrections.jsonl", Path(scratch) / "sample.jsonl"
        with corrections.open("w", encoding="utf-8") as wrong, sample.open("w", encoding="utf-8") as test:
            for language, file in FIRST.items():
                items = realdata.load(realdata.LABELS / file)
                dev = [i for i in items if realdata.is_dev(i)]
                decided = current.classify_many([inbound(i.dataset, i.text) for i in dev])
                wrong.writelines(
                    line(i, language) for i, p in zip(dev, decided, strict=True) if p.category != i.category
                )
                rest = [i for i in items if not realdata.is_dev(i)] + realdata.load(
                    realdata.LABELS / SECOND[language]
                )
                test.writelines(line(i, language) for i in rest)
        command = [
            "retrain",
            "--corrections",
            str(corrections),
            "--sample",
            str(sample),
            "--against",
            args.model,
        ]
        return switchboard([*command, "--out", str(Path(scratch) / "candidate"), "--folds", args.folds])


if __name__ == "__main__":
    raise SystemExit(main())
