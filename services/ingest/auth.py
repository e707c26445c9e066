"""API keys and per-key rate limits in front of the generic and activity APIs.

Checked before the body is read, so a client without a key, or over its limit, costs no parsing.
Channel webhooks carry their own signatures; health, readiness, metrics and the docs stay open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ingest.keys import KeyRing
from ingest.metrics import IngestMetrics
from ingest.ratelimit import RateLimiter

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"})
OPEN_PREFIXES = ("/v1/webhooks/", "/docs/")
HOW = "send the key as `Authorization: Bearer <key>` or `X-API-Key: <key>`"


def is_open(path: str) -> bool:
    """Tell whether a path is served without an API key."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def presented_key(headers: Headers) -> str | None:
    """Return the key a client sent: a Bearer token, else the X-API-Key header."""
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key", "").strip() or None


class ApiKeyMiddleware:
    """Answer 401 without a known key, 429 with `Retry-After` over the key's rate, on guarded paths."""

    def __init__(
        self,
        app: ASGIApp,
        keys: KeyRing,
        default_rate: int,
        limiter: Callable[[], RateLimiter | None],
        metrics: IngestMetrics,
    ) -> None:
        self.app = app
        self.keys = keys
        self.default_rate = default_rate
        self.limiter = limiter
        self.metrics = metrics
        self._limiter_failing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        if is_open(path):
            await self.app(scope, receive, send)
            return
        presented = presented_key(Headers(scope=scope))
        key = self.keys.identify(presented) if presented else None
        if key is None:
            self.metrics.rejected.labels("unauthorized").inc()
            reason = "the API key is not known" if presented else "an API key is required"
            response = JSONResponse(
                {"detail": f"{reason}: {HOW}"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = key.name
        limiter = self.limiter()
        if limiter is not None:
            rate = key.rate_per_minute or self.default_rate
            try:
                decision = await limiter.acquire(key.name, rate)
            except Exception as exc:
                # The limit protects capacity; losing Redis for a moment should not refuse every client.
                if not self._limiter_failing:
                    log.warning("rate limiter unavailable, requests pass unlimited: %s", type(exc).__name__)
                self._limiter_failing = True
            else:
                if self._limiter_failing:
                    log.info("rate limiter available again")
                self._limiter_failing = False
                if not decision.allowed:
                    self.metrics.rejected.labels("rate_limited").inc()
                    response = JSONResponse(
                        {"detail": f"key {key.name!r} is over its limit of {rate} requests per minute"},
                        status_code=429,
                        headers={"Retry-After": decision.retry_after_header()},
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
