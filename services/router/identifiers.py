"""What in a message names the customer or their order, so their messages on other channels join one case.

Pure: no I/O. Each identifier is a `kind:value` string, normalised so the same thing written two ways
matches (`#A-48213` and `commande A48213` are both `order:A48213`).

The rules, chosen to link rarely but surely:
- order numbers only with a cue: a `#` before an id with at least five digits, or a letter prefix and a
  dash (`#A-48213`, `#123456`; not `#2024` or `#fashion`), or an order word before the id (order,
  commande, cmd, ref, référence, achat, purchase; then optional `no.`, `n°`, `numéro`, `number`, `#`, `:`)
  with at least five digits (`commande 123456`, `order no. 123-4567`); letters upper-cased, separators
  dropped;
- email addresses, lower-cased; the email channel's sender is one too;
- phone numbers in international form (`+33 6 12 34 56 78`) or French national form (`06 12 34 56 78`),
  as E.164; an SMS or WhatsApp sender is one too. Other national forms are too easy to confuse with order
  numbers and are left out;
- an X account: tweets and DMs of one X user share their author id, so both join one case.
Messages classified as spam link nothing, and identifiers an operator lists as ignored (the brand's own
addresses and numbers, a whole `@domain`) never link, so quoting the support address joins nobody.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from switchboard.contract import Channel, ClassifiedMessage

# A text naming more than this is a list, not one customer's case: only the first ones count.
MAX_IDENTIFIERS = 8
MIN_ORDER_DIGITS = 5

_HASH_ORDER = re.compile(r"(?<![\w#])#([A-Z]{1,3}-\d{4,14}|[A-Z]{0,3}\d{5,14})\b", re.I)
_WORD_ORDER = re.compile(
    r"\b(?:order|commande|cmd|command|purchase|achat|r[ée]f(?:[ée]rence)?|reference)s?\b"
    r"(?:\s*(?:no\.?|n°|nº|num[ée]ro|numbers?|num\.?|#|:)\s*)*\s*"
    r"([A-Z]{0,3}-?\d[\d-]{2,20}\d)\b",
    re.I,
)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Z0-9._%+-]+@[A-Z0-9-]+(?:\.[A-Z0-9-]+)*\.[A-Z]{2,}\b", re.I)
# What every identifier above holds at least one of.
_CANDIDATE = re.compile(r"[\d@]")
_DIGIT = re.compile(r"\d")
# What an order word starts with, lower-cased (`_WORD_ORDER` runs only on a text holding one of them).
_ORDER_WORD_STARTS = ("order", "comm", "cmd", "purcha", "achat", "ref", "réf")
_PHONE = re.compile(r"(?<![\w+])(\+\d[\d .()-]{6,20}\d|0[1-9](?:[ .-]?\d{2}){4})(?!\w)")


@dataclass(frozen=True)
class LinkPolicy:
    """What an operator told the router never to link on, and whether to link at all."""

    enabled: bool = True
    ignore: frozenset[str] = frozenset()

    @classmethod
    def from_entries(cls, entries: Iterable[str], enabled: bool = True) -> LinkPolicy:
        """Read ignore entries written as an address, an `@domain`, a phone number or an order number."""
        ignore: set[str] = set()
        for entry in entries:
            entry = entry.strip()
            if entry.startswith("@"):
                ignore.add(f"domain:{entry[1:].lower()}")
            elif "@" in entry:
                ignore.add(f"email:{entry.lower()}")
            elif (phone := normalise_phone(entry)) is not None:
                ignore.add(f"phone:{phone}")
            elif entry:
                ignore.add(f"order:{normalise_order(entry)}")
        return cls(enabled, frozenset(ignore))

    def allows(self, identifier: str) -> bool:
        """Tell whether an identifier may link messages."""
        if identifier in self.ignore:
            return False
        kind, _, value = identifier.partition(":")
        return not (kind == "email" and f"domain:{value.rpartition('@')[2]}" in self.ignore)


def normalise_order(raw: str) -> str:
    """Write an order number one way: letters upper-cased, separators dropped."""
    return re.sub(r"[^0-9A-Z]", "", raw.upper())


def normalise_phone(raw: str) -> str | None:
    """Return a phone number in E.164 form, or None when it is not an international or French number."""
    digits = re.sub(r"\D", "", raw)
    if raw.strip().startswith("+"):
        # Drop the national trunk zero written after the country code: +33 (0)6 12 34 56 78.
        if digits.startswith("330") and len(digits) == 12:
            digits = "33" + digits[3:]
        return f"+{digits}" if 8 <= len(digits) <= 15 else None
    if len(digits) == 10 and digits[0] == "0" and digits[1] != "0":
        return f"+33{digits[1:]}"
    return None


def _orders(text: str) -> list[tuple[str, tuple[int, int]]]:
    # The `#` form checks its own digits (a dashed prefix allows four); an order word needs five.
    # Each regex runs only on a text holding what it cannot match without: most texts hold neither.
    found: list[tuple[str, tuple[int, int]]] = []
    if "#" in text:
        found = [(f"order:{normalise_order(m.group(1))}", m.span(1)) for m in _HASH_ORDER.finditer(text)]
    lowered = text.lower()
    if not any(start in lowered for start in _ORDER_WORD_STARTS):
        return found
    for match in _WORD_ORDER.finditer(text):
        value = normalise_order(match.group(1))
        if sum(c.isdigit() for c in value) >= MIN_ORDER_DIGITS:
            found.append((f"order:{value}", match.span(1)))
    return found


def _blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    spans = list(spans)
    if not spans:
        return text
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def extract(text: str) -> list[str]:
    """Return the order numbers, email addresses and phone numbers a text names, in that order, once each."""
    if _CANDIDATE.search(text) is None:
        # Every identifier holds a digit or an @; most messages hold neither, and skip the regexes.
        return []
    orders = _orders(text)
    # What was read as an order number or an address is not read again as a phone number.
    rest = _blank(text, (span for _, span in orders))
    email_matches = list(_EMAIL.finditer(rest)) if "@" in rest else []
    emails = [f"email:{m.group(0).lower()}" for m in email_matches]
    rest = _blank(rest, (m.span() for m in email_matches))
    phones = []
    if _DIGIT.search(rest) is not None:
        phones = [f"phone:{p}" for m in _PHONE.finditer(rest) if (p := normalise_phone(m.group(1)))]
    return list(dict.fromkeys([o for o, _ in orders] + emails + phones))


def _author(classified: ClassifiedMessage) -> list[str]:
    message = classified.message
    author = message.author.id
    if message.channel == Channel.EMAIL and "@" in author:
        return [f"email:{author.lower()}"]
    if message.channel in (Channel.SMS, Channel.WHATSAPP):
        phone = normalise_phone(author if author.startswith(("+", "0")) else f"+{author}")
        return [f"phone:{phone}"] if phone else []
    if message.channel == Channel.X:
        return [f"author:x:{author}"]
    return []


def identify(classified: ClassifiedMessage, policy: LinkPolicy) -> list[str]:
    """Return the identifiers that may link this message to a case of another conversation."""
    if not policy.enabled or classified.classification.intent == "spam":
        return []
    found = dict.fromkeys(extract(classified.message.text) + _author(classified))
    return [i for i in found if policy.allows(i)][:MAX_IDENTIFIERS]
