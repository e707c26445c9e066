"""Audit the corpus's own labels: the lines a model trained without them contradicts, hidden among decoys.

`flag` decides every corpus line with a model trained without it (5 folds, identical texts together,
as `switchboard retrain` draws them), takes the lines whose out-of-fold category contradicts their label
at a confidence of `--confidence` or more, shuffles them with as many random other lines (decoys, so a
reviewer cannot tell which the model doubts) and writes review batches: text, channel, language and
labels only. A reviewer answers each line, in a file per batch, with `{"id", "decision": "keep"|"fix"
|"drop", ...}` (a fix gives the corrected category, intent, is_complaint and sentiment), by LABELLING.md.
`apply` writes a copy of the corpus with the decisions carried out (`--flagged-only`: the flagged lines'
alone) and prints how often the reviewers changed flagged lines and decoys. Decide the copy with
`bench/dev_check.py`. Nothing is written into the project.

    .venv/bin/python bench/corpus_audit.py flag DIR [--batches 6] [--confidence 0.8]   # ~70 s
    .venv/bin/python bench/corpus_audit.py apply DIR OUT [--flagged-only]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

from classifier.examples import CORPUS, Example, Inbound, corpus_files
from classifier.retraining import folds_of
from classifier.training import train

FOLDS = 5
SEED = 20261207
FIELDS = ("category", "intent", "is_complaint", "sentiment")
SHOWN = ("text", "channel", "language", *FIELDS)


def corpus_lines() -> list[tuple[str, int, str]]:
    """Return every corpus line as (file name, line number, JSON text)."""
    return [
        (path.name, number, line)
        for path in corpus_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip()
    ]


def flag(out: Path, batches: int, confidence: float) -> None:
    """Write the review batches and the key that says which lines were flagged."""
    lines = corpus_lines()
    examples = [Example.model_validate_json(text) for _, _, text in lines]
    fold = folds_of(examples, FOLDS, 0)
    doubted: set[int] = set()
    for k in range(FOLDS):
        held = [i for i, f in enumerate(fold) if f == k]
        model = train([e for e, f in zip(examples, fold, strict=True) if f != k], holdout=0)
        for i, p in zip(held, model.classify_many([Inbound.of(examples[i]) for i in held]), strict=True):
            if p.category != examples[i].category and p.confidence >= confidence:
                doubted.add(i)
    rng = random.Random(SEED)
    chosen = sorted(doubted) + rng.sample([i for i in range(len(lines)) if i not in doubted], len(doubted))
    rng.shuffle(chosen)
    out.mkdir(parents=True, exist_ok=True)
    key = {}
    size = -(-len(chosen) // batches)
    for b in range(batches):
        with (out / f"batch_{b + 1}.jsonl").open("w", encoding="utf-8") as batch:
            for n, i in enumerate(chosen[b * size : (b + 1) * size], start=b * size):
                name, number, text = lines[i]
                key[f"a{n:04d}"] = {"file": name, "line": number, "flagged": i in doubted}
                shown = {k: v for k, v in json.loads(text).items() if k in SHOWN}
                batch.write(json.dumps({"id": f"a{n:04d}", **shown}, ensure_ascii=False) + "\n")
    (out / "key.json").write_text(json.dumps(key))
    print(f"{len(doubted)} of {len(lines)} lines flagged at {confidence}; {len(chosen)} to review in {out}")


def apply(review: Path, out: Path, flagged_only: bool) -> None:
    """Write the corpus with the reviewers' decisions carried out, and how often they changed each kind."""
    key = json.loads((review / "key.json").read_text())
    decisions = {}
    for path in sorted(review.glob("decisions_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            decision = json.loads(line)
            decisions[decision["id"]] = decision
    if set(decisions) != set(key):
        raise SystemExit(f"{len(set(key) - set(decisions))} lines have no decision")
    print(dict(Counter((key[i]["flagged"], d["decision"]) for i, d in decisions.items())))
    carried = {
        (key[i]["file"], key[i]["line"]): d
        for i, d in decisions.items()
        if d["decision"] != "keep" and (key[i]["flagged"] or not flagged_only)
    }
    out.mkdir(parents=True)
    for path in corpus_files(CORPUS):
        kept = []
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            decision = carried.get((path.name, number))
            if decision is None:
                kept.append(text)
            elif decision["decision"] == "fix":
                line = json.loads(text)
                # A category-only line stays one: only the fields it has are corrected.
                fixed = [k for k in FIELDS if k in decision and (k in line or k == "category")]
                line.update({k: decision[k] for k in fixed})
                kept.append(json.dumps(line, ensure_ascii=False))
        (out / path.name).write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    flagging = sub.add_parser("flag")
    flagging.add_argument("dir", type=Path)
    flagging.add_argument("--batches", type=int, default=6)
    flagging.add_argument("--confidence", type=float, default=0.8)
    applying = sub.add_parser("apply")
    applying.add_argument("dir", type=Path)
    applying.add_argument("out", type=Path)
    applying.add_argument("--flagged-only", action="store_true")
    args = parser.parse_args(argv)
    if args.step == "flag":
        flag(args.dir, args.batches, args.confidence)
    else:
        apply(args.dir, args.out, args.flagged_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
