"""Everything a component needs to know about the stack it belongs to."""

from __future__ import annotations

import hashlib
import json
import os
import secrets as _secrets
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path

from stack import endpoints as ep
from stack.errors import MissingToolError
from stack.paths import DEPLOY_LOCAL, cache_dir

INSTALL_HINT = "run deploy/local/install.sh (or `make setup`) first"


def kafka_libs_dirname() -> str:
    """``kafka-<version>-<pom hash>``: the directory install.sh resolves the pom into."""
    pom = (DEPLOY_LOCAL / "kafka" / "pom.xml").read_bytes()
    version = pom.split(b"<kafka.version>")[1].split(b"</kafka.version>")[0].decode()
    return f"kafka-{version}-{hashlib.sha256(pom).hexdigest()[:8]}"


TOXIPROXY_VERSION = "v2.12.0"  # keep in step with deploy/local/install.sh

# Debian's zookeeper 3.8 jars, listed one by one: /usr/share/java/* holds several SLF4J bindings.
ZOOKEEPER_CLASSPATH = ":".join(f"/usr/share/java/{jar}.jar" for jar in (
    "zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-simple", "commons-cli", "netty-handler", "netty-common",
    "netty-buffer", "netty-transport", "netty-codec", "netty-resolver", "netty-transport-native-epoll",
    "netty-transport-native-unix-common"))


@dataclass(frozen=True)
class Tools:
    """Paths of the binaries the stack runs. Each can be overridden by an environment variable
    (e.g. ``RESILIENCE_CLICKHOUSE_SERVER`` for a newer ClickHouse than Debian's 18.16)."""

    java: str
    kafka_libs: Path
    toxiproxy: Path
    pg_bindir: Path
    clickhouse_server: str
    prometheus: str
    # ha profile only (checked by :meth:`check_ha`)
    etcd: str = "/usr/bin/etcd"
    patroni: Path = Path("/var/cache/sql-audit-resilience/pg-venv/bin/patroni")
    zookeeper_classpath: str = ""

    @classmethod
    def discover(cls) -> Tools:
        cache = cache_dir()
        return cls(
            java=os.environ.get("RESILIENCE_JAVA", "java"),
            kafka_libs=Path(os.environ.get("RESILIENCE_KAFKA_LIBS", cache / kafka_libs_dirname() / "libs")),
            toxiproxy=Path(os.environ.get("RESILIENCE_TOXIPROXY",
                                          cache / "bin" / f"toxiproxy-server-{TOXIPROXY_VERSION}")),
            pg_bindir=Path(os.environ.get("RESILIENCE_PG_BINDIR", "/usr/lib/postgresql/15/bin")),
            clickhouse_server=os.environ.get("RESILIENCE_CLICKHOUSE_SERVER", "clickhouse-server"),
            prometheus=os.environ.get("RESILIENCE_PROMETHEUS", "prometheus"),
            etcd=os.environ.get("RESILIENCE_ETCD", "/usr/bin/etcd"),
            patroni=Path(os.environ.get("RESILIENCE_PATRONI", cache / "pg-venv" / "bin" / "patroni")),
            zookeeper_classpath=os.environ.get("RESILIENCE_ZOOKEEPER_CLASSPATH", ZOOKEEPER_CLASSPATH),
        )

    def check_ha(self) -> None:
        """Raise :class:`MissingToolError` naming every tool of the ``ha`` profile that is missing
        (etcd, Patroni in the postgres-user venv, the ZooKeeper jars)."""
        missing = []
        if not shutil.which(self.etcd):
            missing.append(f"etcd ({self.etcd})")
        if not os.access(self.patroni, os.X_OK):
            missing.append(f"patroni not at {self.patroni}")
        for jar in self.zookeeper_classpath.split(":"):
            if not Path(jar).exists():
                missing.append(f"ZooKeeper classpath entry {jar}")
        if missing:
            raise MissingToolError("missing for the ha profile: " + "; ".join(missing) + f" — {INSTALL_HINT}")

    def check(self) -> None:
        """Raise :class:`MissingToolError` naming every tool that is not installed."""
        missing = []
        for name, cmd in (("java", self.java), ("clickhouse-server", self.clickhouse_server),
                          ("prometheus", self.prometheus)):
            if not shutil.which(cmd):
                missing.append(f"{name} ({cmd}) not on PATH")
        if not (self.kafka_libs / ".complete").exists() and not list(self.kafka_libs.glob("kafka_2.13-*.jar")):
            missing.append(f"kafka jars not in {self.kafka_libs}")
        if not os.access(self.toxiproxy, os.X_OK):
            missing.append(f"toxiproxy not at {self.toxiproxy}")
        for binary in ("postgres", "initdb"):
            if not os.access(self.pg_bindir / binary, os.X_OK):
                missing.append(f"PostgreSQL {binary} not in {self.pg_bindir}")
        if missing:
            raise MissingToolError("missing: " + "; ".join(missing) + f" — {INSTALL_HINT}")


