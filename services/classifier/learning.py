"""Train and run the learned classifier: TF-IDF words and characters plus lexicon cues, logistic heads."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain, pairwise

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from classifier import cues as cue_lexicon
from classifier import evaluation
from classifier.examples import INTENTS_OF, Example, Inbound, counts, data_hash, split
from classifier.model import normalise
from switchboard.contract import Classification

FAMILY = "tfidf-lr"
HEADS = ("category", "intent", "is_complaint", "sentiment")
# Chosen by 5-fold cross-validation on the project corpus (EN+FR, ~1.8k lines), never on outside data.
RECIPE: dict = {
    "word": {"analyzer": "word", "ngram_range": [1, 2], "min_df": 1, "token_pattern": r"\S+"},
    "char": {"analyzer": "char_wb", "ngram_range": [2, 5], "min_df": 2},
    "tfidf": {"sublinear_tf": True, "lowercase": False},
    # A table's summed weight t becomes CUE_WEIGHT * tanh(t / CUE_SCALE): bounded like a TF-IDF value.
    "cue_scale": 3.0,
    "cue_weight": 0.5,
    # newton-cg draws nothing at random, so the same data gives the same weights on any machine.
    # Balanced class weights lift the minority labels (complaints); C=20 gave the best-calibrated confidence.
    "logistic": {"C": 20.0, "class_weight": "balanced", "solver": "newton-cg", "max_iter": 1000},
    "holdout": 0.2,
}
EXPLANATION_SIZE = 5
# Only the strongest features are turned back into words; the rest barely move the ranking.
EXPLAINED_FEATURES = 40
TOKEN_CACHE = 50_000


def recipe_hash() -> str:
    """Hash the recipe, so a model is never run by code that would build its features differently."""
    return hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()


def _vectorizer(block: str) -> TfidfVectorizer:
    """Build one unfitted TF-IDF block of the recipe."""
    params = {**RECIPE[block], **RECIPE["tfidf"]}
    params["ngram_range"] = tuple(params["ngram_range"])
    return TfidfVectorizer(**params, dtype=np.float64)


def _cue_row(found: Iterable[cue_lexicon.Cue]) -> np.ndarray:
    """Turn the lexicon cues of a message into bounded feature values, one per table."""
    totals = np.asarray(cue_lexicon.scores(found))
    return RECIPE["cue_weight"] * np.tanh(totals / RECIPE["cue_scale"])


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A message ready for the heads: its tokens and the lexicon cues found in them."""

    norm: str
    tokens: list[str]
    cues: list[cue_lexicon.Cue]


def _parse(text: str) -> _Parsed:
    """Normalise a text as the lexicon does and find its cues."""
    norm = normalise(text)
    tokens = norm.split()
    return _Parsed(norm, tokens, cue_lexicon.find(tokens))


def _matrix(vectorizers: dict[str, TfidfVectorizer], parsed: Sequence[_Parsed]) -> sp.csr_matrix:
    """Build the feature matrix of parsed messages with scikit-learn's own transforms."""
    norms = [p.norm for p in parsed]
    return sp.hstack(
        [
            vectorizers["word"].transform(norms),
            vectorizers["char"].transform(norms),
            sp.csr_matrix(np.vstack([_cue_row(p.cues) for p in parsed])),
        ],
        format="csr",
    )


