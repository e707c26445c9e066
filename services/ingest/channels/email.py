"""Email through an inbound-parse webhook (JSON or multipart form) as inbound messages."""

from __future__ import annotations

import hmac
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.parser import HeaderParser
from email.utils import parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from pydantic import BaseModel, ValidationError

from ingest.answers import store_or_refuse
from ingest.api import EARLIEST, MessageIn, ahead_of
from ingest.channels.common import clip
from ingest.config import Settings
from ingest.gate import Gate
from switchboard.contract import Author, Channel

PATH = "/v1/webhooks/email"
# Other names inbound-parse services give the same fields (compared after lowercasing, `_` as `-`).
_ALIASES = {"body-plain": "text", "body-html": "html", "message-headers": "headers"}
# The fields read; any other field (attachments, spam scores, envelopes...) may have any shape.
_USED = {"from", "to", "subject", "text", "html", "message-id", "in-reply-to", "references", "date"}
# Tags whose content is never shown to a reader.
_HIDDEN = {"script", "style", "title", "template"}
# Tags that start a new line of text.
_BLOCKS = {
    *("p", "br", "div", "li", "tr", "hr", "pre", "table", "ul", "ol", "dl", "dt", "dd"),
    *("h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer", "address"),
}
# Tags that start a line but whose end does not need another (list items, rows, breaks).
_LINES = {"br", "li", "tr", "dt", "dd"}
# A reply header carries the quoted message's date, hence a digit between its first and last words; it
# may wrap over two lines. One `.*` per pattern and the digit looked for apart: two `.*` around `\d`
# backtracked quadratically on a long line that starts like a header and never ends like one.
_REPLY_HEADERS = (
    re.compile(r"On\b(.*)\bwrote\s*:", re.IGNORECASE),
    re.compile(r"Le\b(.*)\ba\s+écrit\s*:", re.IGNORECASE),
)
_DIGIT = re.compile(r"\d")
_SEPARATOR = re.compile(
    r"-{2,}\s*(Original Message|Message d'origine|Message original)\s*-{2,}", re.IGNORECASE
)
# Outlook's header block of the quoted message: "From: … / Sent: …", "De : … / Envoyé : …".
_FROM_LINE = re.compile(r"\*?(From|De)\s*:", re.IGNORECASE)
_SENT_LINE = re.compile(r"\*?(Sent|Envoyé|Date)\s*:", re.IGNORECASE)
_SENT_INLINE = re.compile(r"\s\*?(Sent|Envoyé)\s*:", re.IGNORECASE)
_MOBILE_SIGNATURE = re.compile(
    r"(Sent from my|Envoyé de mon|Envoyé depuis mon|Get Outlook for|Obtenir Outlook pour)\b", re.IGNORECASE
)
_RULE = re.compile(r"[-_=*]{5,}")
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


class MalformedEmail(ValueError):
    """The body cannot be read as an inbound-parse post (400)."""


class IncompleteEmail(ValueError):
    """A field the message needs is missing or invalid (422)."""


class EmailAccepted(BaseModel):
    """The email was stored (or had been already)."""

    message_id: str
    status: Literal["accepted", "duplicate"]