@dataclass(frozen=True)
class Secrets:
    """Generated once per stack, kept in ``<data-dir>/secrets.json`` (mode 0600), never in git.

    The Kafka, ClickHouse and Prometheus passwords are used by a stack started with ``--secure``
    (:mod:`stack.security`); ``jwt_secret`` is the HS256 key of the Spring service's read API (and of
    the load's API user). A stack made before a secret existed gets it on first use."""

    postgres_password: str
    jwt_secret: str = ""
    kafka_broker_password: str = ""
    kafka_service_password: str = ""
    kafka_suite_password: str = ""
    clickhouse_service_password: str = ""
    clickhouse_suite_password: str = ""
    prometheus_suite_password: str = ""

    @classmethod
    def load_or_create(cls, data_dir: Path) -> Secrets:
        path = data_dir / "secrets.json"
        known = {f.name for f in fields(cls)}
        saved: dict[str, str] = {}
        if path.exists():
            saved = {k: v for k, v in json.loads(path.read_text()).items() if k in known}
        missing = [name for name in known if not saved.get(name)]
        if not missing:
            return cls(**saved)
        # HS256 wants a key of at least 256 bits (Spring's JWT decoder refuses shorter ones)
        values = {**saved, **{name: _secrets.token_urlsafe(48 if name == "jwt_secret" else 18) for name in missing}}
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh)
        tmp.replace(path)
        return cls(**values)

    def __repr__(self) -> str:  # never print the values
        return "Secrets(" + ", ".join(f"{f.name}=***" for f in fields(self)) + ")"


@dataclass
class StackContext:
    """One stack: its profile, ports, directories, tools and secrets."""

    profile: str
    endpoints: ep.Endpoints
    data_dir: Path
    tools: Tools
    replicas: int = 3
    topic: str = ep.TOPIC
    dlq_topic: str = ep.DLQ_TOPIC
    partitions: int = 6
    pg_database: str = ep.PG_DATABASE
    pg_user: str = ep.PG_USER
    ch_database: str = ep.CH_DATABASE
    extra: dict[str, str] = field(default_factory=dict)
    secure: bool = False
    """SASL_SSL on Kafka, passwords on ClickHouse (``resilience up --secure``, :mod:`stack.security`)."""
    service: str = "python"
    """Which audit service the replicas run: ``python`` (``sqlaudit/``) or ``spring`` (``services/spring``)."""
    _secrets: Secrets | None = field(default=None, repr=False)

    @property
    def secrets(self) -> Secrets:
        """The stack's generated secrets, created on first use in ``<data-dir>/secrets.json``."""
        if self._secrets is None:
            self._secrets = Secrets.load_or_create(self.data_dir)
        return self._secrets

    @property
    def conf_dir(self) -> Path:
        return self.data_dir / "conf"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def supervisor_socket(self) -> Path:
        """supervisord's XML-RPC socket (the stack's client and the liveness prober both reach it there)."""
        return self.data_dir / "supervisor.sock"

    def postgres_kwargs(self, via_proxy: bool = False) -> dict[str, object]:
        """psycopg connection keywords for the audit database (direct unless ``via_proxy``).

        On an ``ha`` stack both Patroni members are listed with ``target_session_attrs=read-write``,
        so the connection lands on whichever is primary."""
        port = self.endpoints.port("proxy_postgres" if via_proxy else "postgres")
        kwargs: dict[str, object] = {"host": ep.HOST, "port": port, "dbname": self.pg_database,
                                     "user": self.pg_user, "password": self.secrets.postgres_password}
        if self.profile == "ha":
            port_2 = self.endpoints.port("proxy_postgres_2" if via_proxy else "postgres_2")
            kwargs.update(host=f"{ep.HOST},{ep.HOST}", port=f"{port},{port_2}", target_session_attrs="read-write")
        return kwargs
