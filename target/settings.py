"""One settings model: what the suite is pointed at, resolved from every place a setting can come from.

Every fault, probe and load activity — and the runner — asks :func:`resolve` for a
:class:`TargetSettings`; nothing else reads ``configuration`` keys or ``RESILIENCE_*`` variables.
A key is looked up, in this order, in

1. the Chaos Toolkit ``configuration`` the activity was called with;
2. the target file named by ``RESILIENCE_TARGET_CONFIG`` (``deploy/k8s/base/target.yaml`` in a
   cluster): Chaos Toolkit drops configuration keys an experiment does not declare, so the keys
   of a target that every experiment would otherwise repeat live there;
3. the environment (the ``RESILIENCE_*`` variable of the key, where it has one);
4. the default — for the endpoints of the ``local`` target, the embedded stack's addresses at
   ``stack_port_base``.

Every value remembers where it came from, and every error names the key and that place:
``stack_port_base='x' (from env RESILIENCE_PORT_BASE): expected an integer``.

Credentials are keys too (Kafka SASL/TLS, ClickHouse, PostgreSQL, Prometheus): the model turns them
into logins (:meth:`TargetSettings.kafka_auth` and the others, built by :mod:`clients`). The secret
halves (:data:`SECRET_KEYS`) come only from the environment (a Kubernetes Secret) or the Chaos Toolkit
configuration, never from the target file, and are never shown: not in ``repr``, not in an error.

The keys, their variables and defaults are the table :data:`KEYS`; ``docs/faults.md``
("Configuration keys") holds its rendering, ``python -m target.settings`` (a test keeps them in step).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chaoslib.exceptions import ActivityFailed
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from clients.clickhouse import ClickHouseAuth
from clients.http_auth import HttpAuth
from clients.kafka import KafkaAuth
from stack.endpoints import DEFAULT_PORT_BASE, Endpoints
from stack.paths import DEFAULT_DATA_ROOT, default_data_dir
from stack.security import client_credentials
from target.contract import DataContract

__all__ = ["DEFAULT_STATE_DIR", "KEYS", "SECRET_KEYS", "TARGET_FILE_ENV", "Key", "SettingsError", "TargetSettings",
           "parse_bool", "resolve", "target_file"]

DEFAULT_STATE_DIR = DEFAULT_DATA_ROOT / "faults"
"""Where the fault journal lives by default (outside git on purpose)."""

DEFAULT_HEARTBEAT_TIMEOUT = 3.0
"""Seconds without a heartbeat before the watchdog takes a live runner for hung (a dead one it sees at
once): with its 0.5 s poll, a hung runner's faults are reverted within 5 s (docs/faults.md; the cost of
beating every 0.6 s: benchmarks/heartbeat_cost.py, docs/benchmarks.md)."""
TARGET_FILE_ENV = "RESILIENCE_TARGET_CONFIG"
SERVICES_WITH_API = ("spring",)
API_SECRET_ENV = "RESILIENCE_API_JWT_SECRET"
"""Services with the read API (``GET /api/v1/...`` behind HS256 JWTs) that the load also reads."""
JIT_WARM_UP_S = {"spring": 60.0}
"""Seconds of load a freshly started replica of these services gets before a run's baseline (the JVM's JIT: its
first minute of load is slower than its steady state; docs/scenarios.md)."""
KINDS = ("local", "kubernetes")


class SettingsError(ActivityFailed):
    """A setting that cannot be used; the message names the key and where its value came from."""


@dataclass(frozen=True)
class Key:
    """One setting: its ``configuration`` key, its environment variable and what it means."""

    name: str
    env: str | None
    doc: str


KEYS: tuple[Key, ...] = (
    Key("target", "RESILIENCE_TARGET", "`local` (default) or `kubernetes`: which backend acts"),
    Key("stack_port_base", "RESILIENCE_PORT_BASE", f"local: port base of the stack (default {DEFAULT_PORT_BASE})"),
    Key("stack_data_dir", "RESILIENCE_DATA_DIR", "local: data dir of the stack (default: derived from the port base)"),
    Key("fault_state_dir", "RESILIENCE_STATE_DIR", f"where the fault journal lives (default {DEFAULT_STATE_DIR})"),
    Key("run_id", "RESILIENCE_RUN_ID", "groups the faults of one run (default: one id per Python process)"),
    Key("run_started_at", "RESILIENCE_RUN_STARTED_AT", "Unix time the run began (set by the runner): the recovery "
                                                       "probes read the baseline before the fault from it, as the "
                                                       "judge does"),
    Key("dry_run", None, "`true`: validate, read the system, log what would change, change nothing"),
    Key("heartbeat_timeout", None, f"seconds without a heartbeat before the watchdog takes a live runner for hung "
                                   f"and reverts the run's faults (a dead one: at once; default "
                                   f"{DEFAULT_HEARTBEAT_TIMEOUT:g})"),
    Key("watchdog", None, "`false` disables the detached watchdog (cleanup and expiry timers remain)"),
    Key("max_replicas_killed", None, "cap on replicas one kill may take down (default: all but one)"),
    Key("prometheus_url", None, "Prometheus base URL (local: the stack's)"),
    Key("kafka_bootstrap", None, "Kafka bootstrap servers the load and the probes use (local: the stack's direct "
                                 "listener)"),
    Key("clickhouse_host", None, "ClickHouse native-protocol host read by the data-loss check (local: the stack's)"),
    Key("clickhouse_port", None, "its port"),
    Key("kafka_security_protocol", "RESILIENCE_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT (default), SSL, SASL_PLAINTEXT "
                                                                         "or SASL_SSL (local: the stack's)"),
    Key("kafka_sasl_mechanism", "RESILIENCE_KAFKA_SASL_MECHANISM", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    Key("kafka_username", "RESILIENCE_KAFKA_USERNAME", "the SASL user of the load, the lag reader and the drain"),
    Key("kafka_password", "RESILIENCE_KAFKA_PASSWORD", "its password (secret: environment or Chaos Toolkit "
                                                       "configuration only, never a file)"),
    Key("kafka_ca_file", "RESILIENCE_KAFKA_CA_FILE", "PEM file of the CA of the brokers' certificates (TLS)"),
    Key("clickhouse_user", "RESILIENCE_CLICKHOUSE_USER", "ClickHouse user of the data-loss checks (default "
                                                         "`default`)"),
    Key("clickhouse_password", "RESILIENCE_CLICKHOUSE_PASSWORD", "its password (secret)"),
    Key("clickhouse_secure", "RESILIENCE_CLICKHOUSE_SECURE", "`true`: TLS on the native protocol (point "
                                                             "`clickhouse_port` at the secure port, 9440)"),
    Key("clickhouse_ca_file", "RESILIENCE_CLICKHOUSE_CA_FILE", "PEM file of the CA of ClickHouse's certificate"),
    Key("postgres_dsn", "RESILIENCE_POSTGRES_DSN", "libpq URL of the service's database, without password (the "
                                                   "violations check; local: the stack's)"),
    Key("postgres_password", "RESILIENCE_POSTGRES_PASSWORD", "its password (secret)"),
    Key("prometheus_token", "RESILIENCE_PROMETHEUS_TOKEN", "bearer token sent to Prometheus (secret)"),
    Key("prometheus_username", "RESILIENCE_PROMETHEUS_USERNAME", "basic-auth user for Prometheus"),
    Key("prometheus_password", "RESILIENCE_PROMETHEUS_PASSWORD", "its password (secret)"),
    Key("contract", None, "the service's data contract: topic, consumer group, event format, store tables and "
                          "columns (target/contract.py; default: the reference service's)"),
    Key("expected_replicas", None, "replicas the service runs (default 3)"),
    Key("replica_urls", None, "base URLs of the replicas' HTTP ports (local: derived; kubernetes: required where "
                              "a probe reads them)"),
    Key("slo_file", None, "SLO catalogue (default docs/slo.yaml)"),
    Key("api_urls", "RESILIENCE_API_URLS", "base URLs of the service's JWT read API the load also reads (default: "
                                           "local with the spring service, the replicas; else none). The token "
                                           "key: env RESILIENCE_API_JWT_SECRET, on the local stack its own"),
    Key("service", "RESILIENCE_SERVICE", "which audit service the target runs: `python` (default, the reference "
                                         "service) or `spring` (services/spring); picks the target's metric "
                                         "profiles for it in the SLO catalogue (`targets.<target>.services`)"),
    Key("metric_profiles", "RESILIENCE_METRIC_PROFILES", "the metric profiles of the SLO catalogue to read the "
                                                         "service with, first wins (default: the target's)"),
    Key("metric_selector", "RESILIENCE_METRIC_SELECTOR", "label matchers selecting the service in PromQL (default: "
                                                         "the target's in the SLO catalogue)"),
    Key("load_dir", "RESILIENCE_LOAD_DIR", "run directory of the load (default reports/adhoc/<run_id>/load)"),
    Key("ledger_dir", "RESILIENCE_LEDGER_DIR", "the load's ledger of acknowledged events (default <load_dir>/ledger)"),
    Key("history_url", "RESILIENCE_HISTORY_URL", "the run history: an SQLAlchemy URL or PostgreSQL DSN (default: "
                                                 "SQLite history.sqlite in the data root; docs/history.md)"),
)
"""Every key the suite reads; ``k8s_*`` and ``allow_production`` are described in :mod:`target.kubernetes`."""

_ENV = {k.name: k.env for k in KEYS if k.env}

SECRET_KEYS = ("kafka_password", "clickhouse_password", "postgres_password", "prometheus_token",
               "prometheus_password")
"""Keys whose values are secrets: never read from the target file (a file in git or a ConfigMap), never shown."""

_process_run_id: str | None = None


def process_run_id() -> str:
    """The run id of this process when none is configured: ``adhoc-<start time>-<pid>`` (fixed on first use)."""
    global _process_run_id
    if _process_run_id is None:
        _process_run_id = f"adhoc-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
    return _process_run_id


def parse_bool(value: Any, key: str, source: str = "configuration") -> bool:
    """A boolean from YAML (``true``) or an environment string (``"1"``, ``"off"``...)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{key}={value!r} (from {source}): expected true or false")


