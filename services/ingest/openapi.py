"""What ingest's OpenAPI document says beyond the routes themselves: errors, examples, keys, webhook bodies.

The channel webhooks read their raw bodies (signatures cover the bytes), so FastAPI cannot see their
shape; it is declared here from the channels' own payload models, with an example of each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from ingest.api import BATCH_EXAMPLE, MESSAGE_EXAMPLES, BatchIn, MessageIn
from ingest.channels import email, meta, sms, x

SECURITY_SCHEMES = {
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An ingest API key (`python -m ingest.keys new <name>`), when INGEST_API_KEYS is set.",
    },
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
# Either scheme will do.
SECURITY = [{"bearerKey": []}, {"apiKeyHeader": []}]

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "object", "additionalProperties": True}},
            ],
            "description": "Why the request was refused: a sentence, or one entry per invalid field.",
        }
    },
    "required": ["detail"],
}


def error(description: str, example: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the OpenAPI description of an error answer, with its JSON body and an example."""
    doc: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ERROR_SCHEMA, "example": {"detail": example}}},
    }
    if headers:
        doc["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
        }
    return doc


RETRY_AFTER = {"Retry-After": "Seconds to wait before retrying."}
BAD_BODY = error(
    "The body cannot be read: JSON that is not UTF-8, or a bad Content-Length.",
    "the body is not valid UTF-8 (byte 17: invalid start byte); JSON must be UTF-8",
)
UNAUTHORIZED = error(
    "No API key, or one that is not configured (only when INGEST_API_KEYS is set).",
    "an API key is required: send the key as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
    {"WWW-Authenticate": "Bearer"},
)
TOO_LARGE = error("The body is larger than INGEST_MAX_BODY_BYTES.", "the body is larger than 5000000 bytes")
RATE_LIMITED = error(
    "The key is over its requests per minute.",
    "key 'webchat' is over its limit of 600 requests per minute",
    RETRY_AFTER,
)
UNAVAILABLE = error(
    "Ingest is starting, or the broker or the claim store (Redis) did not answer in time: nothing was "
    "stored, retry later.",
    "the message was not stored: the broker did not acknowledge it; retry later",
    RETRY_AFTER,
)
# Every route of the generic and activity APIs may answer these.
GUARDED = {400: BAD_BODY, 401: UNAUTHORIZED, 413: TOO_LARGE, 429: RATE_LIMITED, 503: UNAVAILABLE}

META_EXAMPLES = {
    "page_comment": {
        "summary": "A comment on a Page post",
        "value": {
            "object": "page",
            "entry": [
                {
                    "id": "104857600000001",
                    "time": 1763802900,
                    "changes": [
                        {
                            "field": "feed",
                            "value": {
                                "item": "comment",
                                "verb": "add",
                                "post_id": "104857600000001_2200",
                                "comment_id": "2200_7781",
                                "parent_id": "104857600000001_2200",
                                "from": {"id": "6100000042", "name": "Marie L."},
                                "message": "Toujours pas de réseau à Lyon 3e depuis ce matin…",
                                "created_time": 1763802900,
                            },
                        }
                    ],
                }
            ],
        },
    },
    "messenger": {
        "summary": "A Messenger message to the Page",
        "value": {
            "object": "page",
            "entry": [
                {
                    "id": "104857600000001",
                    "time": 1763803000000,
                    "messaging": [
                        {
                            "sender": {"id": "7300000099"},
                            "recipient": {"id": "104857600000001"},
                            "timestamp": 1763803000000,
                            "message": {"mid": "m_AbC123", "text": "Can I move my installation date?"},
                        }
                    ],
                }
            ],
        },
    },
}
X_EXAMPLES = {
    "mention": {
        "summary": "A tweet that mentions the account",
        "value": {
            "for_user_id": "2244994945",
            "tweet_create_events": [
                {
                    "id_str": "1992000000000000001",
                    "text": "@NovaTel toujours pas reçu ma commande #A-48213, ça fait 10 jours !",
                    "timestamp_ms": "1763802900000",
                    "user": {"id_str": "4200000001", "screen_name": "marie_l", "name": "Marie L."},
                    "lang": "fr",
                }
            ],
        },
    }
}
EMAIL_EXAMPLES = {
    "reply": {
        "summary": "A customer's reply, as an inbound-parse service posts it",
        "value": {
            "from": "Marie L. <marie@example.org>",
            "to": "support@novatel.example",
            "subject": "Re: Votre commande A-48213",
            "text": (
                "Toujours rien reçu.\n\nLe 20 nov. 2026 à 10:02, NovaTel a écrit :\n"
                "> Votre colis part demain."
            ),
            "message-id": "<CAF=8821@mail.example.org>",
            "in-reply-to": "<order-48213@novatel.example>",
            "date": "Sun, 22 Nov 2026 09:15:00 +0100",
        },
    }
}
SMS_EXAMPLES = {
    "text": {
        "summary": "An SMS as a gateway posts it (form-encoded)",
        "value": {
            "MessageSid": "SM0123456789abcdef0123456789abcdef",
            "From": "+33612345678",
            "To": "+33700000000",
            "Body": "Bonjour, ma ligne est coupée depuis ce matin.",
            "NumMedia": "0",
        },
    }
}


