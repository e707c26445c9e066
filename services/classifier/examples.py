"""Read labelled example lines, hash them, split them, and shape inbound messages for the learned model."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from switchboard.contract import (
    MARKETING_INTENTS,
    SUPPORT_INTENTS,
    Category,
    Channel,
    Intent,
    Language,
    Sentiment,
    Visibility,
    default_visibility,
)

CORPUS = Path(__file__).resolve().parent / "corpus"
INTENTS_OF: dict[str, tuple[str, ...]] = {"support": SUPPORT_INTENTS, "marketing": MARKETING_INTENTS}


# The labels a category-only line (an agent's correction) leaves out: all of them, or none.
FINE_LABELS = ("intent", "is_complaint", "sentiment")


class Example(BaseModel):
    """One labelled message: the text, its channel, and the decision a person made about it.

    A line with only a category (an agent's correction knows no more) is category-only: it teaches and
    scores the category head alone.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    text: str = Field(min_length=1)
    channel: Channel = Channel.CHAT
    language: Language
    category: Category
    intent: Intent | None = None
    is_complaint: bool | None = None
    sentiment: Sentiment | None = None
    # How many times the line counts in training: a contact centre's own labelled messages count more than
    # written lines (`switchboard train --own`). Held out and scored once, whatever its weight.
    weight: int = Field(default=1, ge=1, le=100)

    @property
    def category_only(self) -> bool:
        """Tell whether the line labels the category alone."""
        return self.intent is None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse a partly labelled line, an intent outside its category, a complaint that is not support."""
        missing = [name for name in FINE_LABELS if getattr(self, name) is None]
        if missing and len(missing) < len(FINE_LABELS):
            raise ValueError(
                f"{', '.join(missing)} missing: label intent, is_complaint and sentiment, or none of them "
                "(a category-only line)"
            )
        if self.intent is not None and self.intent not in INTENTS_OF[self.category]:
            raise ValueError(f"intent {self.intent!r} is not a {self.category} intent")
        if self.is_complaint and self.category != "support":
            raise ValueError("a complaint must be a support case")
        return self


@dataclass(frozen=True, slots=True)
class Inbound:
    """What the classifier is told about one message: the arguments of `classify`."""

    text: str
    channel: str
    visibility: str
    followers: int | None = None
    language_hint: str | None = None

    @classmethod
    def of(cls, example: Example) -> Inbound:
        """Shape a labelled example as the service would see it, without its language as a hint."""
        return cls(example.text, example.channel.value, default_visibility(example.channel))


class GivenMessage(BaseModel):
    """A message a person or a file hands the classifier (`switchboard classify`, `POST /v1/classify`): its
    text and what its channel would tell."""

    text: str = Field(min_length=1)
    channel: Channel = Channel.CHAT
    visibility: Visibility | None = Field(default=None, description="default: the channel's usual one")
    followers: int | None = Field(
        default=None, ge=0, description="the author's reach, when the channel gives it"
    )
    language: Language | None = Field(default=None, description="the language the channel declares, if any")

    def inbound(self) -> Inbound:
        """Shape the message as the service hands a received one to the model."""
        visibility = self.visibility or default_visibility(self.channel)
        return Inbound(self.text, self.channel.value, visibility, self.followers, self.language)


def corpus_files(directory: Path = CORPUS) -> list[Path]:
    """Return the labelled files of a corpus directory, in name order so the data hash is stable."""
    return sorted(directory.glob("*.jsonl"))


def read_examples(paths: Iterable[Path | str]) -> list[Example]:
    """Read JSON-lines files (or directories of them) into examples; refuse the first bad line by place."""
    examples: list[Example] = []
    for path in map(Path, paths):
        files = corpus_files(path) if path.is_dir() else [path]
        if not files:
            raise ValueError(f"{path}: no *.jsonl files")
        for file in files:
            with file.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    try:
                        examples.append(Example.model_validate_json(line))
                    except ValidationError as exc:
                        first = exc.errors()[0]
                        where = ".".join(map(str, first["loc"])) or "line"
                        raise ValueError(f"{file}:{number}: {where}: {first['msg']}") from None
    return examples


def weighted(examples: Iterable[Example], weight: int) -> list[Example]:
    """Return the examples counted `weight` times each in training; refuse a weight outside 1-100."""
    try:
        return [Example.model_validate({**e.model_dump(), "weight": weight}) for e in examples]
    except ValidationError as exc:
        raise ValueError(f"weight {weight}: {exc.errors()[0]['msg']}") from None


def data_hash(examples: Iterable[Example]) -> str:
    """Hash the examples in order, field by field, so the same data always names the same model."""
    digest = hashlib.sha256()
    for example in examples:
        # A line of weight 1 hashes as it did before lines had a weight: the same data, the same model name.
        dumped = example.model_dump(mode="json", exclude={"weight"} if example.weight == 1 else None)
        line = json.dumps(dumped, sort_keys=True, ensure_ascii=False)
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def split(examples: Sequence[Example], seed: int, share: float) -> tuple[list[Example], list[Example]]:
    """Hold out about `share` of every intent and language, drawn with `seed`; return (rest, held out)."""
    strata: dict[tuple[str, str], list[int]] = {}
    for i, example in enumerate(examples):
        # Category-only lines are drawn per category, as the others are per intent.
        kind = example.intent if example.intent is not None else f"({example.category})"
        strata.setdefault((kind, example.language), []).append(i)
    rng = random.Random(seed)
    held: set[int] = set()
    for key in sorted(strata):
        members = strata[key]
        rng.shuffle(members)
        # A stratum of one stays in training: it cannot be both learned and tested.
        take = round(len(members) * share) if len(members) > 1 else 0
        held.update(members[:take])
    rest = [e for i, e in enumerate(examples) if i not in held]
    return rest, [e for i, e in enumerate(examples) if i in held]


def counts(examples: Iterable[Example]) -> dict[str, dict[str, int]]:
    """Count the examples per label of every head (those that carry it), per language, and by weight."""
    tally: dict[str, Counter[str]] = {
        k: Counter() for k in ("category", "intent", "is_complaint", "sentiment", "language")
    }
    weights: Counter[str] = Counter()
    for example in examples:
        weights[str(example.weight)] += 1
        for key, counter in tally.items():
            value = getattr(example, key)
            if value is not None:
                counter[str(value).lower()] += 1
    counted = {key: dict(sorted(counter.items())) for key, counter in tally.items()}
    # Lines by weight, only when some count more than once (`--own`): a model's meta.json and `GET
    # /v1/model` tell how many of its lines were a contact centre's own.
    if set(weights) - {"1"}:
        counted["weight"] = dict(sorted(weights.items(), key=lambda item: int(item[0])))
    return counted