def target_file(environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], str | None]:
    """The keys of the file named by ``RESILIENCE_TARGET_CONFIG`` and its path (``({}, None)`` without one)."""
    env = os.environ if environ is None else environ
    path = env.get(TARGET_FILE_ENV)
    if not path:
        return {}, None
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{TARGET_FILE_ENV}={path}: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{TARGET_FILE_ENV}={path}: expected a mapping of configuration keys")
    return data, path


class TargetSettings(BaseModel):
    """The validated settings of one target; :attr:`sources` says where each value came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: Literal["local", "kubernetes"] = "local"
    stack_port_base: int = Field(default=DEFAULT_PORT_BASE, ge=1024, le=65535)
    stack_data_dir: Path | None = None
    fault_state_dir: Path = DEFAULT_STATE_DIR
    run_id: str = Field(default_factory=process_run_id, pattern=r"^[A-Za-z0-9._-]+$")
    run_started_at: float | None = Field(default=None, gt=0)
    dry_run: bool = False
    heartbeat_timeout: float = Field(default=DEFAULT_HEARTBEAT_TIMEOUT, gt=0)
    watchdog: bool = True
    max_replicas_killed: int | None = Field(default=None, ge=0)
    prometheus_url: str | None = None
    kafka_bootstrap: str | None = None
    clickhouse_host: str | None = None
    clickhouse_port: int | None = Field(default=None, ge=1, le=65535)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ca_file: Path | None = None
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr | None = None
    clickhouse_secure: bool = False
    clickhouse_ca_file: Path | None = None
    postgres_dsn: str | None = None
    postgres_password: SecretStr | None = None
    prometheus_token: SecretStr | None = None
    prometheus_username: str | None = None
    prometheus_password: SecretStr | None = None
    contract: DataContract = Field(default_factory=DataContract)
    expected_replicas: int = Field(default=3, ge=1)
    replica_urls: tuple[str, ...] = ()
    slo_file: Path | None = None
    api_urls: tuple[str, ...] = ()
    service: str = Field(default="python", pattern=r"^[a-z][a-z0-9-]*$")
    metric_profiles: tuple[str, ...] = ()
    metric_selector: str | None = None
    load_dir: Path | None = None
    ledger_dir: Path | None = None
    history_url: str | None = None
    kubernetes_keys: dict[str, Any] = Field(default_factory=dict)
    """The ``k8s_*`` and ``allow_production`` keys (validated by :class:`target.kubernetes.KubeSettings`)."""
    sources: dict[str, str] = Field(default_factory=dict, exclude=True)

    @field_validator("stack_data_dir", "fault_state_dir", "load_dir", "ledger_dir", "slo_file", "kafka_ca_file",
                     "clickhouse_ca_file", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("postgres_dsn", mode="after")
    @classmethod
    def _no_password_in_dsn(cls, value: str | None) -> str | None:
        if value and ("password=" in value.lower() or re.search(r"://[^/@]*:[^/@]*@", value)):
            raise ValueError("the DSN holds a password: put it in RESILIENCE_POSTGRES_PASSWORD instead")
        return value

    @field_validator("dry_run", "watchdog", "clickhouse_secure", mode="before")
    @classmethod
    def _boolean(cls, value: Any, info: ValidationInfo) -> bool:
        return parse_bool(value, info.field_name or "value")

    @field_validator("prometheus_url", mode="after")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("replica_urls", "metric_profiles", "api_urls", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(u.strip() for u in value.split(",") if u.strip())
        return value

    # ---------------------------------------------------------------- derived
    @property
    def is_local(self) -> bool:
        return self.target == "local"

    @property
    def target_key(self) -> str:
        """Which system this run acts on: ``local:<port base>`` or ``kubernetes:<context>/<namespace>``.

        Several stacks (and their runs) share one machine and one fault journal; the residue audit
        counts only the helpers of runs with this key as this target's.
        """
        if self.is_local:
            return f"local:{self.stack_port_base}"
        keys = self.kubernetes_keys
        return f"kubernetes:{keys.get('k8s_context') or ''}/{keys.get('k8s_namespace') or ''}"

    @property
    def topic(self) -> str:
        return self.contract.topic

    @property
    def consumer_group(self) -> str:
        return self.contract.consumer_group

    def source(self, key: str) -> str:
        """Where ``key`` came from (``configuration``, ``target file <path>``, ``env VAR``, ``default``)."""
        return self.sources.get(key, "default")

    def require(self, key: str, what: str) -> Any:
        """The value of ``key``; :class:`SettingsError` saying ``what`` needs it when it is unset."""
        value = getattr(self, key)
        if value in (None, "", ()):
            where = "the local stack" if self.is_local else f"target {self.target}"
            raise SettingsError(f"{what}: configuration key {key} is required for {where} (set it in the "
                                f"experiment's configuration or the file named by {TARGET_FILE_ENV})")
        return value

    def stack_endpoints(self) -> Endpoints:
        """The local stack's addresses (pure arithmetic on the port base)."""
        return Endpoints(self.stack_port_base)

    @property
    def has_read_api(self) -> bool:
        """Whether the service has the JWT read API (the Spring one; the Python reference service has none)."""
        return self.service in SERVICES_WITH_API

    @property
    def warm_up_s(self) -> float:
        """Seconds of load a freshly started replica needs before it serves at its steady state (0: none)."""
        return JIT_WARM_UP_S.get(self.service, 0.0)

    def api_token_key(self, what: str) -> str:
        """The HS256 key of the read API's tokens: ``RESILIENCE_API_JWT_SECRET``, or on the local target the
        stack's own. Raises :class:`ActivityFailed` naming the variable when there is none."""
        secret = os.environ.get(API_SECRET_ENV)
        if not secret and self.is_local:
            from stack.core import LocalStack

            secret = LocalStack(port_base=self.stack_port_base, data_dir=self.stack_data_dir).ctx.secrets.jwt_secret
        if not secret:
            raise ActivityFailed(f"{what}: the read API's token key is needed, in {API_SECRET_ENV}")
        return secret

    @property
    def reads_api(self) -> bool:
        """Whether the run can reach the service's read API: ``api_urls`` given, or a local service that has one."""
        return bool(self.api_urls) or (self.has_read_api and self.is_local)

    def read_api_urls(self, what: str) -> list[str]:
        """The read API's base URLs: ``api_urls``, or on the local target each replica's; ``[]`` when there is none."""
        if self.api_urls:
            return list(self.api_urls)
        return self.replica_base_urls(what) if self.reads_api else []

    def replica_base_urls(self, what: str) -> list[str]:
        """``replica_urls``, or on the local target one URL per expected replica."""
        if self.replica_urls:
            return list(self.replica_urls)
        if not self.is_local:
            self.require("replica_urls", what)
        ep = self.stack_endpoints()
        return [f"http://127.0.0.1:{ep.replica_port(i)}" for i in range(self.expected_replicas)]

    # ------------------------------------------------------------ credentials
    def _ca_file(self, key: str) -> str | None:
        """The CA file of ``key``, checked readable when credentials are built (a preset names a path that
        exists only in the runner's pod, so resolving it elsewhere must not fail)."""
        path: Path | None = getattr(self, key)
        if path is None:
            return None
        if not path.is_file():
            raise SettingsError(f"{key}={str(path)!r} (from {self.source(key)}): not a readable file")
        return str(path)

    def kafka_auth(self) -> KafkaAuth:
        """How the suite logs in to Kafka (:mod:`clients.kafka`); :class:`SettingsError` names the keys."""
        ca_file = self._ca_file("kafka_ca_file")
        try:
            return KafkaAuth(security_protocol=self.kafka_security_protocol, sasl_mechanism=self.kafka_sasl_mechanism,
                             username=self.kafka_username, password=_secret(self.kafka_password), ca_file=ca_file)
        except ValueError as exc:
            keys = ", ".join(f"{k} (from {self.source(k)})" for k in ("kafka_security_protocol",
                                                                      "kafka_sasl_mechanism", "kafka_username",
                                                                      "kafka_password"))
            raise SettingsError(f"Kafka credentials: {exc} — {keys}") from None

    def clickhouse_auth(self) -> ClickHouseAuth:
        """How the suite logs in to ClickHouse (:mod:`clients.clickhouse`)."""
        return ClickHouseAuth(user=self.clickhouse_user, password=_secret(self.clickhouse_password) or "",
                              secure=self.clickhouse_secure, ca_file=self._ca_file("clickhouse_ca_file"))

    def prometheus_auth(self) -> HttpAuth:
        """How the suite logs in to Prometheus (:mod:`clients.http_auth`)."""
        try:
            return HttpAuth(bearer_token=_secret(self.prometheus_token), username=self.prometheus_username,
                            password=_secret(self.prometheus_password))
        except ValueError as exc:
            raise SettingsError(f"Prometheus credentials: {exc} (prometheus_token from "
                                f"{self.source('prometheus_token')}, prometheus_username from "
                                f"{self.source('prometheus_username')})") from None

    def postgres_kwargs(self) -> dict[str, Any] | None:
        """psycopg keywords of the service's database (``postgres_dsn`` with ``postgres_password``); ``None``
        when no DSN is set."""
        if not self.postgres_dsn:
            return None
        kwargs: dict[str, Any] = {"conninfo": self.postgres_dsn}
        if self.postgres_password is not None:
            kwargs["password"] = self.postgres_password.get_secret_value()
        return kwargs

    def secret_values(self) -> list[str]:
        """Every secret value set (for the run's redactor)."""
        values = [_secret(getattr(self, k)) for k in SECRET_KEYS]
        return [v for v in values if v]

    def journal_configuration(self) -> dict[str, Any]:
        """The keys a later ``cleanup`` (another process) needs to reach the same stack and journal again."""
        cfg: dict[str, Any] = {"target": self.target, "stack_port_base": self.stack_port_base,
                               "fault_state_dir": str(self.fault_state_dir), "run_id": self.run_id,
                               "heartbeat_timeout": self.heartbeat_timeout}
        if self.stack_data_dir is not None:
            cfg["stack_data_dir"] = str(self.stack_data_dir)
        cfg.update(self.kubernetes_keys)
        return cfg


