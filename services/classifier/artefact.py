"""Save and load a trained model as a versioned directory, and train the packaged one on first use.

An artefact is a directory with `model.npz` (the model's fitted numbers: vocabularies, IDF weights,
coefficients and labels, as plain arrays) and `meta.json` (what names, checks and describes them). Nothing
in it is code: it is read with `numpy.load(allow_pickle=False)` and JSON, without scikit-learn, so loading
an artefact runs nothing its author chose, and a model outlives an upgrade of the library that trained
it. The checks below catch corruption, a mismatching feature recipe or lexicon, and careless edits. A
recipe that differs only in the rules applied after the heads score is not a mismatch: the model is
served with this code's rules (`_check_made_for_this_code`).
Format 1 (a pickle of scikit-learn objects, before 2026-12-07) is refused; `upgrade` rewrites it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import numpy as np

from classifier import cues
from classifier.examples import CORPUS, data_hash, read_examples
from classifier.learning import (
    BLOCKS,
    HEADS,
    RECIPE,
    Head,
    TrainedModel,
    fitted_alike,
    model_version,
    recipe_hash,
    terms_by_column,
)

log = logging.getLogger(__name__)

FORMAT = 2
MODEL_FILE = "model.npz"
META_FILE = "meta.json"
# Where `install` keeps the model it replaced, inside the served directory.
PREVIOUS = "previous"
# A block's terms are words and word pairs (`str.split` tokens joined by one space): never a newline.
TERM_SEPARATOR = "\n"


class ArtefactError(ValueError):
    """A model artefact that is damaged, or was built for other code than this."""


def _sha256(data: bytes) -> str:
    """Hash bytes."""
    return hashlib.sha256(data).hexdigest()


def _label(value: object) -> str:
    """Spell a label for JSON as reports do ("true", not True)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _identity(model: TrainedModel) -> dict:
    """What names a model, stored both inside model.npz and in meta.json so each checks the other."""
    return {
        "version": model.version,
        "data_hash": model.data_hash,
        "seed": model.seed,
        "weights_sha256": model.fingerprint(),
    }


def _text(value: str) -> np.ndarray:
    """Store text as an array of its UTF-8 bytes (an array of strings would be an array of objects)."""
    return np.frombuffer(value.encode("utf-8"), dtype=np.uint8)


def _read_text(array: np.ndarray) -> str:
    """Read text stored by `_text`."""
    if array.dtype != np.uint8 or array.ndim != 1:
        raise ValueError(f"text stored as {array.dtype} of {array.ndim} dimensions, not bytes")
    return array.tobytes().decode("utf-8")


def meta(model: TrainedModel, blob: bytes, identity: dict | None = None) -> dict:
    """Describe a model and its stored bytes (`identity`: the model's, when already worked out)."""
    return {
        "format": FORMAT,
        **(identity or _identity(model)),
        "model_sha256": _sha256(blob),
        "recipe": RECIPE,
        "recipe_sha256": recipe_hash(),
        "lexicon_sha256": cues.fingerprint(),
        "labels": {head: [_label(v) for v in labels] for head, labels in model.labels().items()},
        "counts": model.counts,
        "evaluation": model.evaluation,
    }


def dumps(model: TrainedModel, identity: dict | None = None) -> bytes:
    """Return a model's fitted numbers as the bytes of an .npz archive (`identity`: as for `meta`).

    Uncompressed (it loads faster) and dated 1980-01-01 as `numpy.savez` does not: the same model gives
    the same bytes, so two trainings can be compared by their files' checksums.
    """
    state = {
        # Labels keep their type (the complaint head's are booleans), so they are stored as JSON.
        "labels": model.labels(),
        "counts": model.counts,
        "evaluation": model.evaluation,
        "identity": identity or _identity(model),
    }
    arrays = {"state": _text(json.dumps(state, sort_keys=True))}
    for block in BLOCKS:
        arrays[f"terms.{block}"] = _text(TERM_SEPARATOR.join(terms_by_column(model.vocabularies[block])))
        arrays[f"idf.{block}"] = np.asarray(model.idf[block], dtype=np.float64)
    for head in HEADS:
        arrays[f"coef.{head}"] = np.asarray(model.heads[head].coef, dtype=np.float64)
        arrays[f"intercept.{head}"] = np.asarray(model.heads[head].intercept, dtype=np.float64)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(member, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, array, allow_pickle=False)
    return buffer.getvalue()


