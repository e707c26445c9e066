"""Save and load a trained model as a versioned directory, and train the packaged one on first use.

An artefact is a directory with `model.pkl` (the fitted scikit-learn objects) and `meta.json` (what
names, checks and describes them). Unpickling runs code chosen by whoever wrote the file: load only
artefacts you built or got from a trusted source. The checks below catch corruption, a mismatching
scikit-learn or lexicon, and careless edits; they are not a defence against a forged artefact.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import sklearn

from classifier import cues
from classifier.examples import CORPUS, data_hash, read_examples
from classifier.learning import RECIPE, TrainedModel, recipe_hash, train

FORMAT = 1
MODEL_FILE = "model.pkl"
META_FILE = "meta.json"


class ArtefactError(ValueError):
    """A model artefact that is damaged, or was built for other code than this."""


def _sha256(data: bytes) -> str:
    """Hash bytes."""
    return hashlib.sha256(data).hexdigest()


def _label(value: object) -> str:
    """Spell a label for JSON as reports do ("true", not True)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _identity(model: TrainedModel) -> dict:
    """What names a model, stored both inside the pickle and in meta.json so each checks the other."""
    return {
        "version": model.version,
        "data_hash": model.data_hash,
        "seed": model.seed,
        "weights_sha256": model.fingerprint(),
    }


def meta(model: TrainedModel, blob: bytes) -> dict:
    """Describe a model and its pickled bytes."""
    return {
        "format": FORMAT,
        **_identity(model),
        "model_sha256": _sha256(blob),
        "sklearn": sklearn.__version__,
        "recipe": RECIPE,
        "recipe_sha256": recipe_hash(),
        "lexicon_sha256": cues.fingerprint(),
        "labels": {head: [_label(v) for v in labels] for head, labels in model.labels().items()},
        "counts": model.counts,
        "evaluation": model.evaluation,
    }


def save(model: TrainedModel, directory: Path | str) -> Path:
    """Write a model to a directory (created if need be), replacing any artefact there."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "vectorizers": model.vectorizers,
        "heads": model.heads,
        "counts": model.counts,
        "evaluation": model.evaluation,
        "identity": _identity(model),
    }
    blob = pickle.dumps(state, protocol=5)
    text = json.dumps(meta(model, blob), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    # The pickle lands before the metadata that vouches for it: a crash leaves no valid-looking pair.
    for name, data in ((MODEL_FILE, blob), (META_FILE, text.encode())):
        partial = directory / f".{name}.partial"
        partial.write_bytes(data)
        partial.replace(directory / name)
    return directory


def load(directory: Path | str) -> TrainedModel:
    """Read a model artefact, refusing one that is damaged or was built for another scikit-learn or recipe."""
    directory = Path(directory)
    try:
        info = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        blob = (directory / MODEL_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise ArtefactError(f"{directory}: not a model artefact ({exc.filename} is missing)") from None
    except (ValueError, OSError) as exc:
        raise ArtefactError(f"{directory}: unreadable {META_FILE}: {exc}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ArtefactError(f"{directory}: {META_FILE} is not format {FORMAT}")
    expected = {
        "sklearn": (sklearn.__version__, "scikit-learn"),
        "recipe_sha256": (recipe_hash(), "feature recipe"),
        "lexicon_sha256": (cues.fingerprint(), "lexicon tables"),
    }
    for key, (current, what) in expected.items():
        if info.get(key) != current:
            raise ArtefactError(
                f"{directory}: built with another {what} ({info.get(key)!r}, this is {current!r}); "
                "retrain it with `switchboard train`"
            )
    if info.get("model_sha256") != _sha256(blob):
        raise ArtefactError(f"{directory}: {MODEL_FILE} does not match {META_FILE} (damaged or edited)")
    try:
        state = pickle.loads(blob)  # trusted artefacts only: see the module docstring
        identity = state["identity"]
        model = TrainedModel(
            state["vectorizers"],
            state["heads"],
            identity["data_hash"],
            identity["seed"],
            state["counts"],
            state["evaluation"],
        )
    except Exception as exc:
        raise ArtefactError(f"{directory}: cannot rebuild the model from {MODEL_FILE}: {exc}") from None
    found = _identity(model)
    if any(info.get(key) != value for key, value in found.items()) or found != identity:
        raise ArtefactError(f"{directory}: {META_FILE} does not describe the model in {MODEL_FILE}")
    return model


def default_cache() -> Path:
    """Return where trained models are cached: $XDG_CACHE_HOME/switchboard/models, else ~/.cache/…."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "switchboard" / "models"


def default_model(cache: Path | str | None = None, *, seed: int = 0, corpus: Path = CORPUS) -> TrainedModel:
    """Return the model trained on the packaged corpus, training and caching it on first use.

    The cache entry is named by the data hash, seed, recipe, lexicon and scikit-learn version, so a
    changed corpus or library trains a new model and never reuses a stale one.
    """
    examples = read_examples([corpus])
    key = "-".join(
        (
            data_hash(examples)[:16],
            f"s{seed}",
            f"r{recipe_hash()[:8]}",
            f"l{cues.fingerprint()[:8]}",
            f"sklearn{sklearn.__version__}",
        )
    )
    directory = Path(cache) if cache is not None else default_cache()
    target = directory / key
    if target.exists():
        try:
            return load(target)
        except ArtefactError:
            shutil.rmtree(target, ignore_errors=True)
    # No held-out twin here: a service starting should not fit the model twice; `switchboard train`
    # scores one.
    model = train(examples, seed=seed, holdout=0)
    directory.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: replicas starting together never read half an artefact.
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=directory))
    save(model, staging)
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return model
