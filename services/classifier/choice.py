"""Choose the model a classifier runs: the trained one (default), the lexicon baseline, or an artefact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from switchboard.contract import Classification

Classify = Callable[..., Classification]

LEARNED = "learned"
LEXICON = "lexicon"


def load_classifier(spec: str, cache: str | None = None) -> tuple[Classify, str]:
    """Return the classify function and its model version for `learned`, `lexicon` or a model directory.

    `learned` is trained from the packaged corpus on first use and cached (`cache`, else the user's
    cache directory), so every replica built from the same code runs the same model.
    """
    if spec == LEXICON:
        from classifier import model

        return model.classify, model.MODEL_VERSION
    if spec == LEARNED:
        from classifier.artefact import default_model

        trained = default_model(Path(cache) if cache else None)
    else:
        from classifier.artefact import load

        trained = load(Path(spec))
    return trained.classify, trained.version
