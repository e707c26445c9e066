"""The model in force in one role (live or shadow), swapped for a new one only when the new one loads.

Loading runs in a worker thread so the consumer and the HTTP API keep going meanwhile. A model that
fails to load (a damaged artefact, one built for other code) is refused with its reason and the
previous one keeps deciding. A model directory is watched by polling what names its content, as
`switchboard.live` watches configuration files: no platform file notifications are needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from classifier.artefact import META_FILE, MODEL_FILE
from classifier.choice import LEARNED, LEXICON, BatchModel

log = logging.getLogger(__name__)


class ReloadError(Exception):
    """A model that could not be loaded; the one in force stays."""


class Stamp(NamedTuple):
    """What names the content of a model directory, read cheaply: no hashing of the model file."""

    meta: str
    model_size: int
    model_mtime_ns: int


@dataclass(frozen=True, slots=True)
class Loaded:
    """A model in force, where it came from and when it was loaded."""

    model: BatchModel
    source: str
    loaded_at: datetime
    # The directory's content when it was read (see `stamp`); None for `learned` or `lexicon`.
    stamp: Stamp | None


def stamp(directory: Path) -> Stamp | None:
    """Read what names a model directory's content: meta.json's digest, model.npz's size and mtime.

    None when either file is missing.
    """
    try:
        meta = (directory / META_FILE).read_bytes()
        blob = (directory / MODEL_FILE).stat()
    except OSError:
        return None
    return Stamp(hashlib.sha256(meta).hexdigest()[:16], blob.st_size, blob.st_mtime_ns)


class ModelHolder:
    """Holds the model of one role; `reload` swaps it only for a model that loaded."""

    def __init__(
        self,
        role: str,
        spec: str,
        load: Callable[[str], BatchModel],
        *,
        required: bool = True,
        on_reload: Callable[[str, str], None] = lambda _role, _outcome: None,
        on_swap: Callable[[str, str | None, str | None], None] = lambda _role, _old, _new: None,
    ) -> None:
        """Load the model named by `spec` now.

        When the role is `required` a failure raises, so a service never starts without its live model;
        otherwise (a shadow) the role starts empty, says why, and a later reload may fill it. A role that
        is not required follows its directory: while the directory holds no model (no meta.json and
        model file), the role is empty without a refusal, and a model that lands there is loaded by the
        watcher; a model removed from it leaves the role (`watch`).
        """
        self.role = role
        self.spec = spec
        self._load = load
        self._on_reload = on_reload
        self._on_swap = on_swap
        self._lock = asyncio.Lock()
        self.last_error: str | None = None
        # The stamp of a directory already refused, so the watcher does not refuse it again every tick.
        self._rejected: Stamp | None = None
        self.current: Loaded | None = None
        self._required = required
        at = self._stamp()
        if not required and self.directory is not None and at is None:
            log.info("%s: no model in %s yet; the role decides nothing until one lands there", role, spec)
            return
        try:
            self.current = self._read(at)
        except Exception as exc:
            if required:
                raise
            self._refuse(exc, at)
            return
        on_swap(role, None, self.current.model.version)

    @property
    def model(self) -> BatchModel | None:
        """Return the model in force (always one for a required role)."""
        return self.current.model if self.current is not None else None

    @property
    def version(self) -> str | None:
        """Return the version of the model in force."""
        return self.current.model.version if self.current is not None else None

    @property
    def directory(self) -> Path | None:
        """Return the model directory this role reads, or None for `learned` and `lexicon`."""
        return None if self.spec in (LEARNED, LEXICON) else Path(self.spec)

    def _stamp(self) -> Stamp | None:
        directory = self.directory
        return stamp(directory) if directory is not None else None

    def _read(self, at: Stamp | None) -> Loaded:
        model = self._load(self.spec)
        return Loaded(model, str(self.directory or self.spec), datetime.now(UTC), at)

    def _refuse(self, exc: Exception, at: Stamp | None) -> ReloadError:
        self.last_error = str(exc) or type(exc).__name__
        self._rejected = at
        self._on_reload(self.role, "rejected")
        log.warning(
            "%s model from %s rejected, %s stays in force: %s",
            self.role,
            self.spec,
            self.version or "no model",
            self.last_error,
        )
        return ReloadError(self.last_error)

    async def reload(self) -> Loaded:
        """Load the model again in a thread and swap it in; on failure raise ReloadError, keep the old one."""
        async with self._lock:
            at = await asyncio.to_thread(self._stamp)
            try:
                loaded = await asyncio.to_thread(self._read, at)
            except Exception as exc:
                raise self._refuse(exc, at) from exc
            previous, self.current = self.version, loaded
            self.last_error = None
            self._rejected = None
            self._on_reload(self.role, "loaded")
            self._on_swap(self.role, previous, loaded.model.version)
            log.info(
                "%s model %s loaded from %s (was %s)",
                self.role,
                loaded.model.version,
                loaded.source,
                previous or "no model",
            )
            return loaded

    async def watch(self, interval: float) -> None:
        """Reload when the model directory holds a new model; run until cancelled.

        A new model is a new meta.json: `switchboard train` writes it after model.npz, so a model file
        changing under the same meta.json is a model half written, not one to load. After a refusal any
        change is worth a try (a model file copied after its meta.json). The directory must also read the
        same on two checks in a row, so a copy in progress is not loaded, nor refused, halfway. A role
        that is not required is emptied when its directory holds no model any more (a shadow stopped by
        removing its files); the live model stays whatever happens to its directory.
        """
        if self.directory is None:
            return
        previous: Stamp | None = None
        while True:
            await asyncio.sleep(interval)
            seen = await asyncio.to_thread(self._stamp)
            settled, previous = seen == previous, seen
            current = self.current.stamp if self.current is not None else None
            if seen is None and settled and not self._required and self.current is not None:
                self._leave()
                continue
            if seen is None or not settled or seen == self._rejected:
                continue
            if self._rejected is None and current is not None and seen.meta == current.meta:
                continue
            try:
                await self.reload()
            except ReloadError:
                pass

    def _leave(self) -> None:
        """Empty a role that is not required, its directory no longer holding a model."""
        old, self.current = self.version, None
        self.last_error, self._rejected = None, None
        self._on_swap(self.role, old, None)
        log.info("%s model %s left: %s holds no model; the role decides nothing", self.role, old, self.spec)

    def describe(self) -> dict[str, Any]:
        """Say which model is in force, where it came from, since when, and why a reload was refused."""
        loaded = self.current
        return {
            "version": loaded.model.version if loaded else None,
            # Set when the artefact was built by a release with other decision rules (served with ours).
            "built_as": getattr(loaded.model, "built_as", None) if loaded else None,
            "source": loaded.source if loaded else str(self.directory or self.spec),
            "loaded_at": loaded.loaded_at.isoformat() if loaded else None,
            "digest": loaded.stamp.meta if loaded and loaded.stamp else None,
            "last_error": self.last_error,
            # What the model was measured at when trained: held-out scores and the behaviour checks.
            "evaluation": getattr(loaded.model, "evaluation", None) if loaded else None,
            # What it was trained on: lines per label and language, and by weight when some counted more.
            "counts": getattr(loaded.model, "counts", None) if loaded else None,
            # Trained with a contact centre's own labels (`--own`): English messages are then decided
            # without the two support rules (`learning.RECIPE["own_labels_english_without_support_rules"]`).
            "taught_by_own_labels": getattr(loaded.model, "taught_by_own_labels", False) if loaded else None,
        }
