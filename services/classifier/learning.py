"""Run the learned classifier: TF-IDF words and stems plus lexicon cues, logistic heads.

`classifier.training` fits scikit-learn's vectorizers and logistic regressions; the model keeps only their
fitted numbers (vocabularies, IDF weights, coefficients, labels), so loading and running a model never
import scikit-learn: a service starts faster, and an artefact is plain arrays, not a pickle of library
objects.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import scipy.sparse as sp

from classifier import cues as cue_lexicon
from classifier.examples import INTENTS_OF, Inbound
from classifier.model import NORMALISATION, OTHER_LANGUAGE_CONFIDENCE, normalise, support_intent
from switchboard.contract import Classification, trusted

FAMILY = "tfidf-lr"
HEADS = ("category", "intent", "is_complaint", "sentiment")
# Word unigrams and pairs, word stems (a word's first letters) and the lexicon's cue scores. Stems replaced
# character 2-5-grams: as good on the project corpus and on the development third of the labelled real
# messages (bench/classifier_eval.py), with a tenth of the look-ups per message; pairs seen once are left
# out (min_df 2), which makes training three times faster at the same scores.
RECIPE: dict = {
    "word": {"analyzer": "word", "ngram_range": [1, 2], "min_df": 2, "token_pattern": r"\S+"},
    "stem": {"analyzer": "prefix", "min_df": 2},
    "prefix_chars": 4,
    "tfidf": {"sublinear_tf": True, "lowercase": False},
    # A table's summed weight t becomes CUE_WEIGHT * tanh(t / CUE_SCALE): bounded like a TF-IDF value.
    "cue_scale": 3.0,
    "cue_weight": 0.5,
    # newton-cg draws nothing at random, so the same data gives the same weights on any machine.
    # Balanced class weights lift the minority labels (complaints); C=20 gave the best-calibrated confidence.
    "logistic": {"C": 20.0, "class_weight": "balanced", "solver": "newton-cg", "max_iter": 1000},
    "holdout": 0.2,
    # The text the features are built from (`classifier.model.normalise`).
    "normalisation": NORMALISATION,
    # How the intent is decided after the head: `complaint` yields to a topic the cues name clearly
    # (`_narrower_topic`). Part of the recipe so that the model version says which decisions it makes.
    "intent_rule": "complaint-yields-to-clear-topic",
    # A message the complaint head calls a complaint is support (`TrainedModel.classify_many`), decided
    # on a second labelled sample drawn after the rule for shipping it was written.
    "complaint_is_support": True,
    # A message whose support intents together are likelier than not is support, as sure as their sum
    # (the complaint rule's twin), decided on a fourth English sample drawn after its rule was written.
    "support_intent_is_support": True,
    # A model trained with a contact centre's own labels (lines counted more than once: `--own`) decides
    # English messages without the two rules above: those labels teach the category head the brand's
    # marketing, which heads trained on the corpus alone would overrule. Decided on a pool of 2,130
    # English tweets under a rule written first (with 1,000 own labels, 0.848 -> 0.871); French keeps
    # the rules (without them its own-label models put more support in marketing).
    "own_labels_english_without_support_rules": True,
}
EXPLANATION_SIZE = 5
# Only the strongest features are turned back into words; the rest barely move the ranking.
EXPLAINED_FEATURES = 12
TOKEN_CACHE = 50_000
# What the word table keeps of each word (`TrainedModel._columns_of`).
WORD_FACTS = 4
# A message of UNREAD_WORDS words or more of which UNREAD_SHARE or more are words the model never learned
# (in a language it was not trained on, or a script it has no word of) is decided from the few it
# knows: unsure, like a message in another language (`OTHER_LANGUAGE_CONFIDENCE`). @mentions, hashtags
# (their word is counted) and tokens without a letter are not. On real messages to brands that is 0 to
# 0.3% of them.
UNREAD_SHARE = 0.7
UNREAD_WORDS = 3


# The recipe's keys that decide after the heads have scored, not how they are fitted: a model fitted
# under other settings of them holds the same numbers, so an artefact that differs from this code only
# there is served with this code's rules (and named by them: `model_version`).
DECISION_RULES = frozenset(
    {
        "intent_rule",
        "complaint_is_support",
        "support_intent_is_support",
        "own_labels_english_without_support_rules",
    }
)


def recipe_hash(recipe: dict | None = None) -> str:
    """Hash the recipe (this code's, or `recipe`), so a model is never run by code that would build its
    features differently, and its version says which decisions it makes."""
    return hashlib.sha256(
        json.dumps(RECIPE if recipe is None else recipe, sort_keys=True).encode()
    ).hexdigest()


def fitted_alike(recipe: dict) -> bool:
    """Whether a model built under `recipe` has the numbers this code would fit: the recipes differ at
    most in their decision rules (`DECISION_RULES`)."""
    return recipe_hash({k: v for k, v in recipe.items() if k not in DECISION_RULES}) == recipe_hash(
        {k: v for k, v in RECIPE.items() if k not in DECISION_RULES}
    )


def model_version(data_hash: str, seed: int, recipe_sha256: str | None = None) -> str:
    """Name a model by its family, its training data, the recipe (this code's unless given by its hash)
    and its seed."""
    made_of = hashlib.sha256(f"{data_hash}:{recipe_sha256 or recipe_hash()}".encode()).hexdigest()
    return f"{FAMILY}-{made_of[:8]}-s{seed}"


def prefixes(norm: str) -> list[str]:
    """Return the first letters of each long word: its stem, cheaply ("remb~" for "rembourser")."""
    size = RECIPE["prefix_chars"]
    return [f"{t[:size]}~" for t in norm.split() if len(t) > size]


_TABLE_COLUMN = {table: k for k, table in enumerate(cue_lexicon.TABLES)}


def cue_rows(parsed: Sequence[Parsed]) -> np.ndarray:
    """Turn the lexicon cues of each message into bounded feature values, one row per message, one
    column per table.

    Each table's weights are summed as `cue_lexicon.scores` sums them: from 0.0, in the cues' order
    (`np.bincount` adds its weights in order).
    """
    width = len(_TABLE_COLUMN)
    at = [row * width + _TABLE_COLUMN[c.table] for row, message in enumerate(parsed) for c in message.cues]
    weights = [c.weight for message in parsed for c in message.cues]
    size = len(parsed) * width
    totals = np.bincount(np.array(at, dtype=np.intp), np.array(weights, dtype=np.float64), minlength=size)
    return RECIPE["cue_weight"] * np.tanh(totals.reshape(len(parsed), width) / RECIPE["cue_scale"])


@dataclass(frozen=True, slots=True)
class Parsed:
    """A message ready for the heads: its tokens and the lexicon cues found in them."""

    norm: str
    tokens: list[str]
    cues: list[cue_lexicon.Cue]


def _narrower_topic(cues: Sequence[cue_lexicon.Cue]) -> str:
    """Return the support topic the cues name clearly, else `complaint`.

    The guide gives `complaint` only "when no narrower support intent fits": a crashing app is
    `technical`, a late parcel `delivery`, however angry the message. The head, trained on lines that
    label many such complaints `complaint`, is overruled as the baseline decides a complaint's intent:
    when the lexicon's cues for one topic reach its threshold (a pre-purchase question is never a
    complaint's narrower intent).
    """
    totals = dict(zip(cue_lexicon.TABLES, cue_lexicon.scores(cues), strict=True))
    return support_intent(totals, 0.0, is_complaint=True)


def parse(text: str) -> Parsed:
    """Normalise a text as the lexicon does and find its cues."""
    norm = normalise(text)
    tokens = norm.split()
    return Parsed(norm, tokens, cue_lexicon.find(tokens))


BLOCKS = ("word", "stem")


@dataclass(frozen=True, slots=True)
class Tokens:
    """A batch's tokens in order, with each one's message (row) and stem column (-1: none), and what the
    language is decided from."""

    words: list[str]
    rows: np.ndarray
    stems: np.ndarray
    # Per message, its English and French stopwords and the most words of any other language
    # (`cue_lexicon.stopwords_of`, `cue_lexicon.language`).
    stopwords: list[tuple[int, int, int]]
    # Per message, whether too many of its words are unknown to the model (UNREAD_SHARE).
    unread: list[bool]


class WordTable(dict):
    """Words by number, numbered on first sight, with what `compute` tells of each (a tuple of
    integers) kept as a row of one array: a batch's words become one array of numbers, and their facts
    one look-up in that array, rather than a tuple per word to unpack.

    Words repeat from message to message, so they are worth remembering; the table forgets every word
    once `size` are held, between batches only, so a batch's numbers stay valid while it is read (a
    batch of more distinct words than that grows it for the while).
    """

    __slots__ = ("_compute", "_facts", "_lock", "_size")

    def __init__(self, compute: Callable[[str], tuple[int, ...]], width: int, size: int) -> None:
        super().__init__()
        self._compute = compute
        self._size = size
        self._facts = np.empty((1024, width), dtype=np.intp)
        self._lock = threading.Lock()

    def __missing__(self, word: str) -> int:
        number = len(self)
        if number == len(self._facts):
            self._facts = np.concatenate([self._facts, np.empty_like(self._facts)])
        self._facts[number] = self._compute(word)
        self[word] = number
        return number

    def facts_of(self, words: list[str]) -> np.ndarray:
        """Return the facts of each word, one row per word."""
        with self._lock:
            if len(self) >= self._size:
                self.clear()
                if len(self._facts) > 2 * self._size:
                    # A batch of many distinct words grew it past the usual size: give that memory back.
                    self._facts = np.empty((1024, self._facts.shape[1]), dtype=np.intp)
            numbers = np.fromiter(map(self.__getitem__, words), dtype=np.intp, count=len(words))
            return self._facts[numbers]


def _pair_table(vocabulary: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Return the word block's pairs as sorted keys (first word's column x block size + second's) and
    their columns in the same order.

    The vectorizer keeps a pair only if it keeps both its words (each is in every message the pair is
    in), so every pair has a key; one that did not would be lost to the look-up, so it is refused.
    """
    keys, columns = [], []
    size = len(vocabulary)
    for gram, col in vocabulary.items():
        if " " in gram:
            first, second = gram.split(" ")
            if first not in vocabulary or second not in vocabulary:
                raise ValueError(f"the word pair {gram!r} has a word the vocabulary does not hold")
            keys.append(vocabulary[first] * size + vocabulary[second])
            columns.append(col)
    sortable = np.array(keys, dtype=np.int64)
    order = np.argsort(sortable, kind="stable")
    return sortable[order], np.array(columns, dtype=np.intp)[order]


@dataclass(frozen=True, slots=True)
class Head:
    """One fitted logistic head: its labels in the order of its outputs, weights and intercepts.

    `coef` is outputs x features (one output for two labels: the score of the second), as scikit-learn's
    `coef_`.
    """

    classes: list
    coef: np.ndarray
    intercept: np.ndarray


@dataclass(eq=False)
class TrainedModel:
    """The fitted numbers of the TF-IDF blocks and of one logistic head per decision, with what names and
    describes them."""

    # Per TF-IDF block (`BLOCKS`): each term's column in the block, and the block's IDF weights by column.
    vocabularies: dict[str, dict[str, int]]
    idf: dict[str, np.ndarray]
    heads: dict[str, Head]
    data_hash: str
    seed: int
    counts: dict[str, dict[str, int]]
    evaluation: dict | None = None
    # Log-odds added to the support side of the category head: the training data is balanced, a contact
    # centre's traffic is mostly support (see `support_shift`).
    support_shift: float = 0.0
    # The version the release that built the artefact named it, when this code's decision rules name it
    # otherwise (`artefact._check_made_for_this_code`); None when the two agree.
    built_as: str | None = None
    _vocab: list[dict[str, int]] = field(init=False, repr=False)
    _idf_all: np.ndarray = field(init=False, repr=False)
    _classes: dict[str, list] = field(init=False, repr=False)
    _intent_of: np.ndarray = field(init=False, repr=False)
    _complaint_true: int = field(init=False, repr=False)
    _support_intents: np.ndarray = field(init=False, repr=False)
    _support: int = field(init=False, repr=False)
    _positive: int = field(init=False, repr=False)
    _negative: int = field(init=False, repr=False)
    _offsets: list[int] = field(init=False, repr=False)
    _weights: np.ndarray = field(init=False, repr=False)
    _bias: np.ndarray = field(init=False, repr=False)
    _columns: dict[str, slice] = field(init=False, repr=False)
    _width: int = field(init=False, repr=False)
    _names: list[str] = field(init=False, repr=False)
    _pair_keys: np.ndarray = field(init=False, repr=False)
    _pair_columns: np.ndarray = field(init=False, repr=False)
    _cue_tables: dict[int, str] = field(init=False, repr=False)
    _words: WordTable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._vocab = [self.vocabularies[b] for b in BLOCKS]
        self._idf_all = np.concatenate([self.idf[b] for b in BLOCKS])
        sizes = [len(v) for v in self._vocab]
        self._offsets = [0, sizes[0], sizes[0] + sizes[1]]
        # More than every column: a (row, column) pair as one number, row * _width + column.
        self._width = self._offsets[2] + len(cue_lexicon.TABLES)
        # Words repeat from message to message, so their columns are worth remembering.
        self._words = WordTable(self._columns_of, WORD_FACTS, TOKEN_CACHE)
        self._pair_keys, self._pair_columns = _pair_table(self._vocab[0])
        self._names = [
            *(term for v in self._vocab for term in terms_by_column(v)),
            *(f"cue:{t}" for t in cue_lexicon.TABLES),
        ]
        self._cue_tables = {self._offsets[2] + k: table for k, table in enumerate(cue_lexicon.TABLES)}
        self._classes = {head: list(self.heads[head].classes) for head in HEADS}
        # Which intents each category may take, as a mask per category label.
        self._intent_of = np.array(
            [
                [intent in INTENTS_OF[c] for intent in self._classes["intent"]]
                for c in self._classes["category"]
            ]
        )
        self._complaint_true = self._classes["is_complaint"].index(True)
        self._support_intents = np.array([i in INTENTS_OF["support"] for i in self._classes["intent"]])
        self._support = self._classes["category"].index("support")
        self._positive = self._classes["sentiment"].index("positive")
        self._negative = self._classes["sentiment"].index("negative")
        # One matrix for every head's weights (features x outputs): one product scores all decisions.
        columns, start = {}, 0
        for head in HEADS:
            n = self.heads[head].coef.shape[0]
            columns[head] = slice(start, start + n)
            start += n
        self._columns = columns
        self._weights = np.ascontiguousarray(np.vstack([self.heads[h].coef for h in HEADS]).T)
        self._bias = np.concatenate([self.heads[h].intercept for h in HEADS])

    @property
    def version(self) -> str:
        """Name the model by its family, its training data, the recipe it was built with and its seed.

        The recipe counts: the same data normalised or featurised otherwise, or decided by other rules,
        is another model.
        """
        return model_version(self.data_hash, self.seed)

    @property
    def taught_by_own_labels(self) -> bool:
        """Whether lines counted more than once trained it: a contact centre's own labels (`--own`)."""
        return any(int(weight) > 1 for weight in self.counts.get("weight", {}))

    def labels(self) -> dict[str, list]:
        """Return the labels each head can give, in the order of its outputs."""
        return {head: list(labels) for head, labels in self._classes.items()}

    def fingerprint(self) -> str:
        """Hash every fitted number and vocabulary, so two trainings can be compared byte for byte."""
        digest = hashlib.sha256()
        for block in BLOCKS:
            digest.update(json.dumps(sorted(self.vocabularies[block].items())).encode())
            digest.update(np.ascontiguousarray(self.idf[block], dtype=np.float64).tobytes())
        for head in HEADS:
            digest.update(np.ascontiguousarray(self.heads[head].coef, dtype=np.float64).tobytes())
            digest.update(np.ascontiguousarray(self.heads[head].intercept, dtype=np.float64).tobytes())
        return digest.hexdigest()

    def classify(
        self,
        text: str,
        *,
        channel: str,
        visibility: str,
        followers: int | None = None,
        language_hint: str | None = None,
    ) -> Classification:
        """Classify one inbound message; the same call as `classifier.model.classify`."""
        (result,) = self.classify_many([Inbound(text, channel, visibility, followers, language_hint)])
        return result

    def classify_many(self, items: Sequence[Inbound]) -> list[Classification]:
        """Classify many messages at once: features, scores and probabilities in a few array passes."""
        if not items:
            return []
        parsed = [parse(item.text) for item in items]
        matrix, tokens = self._featurise(parsed)
        scores = matrix @ self._weights + self._bias
        scores[:, self._columns["category"].start] += self.support_shift
        p = {head: self._probabilities(scores, head) for head in HEADS}
        classes = self._classes
        # "Complaints are support" (the guide): a complaint the complaint head sees is support, as sure as
        # the surer of the two heads.
        complained = p["is_complaint"][:, self._complaint_true]
        complaint = complained >= 0.5
        support = p["category"][:, self._support]
        stopwords, unread = tokens.stopwords, tokens.unread
        languages = [
            cue_lexicon.language(words, message.cues, item.language_hint)
            for words, message, item in zip(stopwords, parsed, items, strict=True)
        ]
        ruled: np.ndarray | bool = True
        if RECIPE["own_labels_english_without_support_rules"] and self.taught_by_own_labels:
            ruled = np.array([language != "en" for language, _ in languages])
        if RECIPE["complaint_is_support"]:
            support = np.where(complaint & ruled, np.maximum(support, complained), support)
        if RECIPE["support_intent_is_support"]:
            # The intent head vouches for support as the complaint head does: its support intents'
            # probabilities summed.
            asked = p["intent"][:, self._support_intents].sum(axis=1)
            support = np.where((asked >= 0.5) & ruled, np.maximum(support, asked), support)
        p["category"][:, self._support] = support
        p["category"][:, 1 - self._support] = 1.0 - support
        best = p["category"].argmax(axis=1)
        # The intent is the likeliest of the chosen category's intents.
        intent_scores = np.where(self._intent_of[best], p["intent"], -1.0)
        intents = intent_scores.argmax(axis=1)
        tones = p["sentiment"].argmax(axis=1)
        tone_score = np.clip(p["sentiment"][:, self._positive] - p["sentiment"][:, self._negative], -1.0, 1.0)
        pushes, rows, features, bounds = self._strongest(matrix, best)
        owners = self._stem_owners(tokens, rows, features)
        pushes, features, bounds = pushes.tolist(), features.tolist(), bounds.tolist()
        # Python lists, not arrays, for the loop below: reading a NumPy array one item at a time is slow.
        labels = zip(
            [classes["category"][k] for k in best.tolist()],
            [classes["intent"][k] for k in intents.tolist()],
            complaint.tolist(),
            [classes["sentiment"][k] for k in tones.tolist()],
            tone_score.tolist(),
            p["category"][np.arange(len(items)), best].tolist(),
            strict=True,
        )
        version = self.version
        results = []
        for i, (item, message, decided) in enumerate(zip(items, parsed, labels, strict=True)):
            category, intent, complains, sentiment, score, confidence = decided
            is_complaint = complains and category == "support"
            if intent == "complaint":
                intent = _narrower_topic(message.cues)
            row = slice(bounds[i], bounds[i + 1])
            language, foreign = languages[i]
            if foreign or unread[i]:
                # Written in another language, or in words the model never learned: a guess.
                confidence = min(confidence, OTHER_LANGUAGE_CONFIDENCE)
            # Every value is one of the heads' own labels or a bounded number: no second validation.
            results.append(
                trusted(
                    Classification,
                    category=category,
                    intent=intent,
                    is_complaint=is_complaint,
                    language=language,
                    sentiment=sentiment,
                    sentiment_score=round(score, 4),
                    priority=cue_lexicon.priority(
                        category,
                        intent,
                        is_complaint,
                        cues=message.cues,
                        sentiment_score=score,
                        public=item.visibility == "public",
                        followers=item.followers,
                    ),
                    reply_privately=cue_lexicon.private(message.cues),
                    confidence=round(confidence, 4),
                    model_version=version,
                    explanation=self._explain(features[row], pushes[row], message, owners, i * self._width),
                )
            )
        return results

    def _strongest(
        self, matrix: sp.csr_matrix, best: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return each message's features that pushed toward its category, strongest first, at most
        `EXPLAINED_FEATURES` of them: their pushes, rows and columns, and where each message's run starts
        and ends.

        A push is weight times TF-IDF value, signed so that positive favours the chosen label (the
        category head has one output, for its second label). Only the strongest are turned back into
        words, and only positive pushes count, so only those are sorted: by message, then push
        descending, ties in column order.
        """
        n = matrix.shape[0]
        row_of = np.repeat(np.arange(n), np.diff(matrix.indptr))
        push = (
            np.where(best == 1, 1.0, -1.0)[row_of]
            * self._weights[matrix.indices, self._columns["category"].start]
        )
        push *= matrix.data
        positive = np.flatnonzero(push > 0)
        # The smallest integer type that holds the row numbers: a stable sort of 8 or 16-bit integers is a
        # radix sort, several times faster than on 64-bit ones.
        rows = row_of[positive].astype(np.min_scalar_type(n))
        # By push, then by message: two stable sorts, cheaper here than one `np.lexsort`.
        by_push = np.argsort(-push[positive], kind="stable")
        order = positive[by_push[np.argsort(rows[by_push], kind="stable")]]
        # Rank of each entry within its message; keep the first EXPLAINED_FEATURES of each.
        sizes = np.bincount(rows, minlength=n)
        starts = np.cumsum(sizes) - sizes
        kept = order[np.arange(len(order)) - np.repeat(starts, sizes) < EXPLAINED_FEATURES]
        bounds = np.zeros(n + 1, dtype=np.intp)
        np.cumsum(np.minimum(sizes, EXPLAINED_FEATURES), out=bounds[1:])
        return push[kept], row_of[kept], matrix.indices[kept], bounds

    def _stem_owners(self, tokens: Tokens, rows: np.ndarray, features: np.ndarray) -> dict[int, list[str]]:
        """Return the words that own each explained stem: its message's distinct words with that stem,
        in the order they come, by the stem's key (`row * _width + column`).

        Only the words whose stem is explained in their message are visited, found as arrays.
        """
        width = self._width
        stem = (features >= self._offsets[1]) & (features < self._offsets[2])
        keys = tokens.rows * width + tokens.stems
        at = np.flatnonzero((tokens.stems >= 0) & np.isin(keys, rows[stem] * width + features[stem]))
        owners: dict[int, list[str]] = {}
        words = tokens.words
        for key, i in zip(keys[at].tolist(), at.tolist(), strict=True):
            word = words[i]
            found = owners.get(key)
            if found is None:
                owners[key] = [word]
            elif word not in found:
                found.append(word)
        return owners

    def _features(self, parsed: Sequence[Parsed]) -> sp.csr_matrix:
        """Build the TF-IDF and cue features of many messages, as the fitted vectorizers would.

        Only the look-ups run in Python (`_count_tokens`); counting, the sublinear TF, the IDF and each
        block's L2 norm are array operations over the batch.
        """
        return self._featurise(parsed)[0]

    def _featurise(self, parsed: Sequence[Parsed]) -> tuple[sp.csr_matrix, Tokens]:
        """Build the features of many messages (`_features`); return the batch's tokens with them."""
        n, stem_offset = len(parsed), self._offsets[1]
        counts, tokens = self._count_tokens(parsed)
        data = (1.0 + np.log(counts.data)) * self._idf_all[counts.indices]
        # Each block is normalised on its own, as each vectorizer normalises its rows.
        row_of = np.repeat(np.arange(n), np.diff(counts.indptr))
        block = (counts.indices >= stem_offset).astype(np.intp)
        norms = np.sqrt(np.bincount(row_of * 2 + block, weights=data * data, minlength=2 * n))
        data /= norms[row_of * 2 + block]
        tfidf = sp.csr_matrix((data, counts.indices, counts.indptr), shape=(n, self._offsets[2]))
        cue_block = sp.csr_matrix(cue_rows(parsed))
        return sp.hstack([tfidf, cue_block], format="csr"), tokens

    def _count_tokens(self, parsed: Sequence[Parsed]) -> tuple[sp.csr_matrix, Tokens]:
        """Count each message's words, word pairs and stems by column, in canonical CSR form; return the
        batch's tokens too, with the columns they were found at.

        Each word's columns (its own, its stem's) come from the table of words seen before (`WordTable`)
        in one pass over the whole batch; pairs are looked up as arrays: a pair's key is made of its two
        words' own columns (a pair kept by the vectorizer is made of two kept words), found by binary
        search in the model's sorted pair keys. A pair that straddles two messages is dropped by its
        rows.
        """
        tokens = list(chain.from_iterable(message.tokens for message in parsed))
        token_rows = np.repeat(np.arange(len(parsed), dtype=np.intp), [len(m.tokens) for m in parsed])
        found = self._words.facts_of(tokens)
        own, stem = found[:, 0], found[:, 1]
        has_own, has_stem = own >= 0, stem >= 0
        # Pairs of two known words in one message.
        paired = has_own[:-1] & has_own[1:] & (token_rows[:-1] == token_rows[1:])
        keys = own[:-1][paired] * len(self._vocab[0]) + own[1:][paired]
        at = np.searchsorted(self._pair_keys, keys)
        at[at == len(self._pair_keys)] = 0
        known = self._pair_keys[at] == keys if len(self._pair_keys) else np.zeros(len(keys), dtype=bool)
        rows = np.concatenate([token_rows[has_own], token_rows[has_stem], token_rows[:-1][paired][known]])
        cols = np.concatenate([own[has_own], stem[has_stem], self._pair_columns[at[known]]])
        counts = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(parsed), self._offsets[2]))
        # Canonical form: duplicates summed, columns sorted in each row.
        counts.sum_duplicates()
        # Each language's words per message, summed by row (the bits of `cue_lexicon.stopwords_of`):
        # English, French, and the most of any other language.
        bits = found[:, 2]
        per_language = np.array(
            [
                np.bincount(token_rows, weights=(bits >> k) & 1, minlength=len(parsed))
                for k in range(len(cue_lexicon.STOPWORD_LANGUAGES))
            ],
            dtype=np.intp,
        )
        others = per_language[2:].max(axis=0)
        by_message = list(
            zip(per_language[0].tolist(), per_language[1].tolist(), others.tolist(), strict=True)
        )
        # Words counted for UNREAD_SHARE, and those of them the model has a column of.
        counted = found[:, 3]
        words = np.bincount(token_rows, weights=counted, minlength=len(parsed))
        known = np.bincount(token_rows, weights=counted * has_own, minlength=len(parsed))
        unread = (words >= UNREAD_WORDS) & (words - known >= UNREAD_SHARE * words)
        return counts, Tokens(tokens, token_rows, stem, by_message, unread.tolist())

    def _columns_of(self, token: str) -> tuple[int, int, int, int]:
        """Return a word's own column, its stem's (after the word block), -1 for one it lacks, the
        languages it is a stopword of (`cue_lexicon.stopwords_of`), and 1 if it counts as a word for
        UNREAD_SHARE (it holds a letter and is no @mention or hashtag), else 0.

        A word has one stem at most (`prefixes` of one word).
        """
        stems = [self._vocab[1].get(g) for g in prefixes(token)]
        stem = stems[0] + self._offsets[1] if stems and stems[0] is not None else -1
        # A hashtag's word is a token of its own beside it ("#panne", "panne"): counted once, as the word.
        counted = int(token[0] not in "@#" and any(c.isalpha() for c in token))
        return self._vocab[0].get(token, -1), stem, cue_lexicon.stopwords_of(token), counted

    def _probabilities(self, scores: np.ndarray, head: str) -> np.ndarray:
        """Turn a head's raw scores (one row per message) into probabilities, as scikit-learn does."""
        z = scores[:, self._columns[head]]
        if z.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.column_stack([1.0 - p, p])
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def _explain(
        self, features: list[int], pushes: list[float], parsed: Parsed, owners: dict[int, list[str]], key: int
    ) -> list[str]:
        """Name the words of the message that pushed most toward its category (weight x TF-IDF value).

        `features` and their positive `pushes` toward the chosen category come strongest first: the
        message's first `EXPLAINED_FEATURES`, the rest barely move the ranking. A word or pair owns its
        whole push, a stem's is shared by the message's words with that stem (`owners`, by `key` plus
        the stem's column), a cue table's by the cues found in that table.
        """
        stem_start, cue_start = self._offsets[1], self._offsets[2]
        names = self._names
        credit: dict[str, float] = {}
        get = credit.get
        for push, feature in zip(pushes, features, strict=True):
            if feature < stem_start:
                # A word or pair owns its whole push (push / 1 is push: the same sum as shared credit).
                name = names[feature]
                credit[name] = get(name, 0.0) + push
                continue
            if feature < cue_start:
                owners_of = owners.get(key + feature, ())
            else:
                table = self._cue_tables[feature]
                owners_of = [c.text for c in parsed.cues if c.table == table]
            if owners_of:
                share = push / len(owners_of)
                for owner in owners_of:
                    credit[owner] = get(owner, 0.0) + share
        return _distinct_terms(credit)


