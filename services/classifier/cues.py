"""Find the lexicon's terms in a normalised message: extra features, urgency, private data and language.

`classifier.model` keeps its matcher private, so this is a smaller one over the same public tables:
it sums each table's weights without the baseline's negation and irony rules, which the learned
model picks up from word pairs instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import compress

from classifier import lexicon as lx
from classifier import model as baseline

# The order is the order of the feature columns a trained model was fitted on: append, never reorder.
TABLES = lx.TABLES
LANGUAGES = ("en", "fr")
# Every language with a stopword list, in the order of `stopwords_of`'s bits: English and French first.
STOPWORD_LANGUAGES = tuple(baseline.STOPWORD_LISTS)


@dataclass(frozen=True, slots=True)
class _Term:
    """One lexicon term: its table, its words, whether its last word is a prefix, weight and language."""

    table: str
    words: tuple[str, ...]
    prefix: bool
    weight: float
    lang: str


@dataclass(frozen=True, slots=True)
class Cue:
    """A lexicon term found in a message: its table, the words it matched, weight and language."""

    table: str
    text: str
    weight: float
    lang: str


def _index(tables: dict[str, lx.Terms]) -> dict[str, list[_Term]]:
    """Index terms by their first word; a one-word prefix term by its first two letters, marked with '*'."""
    index: dict[str, list[_Term]] = {}
    for table, spec in tables.items():
        for lang, terms in spec.items():
            for raw, weight in terms.items():
                words = tuple(raw.rstrip("*").split())
                term = _Term(table, words, raw.endswith("*"), float(weight), lang)
                key = f"*{words[0][:2]}" if term.prefix and len(words) == 1 else words[0]
                index.setdefault(key, []).append(term)
    return index


_INDEX = _index(TABLES)


# Terms of several words, by their first word (which is never a prefix: only a term's last word can be),
# then by their second word when it must match exactly (else under "*": a prefix, checked in full).
def _by_two_words(index: dict[str, list[_Term]]) -> dict[str, dict[str, list[_Term]]]:
    found: dict[str, dict[str, list[_Term]]] = {}
    for terms in index.values():
        for term in terms:
            if len(term.words) > 1:
                second = "*" if term.prefix and len(term.words) == 2 else term.words[1]
                found.setdefault(term.words[0], {}).setdefault(second, []).append(term)
    return found


_MULTI_WORD = _by_two_words(_INDEX)


def _matches(term: _Term, tokens: list[str], at: int) -> int:
    """Return how many tokens the term covers from position `at`, or 0 when it does not match there."""
    words = term.words
    n = len(words)
    if at + n > len(tokens):
        return 0
    # Word by word, so that most candidates are dropped at their second word without building anything.
    for k in range(n - 1):
        if tokens[at + k] != words[k]:
            return 0
    word = tokens[at + n - 1]
    return n if (word.startswith(words[-1]) if term.prefix else word == words[-1]) else 0


def _single_word_terms(token: str) -> tuple[_Term, ...]:
    """Return the one-word terms a token matches by itself."""
    return tuple(
        term
        for term in (*_INDEX.get(token, ()), *_INDEX.get(f"*{token[:2]}", ()))
        if len(term.words) == 1
        and (token.startswith(term.words[0]) if term.prefix else token == term.words[0])
    )


# What one token brings to `find`: the cues it is by itself, keyed as `find` keeps them, and the terms
# of several words that start with it; None for most tokens, which bring neither.
_TokenCues = tuple[tuple[tuple[tuple[str, str], Cue], ...], dict[str, list[_Term]] | None] | None
TOKEN_CACHE = 65_536


def _token_cues(token: str) -> _TokenCues:
    """Return what a token brings to `find`; a cue is immutable, so one result serves every message."""
    singles = tuple(
        ((term.table, token), Cue(term.table, token, term.weight, term.lang))
        for term in _single_word_terms(token)
    )
    following = _MULTI_WORD.get(token)
    return (singles, following) if singles or following else None


# Each token's `_TokenCues`, worked out on first sight: tokens repeat from message to message.
_CUES_BY_TOKEN = baseline.Memo(_token_cues, TOKEN_CACHE)


def find(tokens: list[str]) -> list[Cue]:
    """Return every lexicon term found in the normalised tokens, once per table and matched text."""
    found: dict[tuple[str, str], Cue] = {}
    last = len(tokens) - 1
    by_token = list(map(_CUES_BY_TOKEN.__getitem__, tokens))
    # Only the tokens that bring something are visited.
    for at in compress(range(len(by_token)), by_token):
        singles, following = by_token[at]
        for key, cue in singles:
            kept = found.get(key)
            if kept is None or kept.weight < cue.weight:
                found[key] = cue
        if following and at < last:
            for term in (*following.get(tokens[at + 1], ()), *following.get("*", ())):
                n = _matches(term, tokens, at)
                if n:
                    key = (term.table, " ".join(tokens[at : at + n]))
                    kept = found.get(key)
                    if kept is None or kept.weight < term.weight:
                        found[key] = Cue(term.table, key[1], term.weight, term.lang)
    return list(found.values())


def scores(cues: Iterable[Cue]) -> list[float]:
    """Sum the weights found per table, in the order of TABLES."""
    totals = dict.fromkeys(TABLES, 0.0)
    for cue in cues:
        totals[cue.table] += cue.weight
    return list(totals.values())


def stopwords_of(token: str) -> int:
    """Return the languages the token counts for (`classifier.model.language_word`), as bits in the order
    of STOPWORD_LANGUAGES."""
    return sum(1 << k for k, lang in enumerate(STOPWORD_LANGUAGES) if baseline.language_word(token, lang))


def language(words: tuple[int, int, int], cues: Iterable[Cue], hint: str | None) -> tuple[str, bool]:
    """Pick fr, en or other as the baseline does, from a message's English and French stopwords and the
    most words of any other language (`stopwords_of`), and its lexicon terms; say whether the message is
    written in another language (`classifier.model.another_language`)."""
    en, fr, other = words
    for cue in cues:
        if cue.lang == "en":
            en += 1
        elif cue.lang == "fr":
            fr += 1
    return baseline.decide_language(en, fr, other, hint), baseline.another_language(en, fr, other)


def priority(
    category: str,
    intent: str,
    is_complaint: bool,
    *,
    cues: Iterable[Cue],
    sentiment_score: float,
    public: bool,
    followers: int | None,
) -> str:
    """Rank support by harm as the baseline does: outages and loud public complaints first, marketing last."""
    if category == "marketing":
        return "P4"
    urgent = sum(c.weight for c in cues if c.table == "urgency") >= baseline.URGENT_THRESHOLD
    loud = (
        urgent or sentiment_score <= baseline.STRONG_NEGATIVE or (followers or 0) >= baseline.LARGE_AUDIENCE
    )
    if intent == "outage" or (is_complaint and public and loud):
        return "P1"
    return "P2" if is_complaint or urgent else "P3"


def private(cues: Iterable[Cue]) -> bool:
    """Tell whether the message holds personal data or asks to move to a private channel."""
    return any(c.table == "private" for c in cues)


def fingerprint() -> str:
    """Hash the lexicon data the features and `normalise` depend on, so a model never meets other tables."""
    data = {
        "tables": TABLES,
        "stopwords": {k: sorted(v) for k, v in lx.STOPWORDS.items()},
        "rewrites": lx.REWRITES,
        "emoji": lx.EMOJI,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
