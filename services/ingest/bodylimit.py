"""Refuse a request body over the size limit (413) or a JSON body that is not UTF-8 (400), before any route.

The body is read from the stream here, never more than the limit plus one chunk, and handed on to the
app as it was received; routes can then read it whole without checking its size again.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.metrics import IngestMetrics

_BODILESS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def is_json(content_type: str | None) -> bool:
    """Tell whether a Content-Type is JSON (`application/json` or `application/*+json`)."""
    kind = (content_type or "").partition(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def utf8_error(body: bytes) -> str | None:
    """Say where a body stops being UTF-8, or None when it is UTF-8."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"the body is not valid UTF-8 (byte {exc.start}: {exc.reason}); JSON must be UTF-8"
    return None


class BodyLimitMiddleware:
    """Read each request body up to `max_bytes`; answer 413 beyond it and 400 for JSON that is not UTF-8."""

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: IngestMetrics) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    def too_large(self) -> JSONResponse:
        self.metrics.rejected.labels("too_large").inc()
        return JSONResponse(
            {"detail": f"the body is larger than {self.max_bytes} bytes (INGEST_MAX_BODY_BYTES)"},
            status_code=413,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODILESS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                self.metrics.rejected.labels("invalid").inc()
                await JSONResponse({"detail": "Content-Length is not a number"}, 400)(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                # Refused before a byte of the body is read.
                await self.too_large()(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self.too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if is_json(headers.get("content-type")):
            reason = utf8_error(body)
            if reason is not None:
                self.metrics.rejected.labels("bad_encoding").inc()
                await JSONResponse({"detail": reason}, status_code=400)(scope, receive, send)
                return
        await self.app(scope, replay(body, receive), send)


def replay(body: bytes, receive: Receive) -> Receive:
    """Return a `receive` that yields the body read already, then what the client sends next."""
    pending = True

    async def receive_again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again
