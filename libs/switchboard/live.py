"""Operator-edited configuration in force now, swapped atomically when its file changes.

A reload that fails leaves the previous configuration live and records why; the file watcher polls
the content's digest, so it needs no platform file-notification support and survives editors that
replace the file instead of writing it in place.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration file that cannot be used, with a reason an operator can act on."""


class LiveConfig(Generic[T]):
    """Holds the parsed configuration in force; `reload` swaps it only when the new file is valid."""

    def __init__(
        self,
        what: str,
        path: str | None,
        bundled: Callable[[], str],
        parse: Callable[[str], T],
        on_reload: Callable[[str], None] = lambda _outcome: None,
    ) -> None:
        self.what = what
        self.path = Path(path) if path else None
        self._bundled = bundled
        self._parse = parse
        self._on_reload = on_reload
        text = self._read()
        try:
            self.current: T = parse(text)
        except Exception as exc:
            raise ConfigError(f"{what} in {self.source}: {exc}") from exc
        self.digest = _digest(text)
        self.loaded_at = datetime.now(UTC)
        self.last_error: str | None = None
        # The digest of a file already rejected, so the watcher does not log the same error every tick.
        self._rejected: str | None = None

    @property
    def source(self) -> str:
        """Say where the configuration comes from."""
        return str(self.path) if self.path else "the bundled example"

    def _read(self) -> str:
        if self.path is None:
            return self._bundled()
        return self.path.read_text(encoding="utf-8")

    def reload(self) -> T:
        """Read and parse the file again; on error raise ConfigError and keep the previous one."""
        try:
            text = self._read()
            parsed = self._parse(text)
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else str(exc)
            self._on_reload("rejected")
            log.warning("%s rejected, the previous one stays live: %s", self.what, self.last_error)
            raise ConfigError(self.last_error) from exc
        self.current = parsed
        self.digest = _digest(text)
        self.loaded_at = datetime.now(UTC)
        self.last_error = None
        self._on_reload("loaded")
        log.info("%s loaded from %s (%s)", self.what, self.source, self.digest)
        return parsed

    def describe(self) -> dict[str, Any]:
        """Say what is in force, from where, since when, and why the last reload was rejected."""
        return {
            "source": self.source,
            "digest": self.digest,
            "loaded_at": self.loaded_at.isoformat(),
            "last_error": self.last_error,
        }

    async def watch(self, interval: float) -> None:
        """Reload whenever the file's content changes; run until cancelled."""
        if self.path is None:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                text = self.path.read_text(encoding="utf-8")
            except OSError as exc:
                log.warning("cannot read %s %s: %s", self.what, self.path, exc)
                continue
            digest = _digest(text)
            if digest in (self.digest, self._rejected):
                continue
            try:
                self.reload()
            except ConfigError:
                self._rejected = digest


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