def json_body(model: type[BaseModel], prefix: str, examples: dict[str, Any]) -> dict[str, Any]:
    """Return the `openapi_extra` declaring a raw JSON body of the model's shape, and the schemas it uses."""
    schema = model.model_json_schema(ref_template=f"#/components/schemas/{prefix}{{model}}")
    defs = {f"{prefix}{name}": sub for name, sub in schema.pop("$defs", {}).items()}
    defs[f"{prefix}{model.__name__}"] = schema
    ref = {"$ref": f"#/components/schemas/{prefix}{model.__name__}"}
    body = {"required": True, "content": {"application/json": {"schema": ref, "examples": examples}}}
    return {"requestBody": body, "x-schemas": defs}


def with_examples(extra: dict[str, Any], examples: dict[str, Any]) -> dict[str, Any]:
    """Add examples to each media type of a route's declared request body."""
    body = extra.get("requestBody", {})
    for media in body.get("content", {}).values():
        media.setdefault("examples", examples)
    return extra


BATCH_EXAMPLES = {"two": {"summary": "A chat and a review", "value": BATCH_EXAMPLE}}

# What the channel and ops routes do not say themselves, by method and path.
EXTRA: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", meta.PATH): {
        "description": "Meta calls this once when the webhook is subscribed; answers `hub.challenge` as is.",
    },
    ("POST", meta.PATH): {
        "openapi": lambda: json_body(meta.Payload, "Meta", META_EXAMPLES),
        "responses": {400: BAD_BODY},
    },
    ("GET", x.PATH): {
        "description": "X calls this on registration and then hourly; answers the HMAC of crc_token.",
    },
    ("POST", x.PATH): {
        "openapi": lambda: json_body(x.Payload, "X", X_EXAMPLES),
        "responses": {400: BAD_BODY},
    },
    ("POST", "/v1/messages"): {
        # The route reads its raw body (the model's JSON validator over the bytes), so its body is declared.
        "openapi": lambda: json_body(MessageIn, "", MESSAGE_EXAMPLES),
    },
    ("POST", "/v1/messages/batch"): {
        # The route reads its raw body (one validation pass for a whole valid batch), so its body is
        # declared here.
        "openapi": lambda: json_body(
            BatchIn, "", {"two": {"summary": "A chat and a review", "value": BATCH_EXAMPLE}}
        ),
    },
    ("POST", email.PATH): {"examples": EMAIL_EXAMPLES, "responses": {400: BAD_BODY}},
    ("POST", sms.PATH): {"examples": SMS_EXAMPLES},
    ("GET", "/healthz"): {"description": "Answers 200 while the process runs; checks nothing else."},
    ("GET", "/readyz"): {
        "description": "200 when Redis and the broker answer, else 503 with each check's result.",
    },
    ("GET", "/metrics"): {"description": "Prometheus text format: requests, refusals by reason, publishes."},
}


class Documentation:
    """Completes routers' routes before they are included, then adds what they need to the document."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def complete(self, api: APIRouter) -> APIRouter:
        """Add what `EXTRA` says to the router's routes; return the router."""
        for route in api.routes:
            if not isinstance(route, APIRoute):
                continue
            for method in route.methods:
                extra = EXTRA.get((method, route.path))
                if extra is not None:
                    self._complete(route, extra)
        return api

    def _complete(self, route: APIRoute, extra: dict[str, Any]) -> None:
        if "description" in extra and not route.description:
            route.description = extra["description"]
        for status, doc in extra.get("responses", {}).items():
            route.responses.setdefault(status, doc)
        build: Callable[[], dict[str, Any]] | None = extra.get("openapi")
        if build is not None:
            declared = build()
            self.schemas.update(declared.pop("x-schemas"))
            route.openapi_extra = {**(route.openapi_extra or {}), **declared}
        if "examples" in extra and route.openapi_extra:
            route.openapi_extra = with_examples(route.openapi_extra, extra["examples"])

    def install(self, app: FastAPI) -> None:
        """Make the app's document carry the webhook schemas and the API key schemes."""
        generate = app.openapi

        def openapi() -> dict[str, Any]:
            document = generate()
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(self.schemas)
            components["securitySchemes"] = SECURITY_SCHEMES
            return document

        app.openapi = openapi  # type: ignore[method-assign]
