"""Serve the busiest route, `POST /v1/messages`, straight from the middleware stack.

A request to it otherwise passes FastAPI's own layers after ours: the exit-stack middleware, the
router's matching over every route, the request-response wrapper and the dependency solver, about a
fifth of the CPU of a whole request for a handler that takes the bare `Request`. Here the route's own
endpoint is called directly, inside Starlette's ExceptionMiddleware built from the app's exception
handlers as FastAPI builds it, so a refused request is answered exactly as through the router (the
same 4xx bodies and headers, the same metrics). The route stays registered: the OpenAPI document
describes it, and a request this does not recognise (another method, a root path) goes the usual way.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

try:  # FastAPI's native telemetry (0.16x); older releases have none
    from fastapi.telemetry._api import _route_selected
except ImportError:  # pragma: no cover - depends on the FastAPI release
    _route_selected = None


class HotRoute:
    """Answer `route`'s path and method with its endpoint, past FastAPI's router.

    The endpoint must take only the `Request` and return a `Response`, as `post_message` does.
    """

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, route: APIRoute, method: str) -> None:
        assert method in route.methods, f"{route.path} does not answer {method}"
        self.app = app
        self.fastapi_app = fastapi_app
        self.route = route
        self.method = method
        self._handled: ASGIApp | None = None

    def _build(self) -> ASGIApp:
        """Wrap the endpoint in the app's exception handling, at the first request (as FastAPI builds
        its middleware stack then), so handlers registered after this middleware was added count too."""
        endpoint = self.route.endpoint

        async def call_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            response = await endpoint(Request(scope, receive, send))
            await response(scope, receive, send)

        # As FastAPI.build_middleware_stack: a 500 or Exception handler belongs to ServerErrorMiddleware.
        handlers: dict[Any, Any] = {
            k: v for k, v in self.fastapi_app.exception_handlers.items() if k not in (500, Exception)
        }
        return ExceptionMiddleware(call_endpoint, handlers=handlers, debug=self.fastapi_app.debug)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.route.path
            or scope["method"] != self.method
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        if self._handled is None:
            self._handled = self._build()
        # What the router would have set: the request metrics label requests by the route's template,
        # FastAPI's own telemetry (when configured) names the request's span after it.
        scope["route"] = self.route
        scope["endpoint"] = self.route.endpoint
        scope["path_params"] = {}
        if "fastapi.telemetry" in scope and _route_selected is not None:
            _route_selected(scope=scope, path=self.route.path)
        await self._handled(scope, receive, send)