class _TextExtractor(HTMLParser):
    """Collect the visible text of an HTML part, line by line, with each line's blockquote depth."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, list[str]]] = [(0, [])]
        self.hidden = 0
        self.quote = 0
        self.pre = 0

    def newline(self) -> None:
        self.lines.append((self.quote, []))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "blockquote":
            self.quote += 1
            self.newline()
        elif tag in _BLOCKS:
            self.newline()
            if tag == "li":
                self.lines[-1][1].append("- ")
            if tag == "pre":
                self.pre += 1
        elif tag in ("td", "th"):
            self.lines[-1][1].append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self.newline()
        elif tag in _BLOCKS and tag not in _LINES:
            self.newline()
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if not self.pre:
            self.lines[-1][1].append(re.sub(r"\s+", " ", data))
            return
        first, *rest = data.split("\n")
        self.lines[-1][1].append(first)
        for line in rest:
            self.newline()
            self.lines[-1][1].append(line)


# Python's HTML parser (3.11) rescans the rest of the document for each half-open construct ('<!--', '</',
# '<?', '<!' left without their end) and raises AssertionError on a '<![' it cannot name: a crafted HTML
# part blocked the event loop for hours, or made a 500. So the part is first reduced, in linear passes, to
# whole tags and text: comments, declarations, processing instructions and marked sections, never shown,
# are dropped (an unclosed comment hides the rest, as in a browser), and every other '<' becomes text.
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_DIRECTIVE = re.compile(r"<[!?][^<>]*>")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_STRAY = re.compile(r"<(?!/?[A-Za-z][^<>]*>)")
# The parser costs microseconds a tag or an entity: past this many tags (a long newsletter has a few
# thousand) the rest are dropped and read as plain text, and a flood of stray '<' is dropped rather than
# escaped, so that no part can hold the event loop for long.
MAX_HTML_TAGS = 50_000


def tame_markup(html: str) -> str:
    """Return HTML that Python's parser reads in linear time: whole tags and text only."""
    html = _DIRECTIVE.sub("", _COMMENT.sub("", html))
    escaped, strays = _STRAY.subn("&lt;", html)
    html = escaped if strays <= MAX_HTML_TAGS else _STRAY.sub("", html)
    beyond = next(itertools.islice(_TAG.finditer(html), MAX_HTML_TAGS, None), None)
    if beyond is not None:
        html = html[: beyond.start()] + _TAG.sub("", html[beyond.start() :])
    return html


def html_to_text(html: str) -> str:
    """Reduce an HTML part to its readable text; quoted blocks come out as `> ` lines."""
    parser = _TextExtractor()
    parser.feed(tame_markup(html))
    parser.close()
    lines = []
    for depth, parts in parser.lines:
        line = " ".join("".join(parts).split())
        lines.append(f"{'>' * depth} {line}" if depth and line else line)
    return _tidy(lines)


def _tidy(lines: Iterable[str]) -> str:
    """Join lines, keeping at most one blank line in a row and none at either end."""
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in lines)).strip()


def _is_header(line: str) -> bool:
    for pattern in _REPLY_HEADERS:
        match = pattern.fullmatch(line)
        if match and _DIGIT.search(match[1]):
            return True
    return False