def loads(blob: bytes) -> tuple[TrainedModel, dict]:
    """Rebuild a model from `dumps`'s bytes; return it with the identity stored beside it.

    Raises ValueError (or KeyError, zipfile.BadZipFile) on bytes that are not such an archive.
    """
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    # numpy hands back a member that is not an array file as its raw bytes.
    strays = sorted(name for name, value in arrays.items() if not isinstance(value, np.ndarray))
    if strays:
        raise ValueError(f"{', '.join(strays)}: not arrays")
    state = json.loads(_read_text(arrays["state"]))
    vocabularies = {}
    for block in BLOCKS:
        text = _read_text(arrays[f"terms.{block}"])
        terms = text.split(TERM_SEPARATOR) if text else []
        vocabularies[block] = {term: col for col, term in enumerate(terms)}
        if len(vocabularies[block]) != len(terms) or len(terms) != len(arrays[f"idf.{block}"]):
            raise ValueError(f"the {block} block's terms and IDF weights do not match")
    heads = {
        head: Head(state["labels"][head], arrays[f"coef.{head}"], arrays[f"intercept.{head}"])
        for head in HEADS
    }
    model = TrainedModel(
        vocabularies,
        {block: arrays[f"idf.{block}"] for block in BLOCKS},
        heads,
        state["identity"]["data_hash"],
        state["identity"]["seed"],
        state["counts"],
        state["evaluation"],
    )
    return model, state["identity"]


