"""Choose the model a classifier runs: the trained one (default), the lexicon baseline, or an artefact."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from classifier import model as baseline
from classifier.examples import Inbound
from switchboard.contract import Classification

if TYPE_CHECKING:
    from classifier.learning import TrainedModel

Classify = Callable[..., Classification]

LEARNED = "learned"
LEXICON = "lexicon"
# The roles a model plays in the service: the live one decides, a shadow one only decides for comparison.
LIVE = "live"
SHADOW = "shadow"


class BatchModel(Protocol):
    """A model the service runs: it names its version and classifies a batch of messages at once."""

    @property
    def version(self) -> str: ...

    def classify_many(self, items: Sequence[Inbound]) -> list[Classification]: ...


class Lexicon:
    """The lexicon baseline behind the batch interface, so the service and the evaluation run both alike."""

    version = baseline.MODEL_VERSION

    def classify_many(self, items: Sequence[Inbound]) -> list[Classification]:
        """Classify each message with the lexicon, one at a time: it has no batch path."""
        return [
            baseline.classify(
                i.text,
                channel=i.channel,
                visibility=i.visibility,
                followers=i.followers,
                language_hint=i.language_hint,
            )
            for i in items
        ]


def support_shift(prior: float) -> float:
    """Return the log-odds that move a model trained on balanced classes to traffic with `prior` support."""
    if not 0.0 < prior < 1.0:
        raise ValueError(f"the support prior must be between 0 and 1, not {prior}")
    return math.log(prior / (1.0 - prior))


def load_model(spec: str, cache: str | None = None, support_prior: float = 0.5) -> BatchModel:
    """Return the model named by `learned`, `lexicon` or a model directory.

    `learned` is trained from the packaged corpus on first use and cached (`cache`, else the user's
    cache directory), so every replica built from the same code runs the same model. A directory that
    is damaged or was built for other code raises `artefact.ArtefactError`. `support_prior` is the share
    of support expected in the traffic; the learned model's category odds are moved to it (the lexicon
    has no such odds and ignores it).
    """
    return Lexicon() if spec == LEXICON else _trained(spec, cache, support_prior)


def load_classifier(spec: str, cache: str | None = None, support_prior: float = 0.5) -> tuple[Classify, str]:
    """Return the one-message classify function and the version of `learned`, `lexicon` or a directory."""
    if spec == LEXICON:
        return baseline.classify, baseline.MODEL_VERSION
    trained = _trained(spec, cache, support_prior)
    return trained.classify, trained.version


def _trained(spec: str, cache: str | None, support_prior: float) -> TrainedModel:
    """Load the packaged learned model (`learned`) or the artefact in a directory, moved to the prior."""
    from classifier.artefact import default_model, load

    shift = support_shift(support_prior)
    trained = default_model(Path(cache) if cache else None) if spec == LEARNED else load(Path(spec))
    trained.support_shift = shift
    return trained
