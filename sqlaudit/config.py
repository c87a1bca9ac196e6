"""Configuration of the SQL Audit Service, 12-factor style.

Everything comes from ``SQLAUDIT_*`` environment variables (:class:`Settings`),
except the checker thresholds, which come from a YAML file (default
``sqlaudit/checkers.yaml``, path in ``SQLAUDIT_CHECKERS_CONFIG``) whose values
can each be overridden by ``SQLAUDIT_CHECK_<CHECKER>_<FIELD>``.

Secrets (``SQLAUDIT_PG_PASSWORD``, ``SQLAUDIT_CH_PASSWORD``, ``SQLAUDIT_KAFKA_PASSWORD``) are never shown
by :meth:`Settings.redacted`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

__all__ = [
    "DEFAULT_CHECKERS_FILE",
    "ENV_PREFIX",
    "ActualImpactConfig",
    "CheckersConfig",
    "ConfigError",
    "ErrorRateConfig",
    "FrequencyConfig",
    "Settings",
    "SlowQueryConfig",
    "load_checkers_config",
    "load_settings",
]

ENV_PREFIX = "SQLAUDIT_"
CHECK_ENV_PREFIX = "SQLAUDIT_CHECK_"
DEFAULT_CHECKERS_FILE = Path(__file__).parent / "checkers.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file or variable and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlowQueryConfig(_Strict):
    """SlowQuery: WARNING when ``duration_ms > threshold_ms``, CRITICAL when ``> critical_ms``."""

    enabled: bool = True
    threshold_ms: int = Field(default=1000, ge=0)
    critical_ms: int = Field(default=5000, ge=0)


class ActualImpactConfig(_Strict):
    """ActualImpact: UPDATE/DELETE with ``rows_affected > threshold_rows`` (CRITICAL ``> critical_rows``)."""

    enabled: bool = True
    threshold_rows: int = Field(default=1000, ge=0)
    critical_rows: int = Field(default=10000, ge=0)


class ErrorRateConfig(_Strict):
    """ErrorRate: per-app error ratio over a tumbling ``produced_at`` window."""

    enabled: bool = True
    window_ms: int = Field(default=10000, gt=0)
    min_events: int = Field(default=20, ge=1)
    threshold: float = Field(default=0.5, ge=0, le=1)
    critical: float = Field(default=0.9, ge=0, le=1)


class FrequencyConfig(_Strict):
    """Frequency: the same normalised statement of an app more than ``threshold`` times per window."""

    enabled: bool = True
    window_ms: int = Field(default=10000, gt=0)
    threshold: int = Field(default=100, ge=1)
    critical: int = Field(default=1000, ge=1)


class CheckersConfig(_Strict):
    """All checker thresholds (the YAML file's schema)."""

    slow_query: SlowQueryConfig = SlowQueryConfig()
    actual_impact: ActualImpactConfig = ActualImpactConfig()
    error_rate: ErrorRateConfig = ErrorRateConfig()
    frequency: FrequencyConfig = FrequencyConfig()
    state_retention_ms: int = Field(default=120000, gt=0)


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """``SQLAUDIT_CHECK_<CHECKER>_<FIELD>`` variables as a nested dict (unknown ones raise)."""
    out: dict[str, Any] = {}
    sections = {name: model for name, model in CheckersConfig.model_fields.items()}
    for key, value in env.items():
        if not key.startswith(CHECK_ENV_PREFIX):
            continue
        rest = key[len(CHECK_ENV_PREFIX):].lower()
        if rest == "state_retention_ms":
            out["state_retention_ms"] = value
            continue
        for section, info in sections.items():
            model = info.annotation
            if rest.startswith(section + "_") and isinstance(model, type) and issubclass(model, BaseModel):
                field = rest[len(section) + 1:]
                if field not in model.model_fields:
                    raise ConfigError(f"{key}: {section} has no field {field!r} "
                                      f"(known: {', '.join(model.model_fields)})")
                out.setdefault(section, {})[field] = value
                break
        else:
            raise ConfigError(f"{key}: unknown checker (known: {', '.join(sections)})")
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_checkers_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> CheckersConfig:
    """Load checker thresholds from ``path`` (default: ``$SQLAUDIT_CHECKERS_CONFIG`` or the packaged
    ``checkers.yaml``), then apply ``SQLAUDIT_CHECK_*`` overrides from ``env`` (default ``os.environ``).

    Raises :class:`ConfigError` naming the file (or variable) and the field when a value is invalid.
    """
    env = os.environ if env is None else env
    path = Path(path or env.get("SQLAUDIT_CHECKERS_CONFIG") or DEFAULT_CHECKERS_FILE)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read checker config: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        CheckersConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
    overrides = _env_overrides(env)
    try:
        # Environment values are strings: lax mode converts "2000" and "false".
        return CheckersConfig.model_validate(_merge(data, overrides))
    except ValidationError as exc:
        raise ConfigError(f"{path} with SQLAUDIT_CHECK_* overrides: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "<root>"
    return f"field {field}: {err['msg']}"


class Settings(BaseModel):
    """Runtime settings of one replica; each field ``x`` is the variable ``SQLAUDIT_X``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    replica: str = Field(default_factory=socket.gethostname, description="Replica name; a label on every metric.")
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers, comma separated.")
    topic: str = Field(default="sql-audit-events", description="Topic of SQL events.")
    dlq_topic: str = Field(default="sql-audit-events-dlq", description="Dead-letter topic of invalid events.")
    group_id: str = Field(default="sql-audit-service", description="Kafka consumer group.")
    session_timeout_ms: int = Field(default=10000, ge=6000, description="Kafka group session timeout.")
    heartbeat_interval_ms: int = Field(default=2000, ge=100, description="Kafka group heartbeat interval.")
    max_poll_interval_ms: int = Field(default=60000, ge=10000,
                                      description="Kafka max.poll.interval.ms (also the rebalance timeout).")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Kafka security protocol.")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="Kafka SASL mechanism (SASL protocols).")
    kafka_username: str | None = Field(default=None, description="Kafka SASL user.")
    kafka_password: SecretStr = Field(default=SecretStr(""), description="Kafka SASL password (secret).")
    kafka_ca_file: Path | None = Field(default=None, description="PEM file of the CA of the brokers' certificates.")
    ch_host: str = Field(default="127.0.0.1", description="ClickHouse host (native protocol).")
    ch_port: int = Field(default=9000, description="ClickHouse native TCP port.")
    ch_alt_hosts: str = Field(default="", pattern=r"^$|^[^,:\s]+:\d+(,[^,:\s]+:\d+)*$",
                              description="Further ClickHouse replicas as host:port, comma separated, "
                                                      "tried in turn when the current one fails (clickhouse-driver "
                                                      "alt_hosts); empty: ch_host only.")
    ch_database: str = Field(default="sqlaudit", description="ClickHouse database holding audit_events.")
    ch_table: str = Field(default="audit_events", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                          description="Table the events are inserted into: audit_events, or the Distributed "
                                      "table over it on a sharded cluster (inserted synchronously).")
    ch_user: str = Field(default="default", description="ClickHouse user.")
    ch_password: SecretStr = Field(default=SecretStr(""), description="ClickHouse password (secret).")
    ch_timeout_s: float = Field(default=5.0, gt=0, description="ClickHouse connect and send/receive timeout.")
    pg_dsn: str = Field(default="postgresql://sqlaudit@127.0.0.1:5432/sqlaudit",
                        description="libpq conninfo or URL, without password; may list several hosts "
                                    "(target_session_attrs=read-write is added when absent).")
    pg_password: SecretStr = Field(default=SecretStr(""), description="PostgreSQL password (secret).")
    pg_timeout_s: float = Field(default=5.0, gt=0, description="PostgreSQL connect and statement timeout.")
    batch_size: int = Field(default=500, ge=1, le=50000, description="Events per batch (flush when reached).")
    flush_interval_ms: int = Field(default=50, ge=1,
                                   description="Flush a non-empty batch this long after its first record, unless "
                                               "batch_size is reached first: the wait every event pays at low rates.")
    retry_backoff_ms: int = Field(default=200, ge=1, description="First retry delay after a sink failure.")
    retry_backoff_max_ms: int = Field(default=5000, ge=1, description="Retry delay cap (exponential backoff).")
    shutdown_timeout_s: float = Field(default=20.0, gt=0,
                                      description="SIGTERM: deadline to flush, commit and leave the group.")
    health_interval_s: float = Field(default=2.0, gt=0, description="Period of the sink reachability probes.")
    liveness_timeout_s: float = Field(default=60.0, gt=0,
                                      description="Liveness fails when the main loop is stuck this long.")
    http_host: str = Field(default="127.0.0.1", description="HTTP bind address (metrics and health).")
    http_port: int = Field(default=8080, ge=0, le=65535, description="HTTP port (metrics and health).")
    checkers_config: Path | None = Field(default=None, description="Checker thresholds YAML file.")
    log_level: str = Field(default="INFO", description="Python logging level.")

    @model_validator(mode="after")
    def _backoff_order(self) -> Settings:
        if self.retry_backoff_max_ms < self.retry_backoff_ms:
            raise ValueError("retry_backoff_max_ms must be >= retry_backoff_ms")
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_sasl_mechanism and self.kafka_username and self.kafka_password.get_secret_value()):
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs kafka_sasl_mechanism, "
                             "kafka_username and kafka_password")
        return self

    def kafka_security(self) -> dict[str, Any]:
        """kafka-python keywords of the consumer and the dead-letter producer (``{}`` for PLAINTEXT)."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return {}
        out: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL_"):
            out.update(sasl_mechanism=self.kafka_sasl_mechanism, sasl_plain_username=self.kafka_username,
                       sasl_plain_password=self.kafka_password.get_secret_value())
        if self.kafka_security_protocol in ("SSL", "SASL_SSL") and self.kafka_ca_file:
            out["ssl_cafile"] = str(self.kafka_ca_file)
        return out

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Variable name -> description, for ``--help``."""
        return {ENV_PREFIX + name.upper(): info.description or "" for name, info in cls.model_fields.items()}

    def redacted(self) -> dict[str, object]:
        """The settings as a dict, secrets shown as ``***`` when set."""
        out: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "***" if value.get_secret_value() else ""
            out[name] = str(value) if isinstance(value, Path) else value
        return out


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build :class:`Settings` from ``SQLAUDIT_*`` variables in ``env`` (default ``os.environ``).

    ``overrides`` (e.g. from command-line options) win over the environment; ``None`` values are
    ignored. Raises :class:`ConfigError` naming the variable when a value is invalid.
    """
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env and env[key] != "":
            values[name] = env[key]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "<root>"
        var = ENV_PREFIX + field.upper() if field in Settings.model_fields else field
        raise ConfigError(f"{var}: {err['msg']}") from None