def save(model: TrainedModel, directory: Path | str) -> Path:
    """Write a model to a directory (created if need be), replacing any artefact there."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Hashing every fitted number (the fingerprint) is the costly part: once for both files.
    identity = _identity(model)
    blob = dumps(model, identity)
    text = json.dumps(meta(model, blob, identity), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    _write_pair(directory, blob, text.encode())
    return directory


def _write_pair(directory: Path, blob: bytes, meta_bytes: bytes) -> None:
    """Write a model file and its meta.json into a directory, each replaced in one rename."""
    directory.mkdir(parents=True, exist_ok=True)
    # The model lands before the metadata that vouches for it: a crash leaves no valid-looking pair, and
    # the service's watcher waits for a new meta.json.
    for name, data in ((MODEL_FILE, blob), (META_FILE, meta_bytes)):
        partial = directory / f".{name}.partial"
        partial.write_bytes(data)
        partial.replace(directory / name)
    # A format 1 artefact's pickle, replaced by this one, would only mislead.
    (directory / "model.pkl").unlink(missing_ok=True)


def install(source: Path | str, directory: Path | str) -> tuple[TrainedModel, str | None]:
    """Put the model in `source` in force in the served `directory`; keep the one it replaces.

    The source is checked first as the service would load it, so a model it would refuse never lands.
    The replaced model goes to `directory/previous` (installing that one back swaps them). Return the
    model installed and the version it replaced (None if the directory held no model that loads).
    """
    source, directory = Path(source), Path(directory)
    if directory.exists() and source.resolve() == directory.resolve():
        raise ArtefactError(f"{source}: this is the directory it would be installed into")
    # The bytes checked are the bytes written, held in memory: installing `directory/previous` back
    # overwrites it below.
    model, *incoming = _load(source)
    try:
        old, *kept = _load(directory)
    except ArtefactError:
        replaced = None
    else:
        replaced = old.version
        _write_pair(directory / PREVIOUS, *kept)
    _write_pair(directory, *incoming)
    return model, replaced


def load(directory: Path | str) -> TrainedModel:
    """Read a model artefact, refusing one that is damaged or was built for another recipe or lexicon."""
    return _load(Path(directory))[0]


def _load(directory: Path) -> tuple[TrainedModel, bytes, bytes]:
    """Read and check a model artefact; return the model and the two files' bytes it was read from."""
    try:
        meta_bytes = (directory / META_FILE).read_bytes()
        info = json.loads(meta_bytes)
    except FileNotFoundError as exc:
        raise ArtefactError(f"{directory}: not a model artefact ({exc.filename} is missing)") from None
    except (ValueError, OSError) as exc:
        raise ArtefactError(f"{directory}: unreadable {META_FILE}: {exc}") from None
    if isinstance(info, dict) and info.get("format") == 1:
        raise ArtefactError(
            f"{directory}: format 1 (a pickle of scikit-learn objects), which this version no longer "
            f"loads; rewrite it with `switchboard upgrade-model {directory}` (it unpickles the file: only "
            f"one you trust), or retrain it with `switchboard train --out {directory}`"
        )
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ArtefactError(f"{directory}: {META_FILE} is not format {FORMAT}")
    try:
        blob = (directory / MODEL_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise ArtefactError(f"{directory}: not a model artefact ({exc.filename} is missing)") from None
    except OSError as exc:
        raise ArtefactError(f"{directory}: unreadable {MODEL_FILE}: {exc}") from None
    _check_made_for_this_code(directory, info, blob, MODEL_FILE)
    try:
        model, identity = loads(blob)
    except (ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as exc:
        raise ArtefactError(f"{directory}: cannot rebuild the model from {MODEL_FILE}: {exc!r}") from None
    _check_identity(directory, info, model, identity, MODEL_FILE)
    if info.get("version") != model.version:
        model.built_as = info.get("version")
    return model, blob, meta_bytes


def _check_made_for_this_code(
    directory: Path, info: dict, blob: bytes, name: str, *, more: dict[str, tuple[str, str]] | None = None
) -> None:
    """Refuse a model file that meta.json does not vouch for, or that was built for another recipe or
    lexicon (or whatever else `more` names: key -> (value here, what it is)).

    A recipe that differs from this code's only in its decision rules (`learning.DECISION_RULES`: what
    is decided after the heads have scored) is accepted: the fitted numbers are the ones this code would
    fit, and the model is served with this code's rules, under the version they name. So a release that
    changes a rule keeps a contact centre's own model loading, instead of refusing it at start.
    """
    expected = {
        "recipe_sha256": (recipe_hash(), "feature recipe"),
        "lexicon_sha256": (cues.fingerprint(), "lexicon tables"),
        **(more or {}),
    }
    recipe = info.get("recipe")
    if (
        info.get("recipe_sha256") != recipe_hash()
        and isinstance(recipe, dict)
        and recipe_hash(recipe) == info.get("recipe_sha256")  # the recipe stored is the one hashed
        and fitted_alike(recipe)
    ):
        del expected["recipe_sha256"]
        log.warning(
            "%s: built by a release with other decision rules (%s); served with this release's, as %s",
            directory,
            info.get("version"),
            model_version(str(info.get("data_hash")), info.get("seed"), recipe_hash()),
        )
    for key, (current, what) in expected.items():
        if info.get(key) != current:
            raise ArtefactError(
                f"{directory}: built with another {what} ({info.get(key)!r}, this is {current!r}); "
                "retrain it with `switchboard train`"
            )
    if info.get("model_sha256") != _sha256(blob):
        raise ArtefactError(f"{directory}: {name} does not match {META_FILE} (damaged or edited)")


def _check_identity(directory: Path, info: dict, model: TrainedModel, stored: dict, name: str) -> None:
    """Refuse a model whose identity is not the one stored beside it and in meta.json (its version as the
    recipe it was built under names it)."""
    found = _identity(model) | {
        "version": model_version(model.data_hash, model.seed, str(info.get("recipe_sha256")))
    }
    if any(info.get(key) != value for key, value in found.items()) or found != stored:
        raise ArtefactError(f"{directory}: {META_FILE} does not describe the model in {name}")


def upgrade(directory: Path | str, out: Path | str | None = None) -> TrainedModel:
    """Rewrite a format 1 artefact (a pickle of scikit-learn objects) as this format, in `out` or in place.

    The same model, checked: the pickle must match its meta.json, have been written by the scikit-learn
    installed here, for this recipe and lexicon, and rebuild the identity meta.json gives. Unpickling runs
    code chosen by whoever wrote the file: upgrade only artefacts you built or trust.
    """
    import pickle

    from classifier.training import from_sklearn

    directory = Path(directory)
    try:
        info = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ArtefactError(f"{directory}: not a readable model artefact: {exc}") from None
    found_format = info.get("format") if isinstance(info, dict) else None
    if found_format != 1:
        nothing = ": nothing to upgrade" if found_format == FORMAT else ""
        raise ArtefactError(f"{directory}: {META_FILE} is format {found_format!r}, not format 1{nothing}")
    try:
        blob = (directory / "model.pkl").read_bytes()
    except OSError as exc:
        raise ArtefactError(f"{directory}: a format 1 artefact without a readable model.pkl: {exc}") from None
    more = {"sklearn": (version("scikit-learn"), "scikit-learn")}
    _check_made_for_this_code(directory, info, blob, "model.pkl", more=more)
    try:
        state = pickle.loads(blob)  # trusted artefacts only: see the docstring
        identity = state["identity"]
        model = from_sklearn(
            state["vectorizers"], state["heads"], identity["data_hash"], identity["seed"], state["counts"]
        )
        model.evaluation = state["evaluation"]
    except Exception as exc:
        raise ArtefactError(f"{directory}: cannot rebuild the model from model.pkl: {exc!r}") from None
    _check_identity(directory, info, model, identity, "model.pkl")
    save(model, out if out is not None else directory)
    return model


def default_cache() -> Path:
    """Return where trained models are cached: $XDG_CACHE_HOME/switchboard/models, else ~/.cache/…."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "switchboard" / "models"


def default_model(cache: Path | str | None = None, *, seed: int = 0, corpus: Path = CORPUS) -> TrainedModel:
    """Return the model trained on the packaged corpus, training and caching it on first use.

    The cache entry is named by the data hash, seed, recipe, lexicon, scikit-learn version (which fits
    the model) and artefact format, so a changed corpus or library trains a new model and never reuses a
    stale one.
    """
    examples = read_examples([corpus])
    key = "-".join(
        (
            data_hash(examples)[:16],
            f"s{seed}",
            f"r{recipe_hash()[:8]}",
            f"l{cues.fingerprint()[:8]}",
            f"sklearn{version('scikit-learn')}",
            f"f{FORMAT}",
        )
    )
    directory = Path(cache) if cache is not None else default_cache()
    target = directory / key
    if target.exists():
        try:
            return load(target)
        except ArtefactError:
            shutil.rmtree(target, ignore_errors=True)
    # Training imports scikit-learn, which loading never needs.
    from classifier.training import train

    # No held-out twin here: a service starting should not fit the model twice; `switchboard train`
    # scores one.
    model = train(examples, seed=seed, holdout=0)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Build beside the target and rename: replicas starting together never read half an artefact.
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=directory))
    except OSError as exc:
        # A read-only cache (an image's baked one that lacks this entry): serve the model all the same.
        log.warning("model %s not cached: %s is not writable (%s)", model.version, directory, exc)
        return model
    save(model, staging)
    # mkdtemp's directory is private to its user; the cache entry is read by whoever runs the service.
    staging.chmod(0o755)
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return model