def terms_by_column(vocabulary: dict[str, int]) -> list[str]:
    """Return a block's terms in the order of their columns (scikit-learn's `get_feature_names_out`)."""
    terms = [""] * len(vocabulary)
    for term, col in vocabulary.items():
        terms[col] = term
    return terms


def _distinct_terms(credit: dict[str, float]) -> list[str]:
    """Return the terms of most credit first, skipping one whose words hold or are held by a chosen one's."""
    chosen: list[str] = []
    # The words of the chosen terms; and the chosen terms of several words, as sets of words.
    covered: set[str] = set()
    chosen_groups: list[set[str]] = []
    # Most credit first, ties in alphabetical order (a stable sort keeps the first sort's order on ties).
    ranked = sorted(credit)
    ranked.sort(key=credit.__getitem__, reverse=True)
    for term in ranked:
        # "pas recu" and "recu" tell the same thing once. Terms are words joined by single spaces: a
        # one-word term meets a chosen term exactly when that term holds the word, and a term of
        # several words meets a chosen one-word term exactly when it holds that word.
        if " " not in term:
            if term in covered:
                continue
            covered.add(term)
        else:
            words = set(term.split())
            if not words.isdisjoint(chosen) or (
                chosen_groups and any(words <= c or c <= words for c in chosen_groups)
            ):
                continue
            covered |= words
            chosen_groups.append(words)
        chosen.append(term)
        if len(chosen) == EXPLANATION_SIZE:
            break
    return chosen
