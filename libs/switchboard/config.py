"""Settings shared by every service: where the broker and Redis are, and how to talk to them."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    request_timeout_ms: int = 10_000

    def client_options(self) -> dict[str, object]:
        """Return the connection options aiokafka clients take."""
        options: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
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


class ServiceSettings(BaseSettings):
    """Fields every service has; each service subclasses it with its own env prefix."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)


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
