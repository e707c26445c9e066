"""Measure the language the classifier gives (fr, en or other) on real text in many languages.

- The labelled real messages (per dataset) and the 870 French tweets of DEFT 2017: the share called the
  language they are written in (English or French).
- Other languages, from the translation catalogues installed on this machine
  (`/usr/share/locale/<lang>/LC_MESSAGES/*.mo`: sentences people translated, not customers' messages,
  but real language): each catalogue's translations of four words or more, letters only, up to 2,000 per
  language in a fixed order (a hash of the text). Spanish, German, Italian, Portuguese and Dutch, which
  the classifier has stopword lists for, and Catalan, Polish, Swedish and Romanian, which it has none
  for, should be "other"; the French translations and the English originals are controls. What is
  installed differs between machines: the counts are printed.

    .venv/bin/python bench/language_check.py [--third dev|test|all]

`--third` keeps one part of the catalogues' sentences (a hash of the text: development third or the
other two), so stopword lists revised on the development third are reported on the rest.
"""

from __future__ import annotations

import argparse
import gettext
import hashlib
import re
from collections import Counter
from pathlib import Path

import realdata
from classifier_eval import FIRST, SECOND, THIRD, inbound

from classifier.choice import LEARNED, load_model
from classifier.examples import Inbound

LOCALE = Path("/usr/share/locale")
LISTED = ("es", "de", "it", "pt", "nl")
UNLISTED = ("ca", "pl", "sv", "ro")
PER_LANGUAGE = 2000
_MARKUP = re.compile(r"%\(?\w*\)?[sdif]|\{[^}]*\}|<[^>]+>|_(?=\w)|&(?=\w)|\\[nt]")
_LETTERS = re.compile(r"^[^\W\d_]+(?:[\s'\u2019,.;:!?-]+[^\W\d_]+)*[.!?:]?$")


def digest(text: str) -> str:
    """Return the hash that orders the sentences and splits them into thirds."""
    return hashlib.sha256(text.encode()).hexdigest()


def catalogue(language: str, originals: bool = False) -> list[str]:
    """Return a language's translated sentences of four words or more (or the English originals)."""
    found: set[str] = set()
    for path in sorted((LOCALE / language / "LC_MESSAGES").glob("*.mo")):
        try:
            with path.open("rb") as file:
                entries = gettext.GNUTranslations(file)._catalog  # the parsed catalogue
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        for msgid, msgstr in entries.items():
            text = msgid if originals else msgstr
            if not isinstance(text, str) or not isinstance(msgid, str) or not msgid:
                continue
            text = " ".join(_MARKUP.sub(" ", text).split())
            if len(text.split()) >= 4 and _LETTERS.match(text):
                found.add(text)
    return sorted(found, key=digest)


def third_of(texts: list[str], part: str) -> list[str]:
    """Keep the development third, the other two thirds, or all."""
    if part == "all":
        return texts
    return [t for t in texts if (int(digest(t), 16) % 3 == 0) == (part == "dev")]


def shares(languages: list[str]) -> str:
    """Format the shares of fr, en and other."""
    counted = Counter(languages)
    return " ".join(f"{k} {counted[k] / len(languages):.3f}" for k in ("fr", "en", "other"))


def main(argv: list[str] | None = None) -> int:
    """Print each yardstick's shares of fr, en and other."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--third", choices=("dev", "test", "all"), default="all")
    args = parser.parse_args(argv)
    model = load_model(LEARNED)

    def decide(messages: list[Inbound]) -> list[str]:
        return [p.language for p in model.classify_many(messages)]

    print("labelled real messages (share called their language):")
    samples = {"en": [FIRST["en"], SECOND["en"]], "fr": [FIRST["fr"], SECOND["fr"], THIRD["fr"]]}
    for language, files in samples.items():
        by_dataset: dict[str, list[str]] = {}
        for file in files:
            for item in realdata.load(realdata.LABELS / file):
                by_dataset.setdefault(item.dataset, []).append(item.text)
        for dataset, texts in by_dataset.items():
            got = decide([inbound(dataset, t) for t in texts])
            right = sum(g == language for g in got) / len(got)
            print(f"  {language} {dataset:36s} n={len(got):5d} {language} {right:.3f}  ({shares(got)})")
    deft = [t for t, _ in realdata.deft2017("test")]
    got = decide([inbound("fr-deft2017-sentiment-umsab", t) for t in deft])
    right = got.count("fr") / len(got)
    print(f"  fr {'fr-deft2017-sentiment-umsab':36s} n={len(got):5d} fr {right:.3f}  ({shares(got)})")
    print(f"translation catalogues ({args.third}; share called other, or the control's language):")
    rows = [(lang, "other", catalogue(lang)) for lang in (*LISTED, *UNLISTED)]
    rows += [("fr", "fr", catalogue("fr")), ("en (originals)", "en", catalogue("fr", originals=True))]
    listed = []
    for name, expected, texts in rows:
        texts = third_of(texts, args.third)[:PER_LANGUAGE]
        if not texts:
            print(f"  {name}: no catalogue on this machine")
            continue
        got = decide([Inbound(t, "email", "private") for t in texts])
        right = got.count(expected) / len(got)
        if name in LISTED:
            listed.append(right)
        print(f"  {name:15s} n={len(got):5d} {expected} {right:.3f}  ({shares(got)})")
    if listed:
        print(f"  mean of {', '.join(LISTED)} called other: {sum(listed) / len(listed):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