def resolve(configuration: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
            ) -> TargetSettings:
    """Resolve ``configuration``, the target file and the environment into :class:`TargetSettings`.

    Raises:
        SettingsError: a value of the wrong type or out of range, or an unreadable target file; the
            message names the key and where the value came from.
    """
    env = os.environ if environ is None else environ
    file_keys, file_path = target_file(env)
    given = dict(configuration or {})
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    kube: dict[str, Any] = {}
    known = {k.name for k in KEYS}
    for layer, where in ((file_keys, f"target file {file_path}"), (given, "configuration")):
        for key, value in layer.items():
            if key.startswith("k8s_") or key == "allow_production":
                kube[key] = value
            elif key in SECRET_KEYS and layer is file_keys and value not in (None, ""):
                raise SettingsError(f"{key} (from {where}): a secret never goes in a file; set {_ENV[key]} "
                                    "(in Kubernetes, from a Secret: env valueFrom.secretKeyRef)")
            elif key in known and value is not None:
                values[key], sources[key] = value, where
    for key, var in _ENV.items():
        if key not in values and env.get(var) not in (None, ""):
            values[key], sources[key] = env[var], f"env {var}"
    kind = str(values.get("target", "local")).strip().lower()
    values["target"] = kind
    if kind not in KINDS:
        raise SettingsError(f"target={values['target']!r} (from {sources.get('target', 'default')}): "
                            f"expected one of {', '.join(KINDS)}")
    try:
        settings = TargetSettings.model_validate({**values, "kubernetes_keys": kube, "sources": sources})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            field = ".".join(str(x) for x in err["loc"]) or "?"
            value = values.get(key)
            for part in err["loc"][1:]:
                value = value.get(part) if isinstance(value, dict) else value
            shown = "***" if key in (*SECRET_KEYS, "postgres_dsn") else repr(value)
            problems.append(f"{field}={shown} (from {sources.get(key, 'default')}): {err['msg']}")
        raise SettingsError("; ".join(problems)) from None
    if settings.is_local:
        settings = _with_local_defaults(settings)
    return settings


