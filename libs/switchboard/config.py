"""Settings shared by every service: where the broker and Redis are, and how to talk to them."""

from __future__ import annotations

import os
import ssl
from typing import Annotated

from aiokafka.helpers import create_ssl_context
from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})


def blank_as_none(value: object) -> object:
    """Read an empty or whitespace-only setting as unset: `VAR=` in an env file means "not configured"."""
    if isinstance(value, SecretStr):
        return None if not value.get_secret_value().strip() else value
    if isinstance(value, str) and not value.strip():
        return None
    return value


# A file path or secret whose empty value means unset, never "configured as empty".
OptionalPath = Annotated[str | None, BeforeValidator(blank_as_none)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(blank_as_none)]


class KafkaSettings(BaseSettings):
    """How a service reaches the Kafka-protocol broker (env prefix `SWITCHBOARD_KAFKA_`)."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    # Apache Kafka supports the idempotent producer; the embedded broker rejects InitProducerId.
    enable_idempotence: bool = False
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    compression_type: str | None = None
    linger_ms: int = 5
    # One record batch per partition and poll: aiokafka's 16 KiB default split a poll into many
    # sequential requests. Keep it under the broker's message.max.bytes (1 MiB by default).
    batch_bytes: int = 262_144
    max_batch_records: int = 500
    poll_timeout_ms: int = 200
    topic_partitions: int = 3
    topic_replication_factor: int = 1
    handler_attempts: int = 3
    # Handle the next poll while the previous one's outputs are acknowledged and its offsets committed
    # (commits stay in poll order). Off (the default): each poll is committed before the next is read.
    # Measured no faster on the router bench, and a rebalance that fails the earlier commit makes the
    # next poll be read again too, so it stays an opt-in.
    overlap_commits: bool = False
    request_timeout_ms: int = 10_000
    # How often every client refreshes the cluster's metadata. A consumer subscribed to a topic that did
    # not exist yet (services starting before the topics job) sees it only at the next refresh, and
    # aiokafka's default is 5 minutes; a refresh is one small request per client.
    metadata_max_age_ms: int = Field(default=30_000, ge=1000)
    # TLS (security_protocol SSL or SASL_SSL). Without a CA file the system's CAs are trusted, which is
    # what a managed Kafka with a public certificate needs; a client certificate is for brokers that
    # authenticate clients by TLS (mutual TLS).
    ssl_cafile: OptionalPath = None
    ssl_certfile: OptionalPath = None
    ssl_keyfile: OptionalPath = None
    ssl_key_password: OptionalSecret = None
    ssl_check_hostname: bool = True

    @model_validator(mode="after")
    def _tls_files_load(self) -> KafkaSettings:
        # At startup, naming the setting, rather than at the first connection as an OpenSSL error.
        if self.security_protocol in TLS_PROTOCOLS:
            self.ssl_context()
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """Build the TLS context of broker connections; raise ValueError naming a setting that is wrong."""
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not (os.path.isfile(path) and os.access(path, os.R_OK)):
                raise ValueError(f"SWITCHBOARD_KAFKA_{name.upper()}={path}: no readable file there")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("SWITCHBOARD_KAFKA_SSL_KEYFILE is set without SWITCHBOARD_KAFKA_SSL_CERTFILE")
        try:
            context = create_ssl_context(cafile=self.ssl_cafile)
        except ssl.SSLError as exc:
            raise ValueError(
                f"SWITCHBOARD_KAFKA_SSL_CAFILE={self.ssl_cafile}: not a PEM file of CA certificates ({exc})"
            ) from None
        if self.ssl_certfile:
            try:
                # What create_ssl_context does with a certificate, but a key that needs a password and has
                # none configured fails here instead of OpenSSL prompting on a terminal nobody watches.
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile, self._key_password)
            except ssl.SSLError as exc:
                raise ValueError(
                    f"SWITCHBOARD_KAFKA_SSL_CERTFILE={self.ssl_certfile} with SWITCHBOARD_KAFKA_SSL_KEYFILE="
                    f"{self.ssl_keyfile}: not a certificate and its private key, or a wrong "
                    f"SWITCHBOARD_KAFKA_SSL_KEY_PASSWORD ({exc})"
                ) from None
        context.check_hostname = self.ssl_check_hostname
        return context

    def _key_password(self) -> str:
        if self.ssl_key_password is None:
            raise ValueError("the private key is encrypted and SWITCHBOARD_KAFKA_SSL_KEY_PASSWORD is unset")
        return self.ssl_key_password.get_secret_value()

    def client_options(self) -> dict[str, object]:
        """Return the connection options aiokafka clients take."""
        options: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
            "metadata_max_age_ms": self.metadata_max_age_ms,
        }
        if self.security_protocol in TLS_PROTOCOLS:
            options["ssl_context"] = self.ssl_context()
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return options


class RedisSettings(BaseSettings):
    """How a service reaches Redis (env prefix `SWITCHBOARD_REDIS_`)."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_REDIS_", extra="ignore")

    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    key_prefix: str = "switchboard:"
    # How long consumers remember handled event ids (between one and two of these). Redelivery after a
    # crash happens within minutes; a day is ample, and memory grows with traffic times this window.
    dedupe_ttl_seconds: int = 24 * 3600


class TracingSettings(BaseSettings):
    """Span export (env prefix `SWITCHBOARD_OTEL_`): off unless an OTLP endpoint is set.

    Trace context propagates whatever this says; this only decides whether spans leave the process.
    """

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_OTEL_", extra="ignore", populate_by_name=True)

    # An OTLP/HTTP base URL (`http://collector:4318`); `/v1/traces` is appended. OpenTelemetry's own
    # variable is read when Switchboard's is unset, so a platform that sets it for every pod just works.
    exporter_otlp_endpoint: Annotated[str | None, BeforeValidator(blank_as_none)] = Field(
        default=None,
        validation_alias=AliasChoices(
            "SWITCHBOARD_OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "exporter_otlp_endpoint"
        ),
    )


class ServiceSettings(BaseSettings):
    """Fields every service has; each service subclasses it with its own env prefix."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)


def env_vars(settings_cls: type[BaseSettings]) -> set[str]:
    """List the environment variables a settings class reads, nested settings included."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    names: set[str] = set()
    for name, field in settings_cls.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            names |= env_vars(annotation)
        else:
            names.add(f"{prefix}{name}".upper())
    return names