@dataclass(eq=False)
class TrainedModel:
    """Fitted TF-IDF blocks and one logistic head per decision, with what names and describes them."""

    vectorizers: dict[str, TfidfVectorizer]
    heads: dict[str, LogisticRegression]
    data_hash: str
    seed: int
    counts: dict[str, dict[str, int]]
    evaluation: dict | None = None
    _vocab: list[dict[str, int]] = field(init=False, repr=False)
    _idf: list[np.ndarray] = field(init=False, repr=False)
    _offsets: list[int] = field(init=False, repr=False)
    _weights: np.ndarray = field(init=False, repr=False)
    _bias: np.ndarray = field(init=False, repr=False)
    _columns: dict[str, slice] = field(init=False, repr=False)
    _names: np.ndarray = field(init=False, repr=False)
    _char_grams: Callable[[str], list[str]] = field(init=False, repr=False)
    _token_columns: Callable[[str], tuple[tuple[int, int], ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        blocks = [self.vectorizers["word"], self.vectorizers["char"]]
        self._vocab = [v.vocabulary_ for v in blocks]
        self._idf = [v.idf_ for v in blocks]
        sizes = [len(v) for v in self._vocab]
        self._offsets = [0, sizes[0], sizes[0] + sizes[1]]
        # On one word the character analyser yields that word's n-grams, as inside a whole message.
        self._char_grams = self.vectorizers["char"].build_analyzer()
        # Words repeat from message to message, so their n-gram columns are worth remembering.
        self._token_columns = lru_cache(maxsize=TOKEN_CACHE)(self._char_columns)
        self._names = np.concatenate(
            [*(v.get_feature_names_out() for v in blocks), np.array([f"cue:{t}" for t in cue_lexicon.TABLES])]
        )
        # One matrix for every head's weights (features x outputs): one product scores all decisions.
        columns, start = {}, 0
        for head in HEADS:
            n = self.heads[head].coef_.shape[0]
            columns[head] = slice(start, start + n)
            start += n
        self._columns = columns
        self._weights = np.ascontiguousarray(np.vstack([self.heads[h].coef_ for h in HEADS]).T)
        self._bias = np.concatenate([self.heads[h].intercept_ for h in HEADS])

    @property
    def version(self) -> str:
        """Name the model by its family, its training data and its seed."""
        return f"{FAMILY}-{self.data_hash[:8]}-s{self.seed}"

    def labels(self) -> dict[str, list]:
        """Return the labels each head can give, in the order of its outputs."""
        return {head: self.heads[head].classes_.tolist() for head in HEADS}

    def fingerprint(self) -> str:
        """Hash every fitted number and vocabulary, so two trainings can be compared byte for byte."""
        digest = hashlib.sha256()
        for block in ("word", "char"):
            vectorizer = self.vectorizers[block]
            digest.update(json.dumps(sorted(vectorizer.vocabulary_.items())).encode())
            digest.update(vectorizer.idf_.tobytes())
        for head in HEADS:
            digest.update(self.heads[head].coef_.tobytes())
            digest.update(self.heads[head].intercept_.tobytes())
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
        parsed = _parse(text)
        idx, vals = self._row(parsed)
        scores = vals @ self._weights[idx] + self._bias
        inbound = Inbound(text, channel, visibility, followers, language_hint)
        return self._decide(scores, idx, vals, parsed, inbound)

    def classify_many(self, items: Sequence[Inbound]) -> list[Classification]:
        """Classify many messages with one sparse product: the batch path, same answers as `classify`."""
        if not items:
            return []
        parsed = [_parse(item.text) for item in items]
        matrix = _matrix(self.vectorizers, parsed)
        scores = matrix @ self._weights + self._bias
        results = []
        for i, (item, message) in enumerate(zip(items, parsed, strict=True)):
            row = slice(matrix.indptr[i], matrix.indptr[i + 1])
            results.append(self._decide(scores[i], matrix.indices[row], matrix.data[row], message, item))
        return results

    def _row(self, parsed: _Parsed) -> tuple[np.ndarray, np.ndarray]:
        """Build one message's sparse features by hand: scikit-learn's per-call checks cost more than this."""
        tokens = parsed.tokens
        word_vocab = self._vocab[0]
        words: dict[int, int] = {}
        for gram in chain(tokens, (f"{a} {b}" for a, b in pairwise(tokens))):
            col = word_vocab.get(gram)
            if col is not None:
                words[col] = words.get(col, 0) + 1
        chars: dict[int, int] = {}
        for token, n in Counter(tokens).items():
            for col, k in self._token_columns(token):
                chars[col] = chars.get(col, 0) + k * n
        parts_idx, parts_val = [], []
        for block, counted in enumerate((words, chars)):
            if not counted:
                continue
            cols = np.fromiter(counted.keys(), dtype=np.intp, count=len(counted))
            tf = np.fromiter(counted.values(), dtype=np.float64, count=len(counted))
            values = (1.0 + np.log(tf)) * self._idf[block][cols]
            parts_idx.append(cols + self._offsets[block])
            parts_val.append(values / np.sqrt(values @ values))
        cue_values = _cue_row(parsed.cues)
        nonzero = np.flatnonzero(cue_values)
        parts_idx.append(nonzero + self._offsets[2])
        parts_val.append(cue_values[nonzero])
        return np.concatenate(parts_idx), np.concatenate(parts_val)

    def _char_columns(self, token: str) -> tuple[tuple[int, int], ...]:
        """Return the character block's columns of one word and how often each occurs in it."""
        vocab = self._vocab[1]
        found = Counter(vocab[g] for g in self._char_grams(token) if g in vocab)
        return tuple(found.items())

    def _probabilities(self, scores: np.ndarray, head: str) -> np.ndarray:
        """Turn a head's raw scores into probabilities over its labels, as scikit-learn does."""
        z = scores[self._columns[head]]
        if z.shape[0] == 1:
            p = 1.0 / (1.0 + np.exp(-z[0]))
            return np.array([1.0 - p, p])
        e = np.exp(z - z.max())
        return e / e.sum()

    def _decide(
        self, scores: np.ndarray, idx: np.ndarray, vals: np.ndarray, parsed: _Parsed, inbound: Inbound
    ) -> Classification:
        """Read every head, keeping decisions consistent: an intent of the category, complaints in support."""
        p = {head: self._probabilities(scores, head) for head in HEADS}
        classes = {head: self.heads[head].classes_ for head in HEADS}
        best = int(np.argmax(p["category"]))
        category = str(classes["category"][best])
        allowed = [i for i, label in enumerate(classes["intent"]) if label in INTENTS_OF[category]]
        intent = str(classes["intent"][max(allowed, key=lambda i: p["intent"][i])])
        complaint = dict(zip(classes["is_complaint"].tolist(), p["is_complaint"], strict=True))
        is_complaint = category == "support" and complaint.get(True, 0.0) >= 0.5
        tone = dict(zip(classes["sentiment"].tolist(), p["sentiment"], strict=True))
        sentiment = str(classes["sentiment"][int(np.argmax(p["sentiment"]))])
        score = float(np.clip(tone.get("positive", 0.0) - tone.get("negative", 0.0), -1.0, 1.0))
        return Classification(
            category=category,
            intent=intent,
            is_complaint=is_complaint,
            language=cue_lexicon.language(parsed.tokens, parsed.cues, inbound.language_hint),
            sentiment=sentiment,
            sentiment_score=round(score, 4),
            priority=cue_lexicon.priority(
                category,
                intent,
                is_complaint,
                cues=parsed.cues,
                sentiment_score=score,
                public=inbound.visibility == "public",
                followers=inbound.followers,
            ),
            reply_privately=cue_lexicon.private(parsed.cues),
            confidence=round(float(p["category"][best]), 4),
            model_version=self.version,
            explanation=self._explain(best, idx, vals, parsed),
        )

    def _explain(self, best: int, idx: np.ndarray, vals: np.ndarray, parsed: _Parsed) -> list[str]:
        """Name the words of the message that pushed most toward its category (weight x TF-IDF value)."""
        # The category head has one output: positive scores favour its second label.
        toward = 1.0 if best == 1 else -1.0
        pushes = toward * self._weights[idx, self._columns["category"].start] * vals
        order = np.argsort(-pushes, kind="stable")[:EXPLAINED_FEATURES]
        tokens = dict.fromkeys(parsed.tokens)
        credit: dict[str, float] = {}
        for i in order:
            push = float(pushes[i])
            if push <= 0:
                break
            feature = int(idx[i])
            name = str(self._names[feature])
            if feature < self._offsets[1]:
                owners = [name]
            elif feature < self._offsets[2]:
                owners = [t for t in tokens if name in f" {t} "]
            else:
                table = name.removeprefix("cue:")
                owners = [c.text for c in parsed.cues if c.table == table]
            for owner in owners:
                credit[owner] = credit.get(owner, 0.0) + push / len(owners)
        chosen: list[str] = []
        chosen_words: list[set[str]] = []
        for term in sorted(credit, key=lambda t: (-credit[t], t)):
            words = set(term.split())
            # "pas recu" and "recu" tell the same thing once.
            if not any(words <= c or c <= words for c in chosen_words):
                chosen_words.append(words)
                chosen.append(term)
            if len(chosen) == EXPLANATION_SIZE:
                break
        return chosen


def _fit(examples: Sequence[Example], seed: int) -> TrainedModel:
    """Fit the TF-IDF blocks and the four heads on examples, on one thread so sums add up the same way."""
    parsed = [_parse(e.text) for e in examples]
    norms = [p.norm for p in parsed]
    with threadpool_limits(limits=1):
        vectorizers = {block: _vectorizer(block).fit(norms) for block in ("word", "char")}
        matrix = _matrix(vectorizers, parsed)
        heads = {}
        for head in HEADS:
            y = np.array([getattr(e, head) for e in examples])
            if len(set(y.tolist())) < 2:
                raise ValueError(f"the examples give only one {head} label; a head needs two or more")
            heads[head] = LogisticRegression(**RECIPE["logistic"]).fit(matrix, y)
    return TrainedModel(vectorizers, heads, data_hash(examples), seed, counts(examples))


def train(examples: Iterable[Example], seed: int = 0, *, holdout: float | None = None) -> TrainedModel:
    """Train on every example; first score a twin trained without a held-out share drawn with `seed`.

    The fit itself draws nothing at random: the seed picks the held-out split whose scores the model
    carries, and names the model. `holdout=0` skips that twin and its scores.
    """
    examples = list(examples)
    share = RECIPE["holdout"] if holdout is None else holdout
    model = _fit(examples, seed)
    if share:
        rest, held = split(examples, seed, share)
        model.evaluation = evaluation.summary(evaluation.evaluate(_fit(rest, seed), held))
    return model