def _with_local_defaults(s: TargetSettings) -> TargetSettings:
    """Fill the endpoints a local target leaves unset from the stack at ``stack_port_base``, and, for a
    stack started with ``--secure``, its credentials (a key set anywhere else wins: a test gives a wrong one)."""
    ep = s.stack_endpoints()
    defaults: dict[str, Any] = {"prometheus_url": ep.prometheus_url, "kafka_bootstrap": ep.kafka_bootstrap,
                                "clickhouse_host": ep.clickhouse_host, "clickhouse_port": ep.clickhouse_port}
    creds = client_credentials(s.stack_data_dir or default_data_dir(s.stack_port_base))
    if creds is not None:
        defaults.update(kafka_security_protocol=creds.kafka.security_protocol,
                        kafka_sasl_mechanism=creds.kafka.sasl_mechanism, kafka_username=creds.kafka.username,
                        kafka_password=SecretStr(creds.kafka.password or ""),
                        kafka_ca_file=Path(creds.kafka.ca_file) if creds.kafka.ca_file else None,
                        clickhouse_user=creds.clickhouse.user, clickhouse_password=SecretStr(creds.clickhouse.password),
                        clickhouse_port=ep.port("clickhouse_tcp_secure"), clickhouse_secure=creds.clickhouse.secure,
                        clickhouse_ca_file=Path(creds.clickhouse.ca_file) if creds.clickhouse.ca_file else None)
        if creds.prometheus.username and "prometheus_token" not in s.sources:
            defaults.update(prometheus_username=creds.prometheus.username,
                            prometheus_password=SecretStr(creds.prometheus.password or ""))
    fill = {k: v for k, v in defaults.items() if k not in s.sources}  # a key set anywhere has its source
    sources = {**s.sources, **{k: f"local stack at port base {s.stack_port_base}" for k in fill}}
    return s.model_copy(update={**fill, "sources": sources})


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def render_keys_table() -> str:
    """The keys as the Markdown table ``docs/faults.md`` shows (``python -m target.settings``)."""
    lines = ["| key | environment variable | meaning |", "|---|---|---|"]
    lines += [f"| `{k.name}` | {f'`{k.env}`' if k.env else '—'} | {k.doc} |" for k in KEYS]
    lines.append("| `k8s_*`, `allow_production` | — | the Kubernetes target's keys (`target/kubernetes.py`, below) |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_keys_table(), end="")