def _is_reply_header(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    after = [candidate.strip() for candidate in lines[index + 1 : index + 3] if candidate.strip()]
    if _SEPARATOR.fullmatch(line) or _is_header(line):
        return True
    if _FROM_LINE.match(line):
        return bool(_SENT_INLINE.search(line) or (after and _SENT_LINE.match(after[0])))
    # A header wrapped over two lines; when the next line is a whole header, the cut happens there.
    following = lines[index + 1].strip() if index + 1 < len(lines) else ""
    return bool(following) and not _is_header(following) and _is_header(f"{line} {following}")


def trim_quoted(text: str) -> str:
    """Keep what the sender wrote: drop `>` lines, and everything from a reply header or signature on."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if line.rstrip() == "--" or _is_reply_header(lines, index):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line)
    # What is left at the end of a reply is often a rule or a mobile client's signature line.
    while kept and (not kept[-1].strip() or _RULE.fullmatch(kept[-1].strip())):
        kept.pop()
    if kept and _MOBILE_SIGNATURE.match(kept[-1].strip()):
        kept.pop()
    return _tidy(kept)


def message_ids(value: str | None) -> list[str]:
    """Return the message ids in a Message-ID, In-Reply-To or References value, without their `<>`."""
    if not value:
        return []
    found = _MESSAGE_ID.findall(value)
    return found if found else [part.strip("<>") for part in value.split() if part.strip("<>")]


def thread_root(message_id: str, in_reply_to: str | None = None, references: str | None = None) -> str:
    """Return the id of the message that started the thread: References' first, else In-Reply-To."""
    return (message_ids(references) or message_ids(in_reply_to) or [message_id])[0]


def _decoded(value: str) -> str:
    """Decode RFC 2047 encoded words (`=?utf-8?q?...?=`) that some services pass on as they are."""
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
        return value


def _header_pairs(raw: Any) -> list[tuple[str, str]]:
    """Read the headers a service posts: a raw header block, or [name, value] pairs (maybe JSON-encoded)."""
    if isinstance(raw, str) and raw.lstrip().startswith("["):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise MalformedEmail("headers is neither a header block nor a JSON list") from None
    if isinstance(raw, str):
        headers = HeaderParser().parsestr(raw).items()
        return [(name, re.sub(r"\r?\n[ \t]+", " ", str(value)).strip()) for name, value in headers]
    if isinstance(raw, Mapping):
        raw = list(raw.items())
    if isinstance(raw, list) and all(isinstance(e, list | tuple) and len(e) == 2 for e in raw):
        return [(str(name), str(value)) for name, value in raw]
    raise MalformedEmail("headers is a header block, a list of [name, value] pairs or an object")


def email_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    """Return the posted fields by lowercase name, completed by the raw headers the service passed on."""
    merged: dict[str, str] = {}
    posted: dict[str, str] = {}
    for name, value in fields.items():
        key = name.strip().lower().replace("_", "-")
        key = _ALIASES.get(key, key)
        if key == "headers":
            for header, header_value in _header_pairs(value):
                merged.setdefault(header.strip().lower(), header_value)
        elif isinstance(value, str):
            posted[key] = value
        elif key in _USED and value is not None:
            raise MalformedEmail(f"{name} is a {type(value).__name__}, not a string")
    return {**merged, **posted}


def parse_date(value: str | None) -> datetime | None:
    """Return the Date header as an aware datetime, or None when it is absent or unreadable."""
    if not value or not value.strip():
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    # RFC 5322's "-0000" zone means UTC with no local offset known; Python returns it naive.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def email_text(subject: str, plain: str | None, html: str | None) -> str:
    """Return the subject, a blank line and what the sender wrote, quotes and signature trimmed."""
    body = plain if plain and plain.strip() else html_to_text(html or "")
    return "\n\n".join(part for part in (subject.strip(), trim_quoted(body)) if part)


def parse_email(
    fields: Mapping[str, Any], received_at: datetime, max_text_chars: int | None = None
) -> MessageIn:
    """Turn an inbound-parse post into a message; raise `IncompleteEmail` or `MalformedEmail` if unfit."""
    found = email_fields(fields)
    own_ids = message_ids(found.get("message-id"))
    if not own_ids:
        raise IncompleteEmail("the email has no Message-ID (field message-id or in headers)")
    message_id = own_ids[0]
    try:
        name, address = parseaddr(_decoded(found.get("from", "")))
    except RecursionError:
        # The standard library reads nested (comments) by recursion: a From of thousands of them has no
        # address to read, rather than being a 500.
        name, address = "", ""
    if "@" not in address:
        raise IncompleteEmail("from has no email address")
    subject = " ".join(_decoded(found.get("subject", "")).split())
    text = email_text(subject, found.get("text"), found.get("html"))
    if not text:
        raise IncompleteEmail("the email has no subject and no text")
    metadata: dict[str, Any] = {"subject": subject, "to": _decoded(found.get("to", ""))}
    created_at = parse_date(found.get("date"))
    if created_at is None or created_at < EARLIEST or ahead_of(created_at, received_at) is not None:
        # The time it was written is unknown, or not believable (a Date header before 1970 or days ahead):
        # the request time stands in, and says so. Refusing would lose the email, never sent again.
        created_at = received_at
        metadata["date_missing"] = True
    text = clip(text, metadata, max_text_chars)
    replied = message_ids(found.get("in-reply-to"))
    root = thread_root(message_id, found.get("in-reply-to"), found.get("references"))
    try:
        return MessageIn(
            channel=Channel.EMAIL,
            external_id=message_id,
            conversation_id=f"email:{root}",
            author=Author(id=address.lower(), name=name.strip() or None),
            text=text,
            created_at=created_at,
            visibility="private",
            in_reply_to=replied[0] if replied else None,
            language=None,
            metadata=metadata,
        )
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'email'}: {e['msg']}" for e in exc.errors())
        raise IncompleteEmail(reasons[:500]) from None


