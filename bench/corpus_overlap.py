"""Find training lines that are too close to a real message the classifier is evaluated on.

The corpus is written for the project and must not carry the evaluation's messages, not even paraphrased:
a near copy in training turns a test into a memory exercise. This compares every corpus line with every
labelled real message (`bench/labels/`) and every tweet of the Preotiuc-Pietro complaint corpus, by the
cosine of their character 3-5-gram TF-IDF vectors on the classifier's normalised text, and lists the
pairs at or above `--threshold`. `--drop DIR` writes a copy of the corpus without those lines.

    .venv/bin/python bench/corpus_overlap.py                          # the packaged corpus
    .venv/bin/python bench/corpus_overlap.py --corpus DIR --drop OUT  # clean a corpus into OUT

Short generic lines ("ok merci", "thanks!") are flagged too: whatever their source, a line identical to
an evaluated message scores that message for free.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import realdata
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel

from classifier.examples import CORPUS, corpus_files
from classifier.model import normalise

CHUNK = 2000


def real_texts() -> list[tuple[str, str]]:
    """Return every evaluated real message as (where, text)."""
    texts = []
    for name in ("en_tweets.jsonl", "fr_messages.jsonl", "en_tweets_2.jsonl", "fr_messages_2.jsonl"):
        for item in realdata.load(realdata.LABELS / name):
            split = "dev" if realdata.is_dev(item) and "_2" not in name else "test"
            texts.append((f"{item.dataset}/{item.id} ({split})", item.text))
    texts += [(f"complaints-preotiuc2019 #{n}", text) for n, (text, _, _) in enumerate(realdata.preotiuc())]
    return texts


def corpus_lines(directory: Path) -> list[tuple[Path, int, str, str]]:
    """Return every corpus line as (file, line number, raw line, text)."""
    lines = []
    for path in corpus_files(directory):
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if raw.strip():
                lines.append((path, number, raw, json.loads(raw)["text"]))
    return lines


def overlaps(
    lines: list[tuple[Path, int, str, str]], real: list[tuple[str, str]], threshold: float
) -> list[tuple[float, int, int]]:
    """Return (similarity, corpus index, real index) for each corpus line's closest real message above it."""
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    vectorizer.fit([normalise(t) for _, t in real] + [normalise(line[3]) for line in lines])
    real_matrix = vectorizer.transform([normalise(t) for _, t in real])
    found = []
    for start in range(0, len(lines), CHUNK):
        chunk = vectorizer.transform([normalise(line[3]) for line in lines[start : start + CHUNK]])
        similarity = linear_kernel(chunk, real_matrix)
        for offset, (best, value) in enumerate(zip(similarity.argmax(1), similarity.max(1), strict=True)):
            if value >= threshold:
                found.append((float(value), start + offset, int(best)))
    return sorted(found, reverse=True)


def main(argv: list[str] | None = None) -> int:
    """List (and optionally drop) corpus lines too close to an evaluated real message."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--drop", type=Path, help="write the corpus without the flagged lines here")
    args = parser.parse_args(argv)
    real = real_texts()
    lines = corpus_lines(args.corpus)
    found = overlaps(lines, real, args.threshold)
    for value, i, j in found:
        path, number, _, text = lines[i]
        print(f"{value:.2f} {path.name}:{number} {text[:80]!r}\n     ~ {real[j][0]}")
    print(f"{len(found)} of {len(lines)} lines at or above {args.threshold}", file=sys.stderr)
    if args.drop:
        flagged = {i for _, i, _ in found}
        args.drop.mkdir(parents=True, exist_ok=True)
        for path in corpus_files(args.corpus):
            kept = [raw for i, (p, _, raw, _) in enumerate(lines) if p == path and i not in flagged]
            (args.drop / path.name).write_text("".join(f"{raw}\n" for raw in kept), encoding="utf-8")
        print(f"wrote the {len(lines) - len(flagged)} other lines to {args.drop}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
