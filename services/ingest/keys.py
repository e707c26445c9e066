"""API keys of the generic and activity APIs: only their SHA-256 hashes are configured, never the keys.

An entry of `INGEST_API_KEYS` is `name:sha256hex[:rate_per_minute]`; `python -m ingest.keys new <name>`
makes a key, prints it once, and prints the entry to configure.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass

PREFIX = "sbk_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ApiKey:
    """One configured key: who holds it, the SHA-256 of the key, and its own rate limit if any."""

    name: str
    sha256: str
    rate_per_minute: int | None = None

    def entry(self) -> str:
        """Return the `INGEST_API_KEYS` entry of this key."""
        rate = f":{self.rate_per_minute}" if self.rate_per_minute is not None else ""
        return f"{self.name}:{self.sha256}{rate}"


def hash_key(key: str) -> str:
    """Return the SHA-256 hex digest of a key, as configured."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def parse_entry(text: str) -> ApiKey:
    """Read one `name:sha256hex[:rate_per_minute]` entry; raise ValueError saying what is wrong."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3):
        raise ValueError("an API key entry is name:sha256hex[:rate_per_minute]")
    name, digest = parts[0], parts[1].lower()
    if not _NAME.fullmatch(name):
        raise ValueError(f"API key name {name!r}: letters, digits, '_', '.', '-', at most 64")
    if not _HEX.fullmatch(digest):
        # A key pasted where its hash belongs would otherwise leak into settings dumps and logs.
        raise ValueError(f"API key {name!r}: the second part is the key's SHA-256 (64 hex digits)")
    rate = None
    if len(parts) == 3:
        if not parts[2].isdigit() or int(parts[2]) < 1:
            raise ValueError(f"API key {name!r}: the rate is a whole number of requests per minute, >= 1")
        rate = int(parts[2])
    return ApiKey(name, digest, rate)


def parse_entries(value: object) -> list[ApiKey]:
    """Read the setting: entries separated by commas or whitespace, or a list of entries."""
    if value is None:
        return []
    if isinstance(value, str):
        items: Iterable[object] = re.split(r"[\s,]+", value.strip()) if value.strip() else []
    elif isinstance(value, Iterable):
        items = value
    else:
        raise ValueError("api_keys is a list of name:sha256hex[:rate_per_minute] entries")
    keys = [item if isinstance(item, ApiKey) else parse_entry(str(item)) for item in items]
    names = [k.name for k in keys]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"API key names are used twice: {', '.join(twice)}")
    return keys


class KeyRing:
    """Tells which configured key a client presented."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = [(k, bytes.fromhex(k.sha256)) for k in keys]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def identify(self, presented: str) -> ApiKey | None:
        """Return the key whose hash matches, comparing every hash in constant time."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        # No early exit: the time taken does not depend on which key, if any, matched.
        for key, expected in self._keys:
            if hmac.compare_digest(digest, expected):
                found = key
        return found


def new_key(name: str, rate_per_minute: int | None = None) -> tuple[str, ApiKey]:
    """Make a random key for `name`; return the key (to hand over once) and its configured entry."""
    key = PREFIX + secrets.token_urlsafe(32)
    entry = ApiKey(name, hash_key(key), rate_per_minute)
    parse_entry(entry.entry())  # refuses a bad name or rate before a key is shown
    return key, entry


def print_new_key(name: str, rate_per_minute: int | None = None) -> int:
    """Print a new key once and the `INGEST_API_KEYS` entry to configure; return the exit status."""
    try:
        key, entry = new_key(name, rate_per_minute)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"key:   {key}")
    print(f"entry: {entry.entry()}")
    print(
        "Give the key to the client now: it is not stored anywhere and cannot be shown again.\n"
        "Add the entry to INGEST_API_KEYS (entries separated by commas).",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `python -m ingest.keys new <name> [--rate N]`."""
    parser = argparse.ArgumentParser(prog="python -m ingest.keys", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_new = sub.add_parser("new", help="make a key: print it once and its INGEST_API_KEYS entry")
    p_new.add_argument("name", help="who holds the key (letters, digits, _ . -)")
    p_new.add_argument("--rate", type=int, default=None, help="requests per minute for this key")
    args = parser.parse_args(argv)
    return print_new_key(args.name, args.rate)


if __name__ == "__main__":
    sys.exit(main())