def check_token(expected: str, authorization: str | None, query_token: str | None) -> None:
    """Check the shared token given as a Bearer header or `token` query parameter; raise 401 or 403."""
    given = None
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            given = credentials.strip()
    given = given or query_token
    if not given:
        raise HTTPException(
            401,
            "the webhook token is missing: Authorization: Bearer or ?token=",
            {"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "the webhook token is wrong")


async def read_fields(request: Request, max_body_bytes: int) -> dict[str, Any]:
    """Read a JSON object or a form post; attachments (file parts) are left out."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body_bytes:
        raise HTTPException(413, f"the body is larger than {max_body_bytes} bytes")
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind == "application/json":
        body = await request.body()
        if len(body) > max_body_bytes:
            raise HTTPException(413, f"the body is larger than {max_body_bytes} bytes")
        try:
            fields = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise HTTPException(400, f"the body is not JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise HTTPException(400, "the body is a JSON object of email fields")
        return fields
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        # Starlette answers 400 itself when the form cannot be parsed.
        async with request.form(max_part_size=max_body_bytes) as form:
            return {name: value for name, value in form.multi_items() if isinstance(value, str)}
    raise HTTPException(415, "post the email as application/json or multipart/form-data")


# Every field is a string; `headers` is the raw header block, read for Message-ID and threading.
_FIELDS_SCHEMA = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in sorted(_USED | {"headers"})},
    "required": ["from"],
}


def router(gate: Callable[[], Gate], settings: Settings) -> APIRouter:
    """Build the route inbound-parse services post emails to."""
    api = APIRouter(tags=["webhooks"])

    @api.post(
        PATH,
        response_model=EmailAccepted,
        summary="Receive an email from an inbound-parse service (JSON or multipart form)",
        description=(
            "Authenticated by the shared token INGEST_EMAIL_WEBHOOK_TOKEN, as `Authorization: Bearer` "
            "or a `token` query parameter. Quoted replies and signatures are trimmed."
        ),
        responses={
            400: {"description": "The body cannot be read."},
            401: {"description": "No token."},
            403: {"description": "Wrong token."},
            413: {"description": "The body is larger than INGEST_MAX_BODY_BYTES."},
            415: {"description": "Neither JSON nor a form."},
            422: {"description": "A required field (Message-ID, from) is missing, with the reason."},
            503: {"description": "Not configured, or the broker did not acknowledge: retry later."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _FIELDS_SCHEMA},
                    "multipart/form-data": {"schema": _FIELDS_SCHEMA},
                },
            }
        },
    )
    async def receive_email(
        request: Request,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
        token: Annotated[
            str | None, Query(description="The shared token, for services that cannot set headers.")
        ] = None,
    ) -> EmailAccepted:
        if settings.email_webhook_token is None:
            raise HTTPException(
                503, "the email webhook is not configured: INGEST_EMAIL_WEBHOOK_TOKEN is unset"
            )
        # Several inbound-parse services can only be given a URL, hence the query parameter; the header is
        # preferred because URLs end up in access logs.
        check_token(settings.email_webhook_token.get_secret_value(), authorization, token)
        fields = await read_fields(request, settings.max_body_bytes)
        the_gate = gate()
        try:
            item = parse_email(fields, the_gate.clock(), settings.max_text_chars)
        except MalformedEmail as exc:
            raise HTTPException(400, str(exc)) from None
        except IncompleteEmail as exc:
            raise HTTPException(422, str(exc)) from None
        (outcome,) = await store_or_refuse(the_gate, [item], settings.retry_after_seconds, "email")
        return EmailAccepted(message_id=outcome.event.data.message_id, status=outcome.status)

    return api
