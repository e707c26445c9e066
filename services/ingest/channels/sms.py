"""SMS through a gateway's form-encoded webhook (Twilio's shape and signature) as inbound messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError

from ingest.answers import store_or_refuse
from ingest.api import MessageIn
from ingest.channels.common import clip
from ingest.config import Settings
from ingest.gate import Gate
from switchboard.contract import Author, Channel

PATH = "/v1/webhooks/sms"
FORM = "application/x-www-form-urlencoded"
# An empty TwiML document: the message is taken, and nothing is sent back to the customer.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MEDIA_TEXT = "[media]"
_DEFAULT_PORTS = {"https": 443, "http": 80}


class MalformedSms(ValueError):
    """The body is not a form-encoded post (400)."""


class IncompleteSms(ValueError):
    """A field the message needs is missing or invalid (422)."""


def _pairs(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


def sms_signature(token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """Return Twilio's signature: base64 HMAC-SHA1 of the URL then each name and value, sorted by name."""
    values: dict[str, set[str]] = {}
    for name, value in _pairs(params):
        values.setdefault(name, set()).add(value)
    # A name posted several times contributes each distinct value in order, as Twilio's own libraries do.
    signed = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """Return the URL as given, and spelt with its default port or without it."""
    # Some gateways sign `https://host:443/...` when configured as `https://host/...`, or the reverse.
    variants = [url]
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return variants
    default = _DEFAULT_PORTS.get(parts.scheme)
    if port is None and default is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")))
    elif port is not None and port == default:
        variants.append(urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])))
    return variants


def verify_sms_signature(
    token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]], signature: str
) -> bool:
    """Return whether the signature is the one the gateway computes for this URL and these fields."""
    pairs = _pairs(params)
    given = signature.strip().encode()
    return any(
        hmac.compare_digest(sms_signature(token, candidate, pairs).encode(), given)
        for candidate in url_variants(url)
    )


def signed_url(public_base_url: str | None, request_url: str, path: str, query: str) -> str:
    """Return the URL the gateway called: the public base URL + path (+ query), else the request URL."""
    if not public_base_url:
        return request_url
    return public_base_url.rstrip("/") + path + (f"?{query}" if query else "")


def read_form(body: bytes) -> list[tuple[str, str]]:
    """Decode a form-encoded body into its name/value pairs, in order; raise `MalformedSms`."""
    if not body.strip():
        return []
    try:
        return parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedSms(f"the body is not form-encoded UTF-8: {exc}") from None


def _count(value: str | None, name: str) -> int:
    if value is None or not value.strip():
        return 0
    try:
        count = int(value)
    except ValueError:
        raise IncompleteSms(f"{name} is not a number: {value[:20]!r}") from None
    if count < 0:
        raise IncompleteSms(f"{name} is negative")
    return count


def parse_sms(form: Mapping[str, str], received_at: datetime, max_text_chars: int | None = None) -> MessageIn:
    """Turn a gateway's SMS webhook fields into a message; raise `IncompleteSms` if one is missing."""
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if not sid:
        raise IncompleteSms("MessageSid (or SmsSid) is missing")
    sender = (form.get("From") or "").strip()
    if not sender:
        raise IncompleteSms("From is missing")
    to = (form.get("To") or "").strip()
    if not to:
        raise IncompleteSms("To is missing")
    num_media = _count(form.get("NumMedia"), "NumMedia")
    metadata: dict[str, Any] = {"to": to}
    if num_media:
        metadata["num_media"] = num_media
        # No more media than fields were posted: NumMedia=10**40 must not send this loop counting for ever.
        metadata["media"] = [
            {"url": form[f"MediaUrl{i}"], "content_type": form.get(f"MediaContentType{i}")}
            for i in range(min(num_media, len(form)))
            if form.get(f"MediaUrl{i}")
        ]
    text = form.get("Body") or ""
    if not text.strip():
        if not num_media:
            raise IncompleteSms("the SMS has no Body and no media")
        text = MEDIA_TEXT
    text = clip(text, metadata, max_text_chars)
    try:
        return MessageIn(
            channel=Channel.SMS,
            external_id=sid,
            conversation_id=f"sms:{to}:{sender}",
            author=Author(id=sender),
            text=text,
            # SMS webhooks carry no time of sending; the time the gateway called is the closest known.
            created_at=received_at,
            visibility="private",
            language=None,
            metadata=metadata,
        )
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'sms'}: {e['msg']}" for e in exc.errors())
        raise IncompleteSms(reasons[:500]) from None


def router(gate: Callable[[], Gate], settings: Settings) -> APIRouter:
    """Build the route SMS gateways post inbound texts to."""
    api = APIRouter(tags=["webhooks"])

    @api.post(
        PATH,
        response_class=Response,
        summary="Receive an SMS from a gateway (Twilio-style form post, X-Twilio-Signature)",
        description=(
            "Form fields From, To, Body, MessageSid (or SmsSid), NumMedia, MediaUrl<n>. Signed with "
            "INGEST_SMS_AUTH_TOKEN over INGEST_PUBLIC_BASE_URL + path when set, else the request URL."
        ),
        responses={
            200: {
                "description": "Stored (or stored already): an empty TwiML response.",
                "content": {"text/xml": {}},
            },
            400: {"description": "The body is not form-encoded."},
            401: {"description": "X-Twilio-Signature is missing."},
            403: {"description": "X-Twilio-Signature does not match."},
            413: {"description": "The body is larger than INGEST_MAX_BODY_BYTES."},
            415: {"description": "Not a form post."},
            422: {"description": "A required field is missing, with the reason."},
            503: {"description": "Not configured, or the broker did not acknowledge: retry later."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    FORM: {
                        "schema": {
                            "type": "object",
                            "properties": {
                                name: {"type": "string"}
                                for name in ("MessageSid", "SmsSid", "From", "To", "Body", "NumMedia")
                            },
                            "required": ["From", "To"],
                        }
                    }
                },
            }
        },
    )
    async def receive_sms(
        request: Request,
        signature: Annotated[str | None, Header(alias="X-Twilio-Signature")] = None,
    ) -> Response:
        if settings.sms_auth_token is None:
            raise HTTPException(503, "the SMS webhook is not configured: INGEST_SMS_AUTH_TOKEN is unset")
        if not signature:
            raise HTTPException(401, "X-Twilio-Signature is missing")
        if request.headers.get("content-type", "").partition(";")[0].strip().lower() != FORM:
            raise HTTPException(415, f"post the SMS as {FORM}")
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            raise HTTPException(413, f"the body is larger than {settings.max_body_bytes} bytes")
        try:
            pairs = read_form(body)
        except MalformedSms as exc:
            raise HTTPException(400, str(exc)) from None
        url = signed_url(settings.public_base_url, str(request.url), request.url.path, request.url.query)
        if not verify_sms_signature(settings.sms_auth_token.get_secret_value(), url, pairs, signature):
            raise HTTPException(403, "X-Twilio-Signature does not match this URL and body")
        the_gate = gate()
        form: dict[str, str] = {}
        for name, value in pairs:
            form.setdefault(name, value)
        try:
            item = parse_sms(form, the_gate.clock(), settings.max_text_chars)
        except IncompleteSms as exc:
            raise HTTPException(422, str(exc)) from None
        await store_or_refuse(the_gate, [item], settings.retry_after_seconds, "SMS")
        return Response(EMPTY_TWIML, media_type="text/xml")

    return api
