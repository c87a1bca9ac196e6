"""The ``--secure`` local stack: the doors of production on loopback.

``resilience up --secure`` starts the same stack with the operations guide's security turned on:

- Kafka's client listeners (DIRECT for the suite, SERVICE for the audit service) speak
  ``SASL_SSL`` with ``SCRAM-SHA-512``; the broker's certificate is signed by a CA made for
  this stack (:func:`ensure_tls`, with the ``cryptography`` package) and names ``127.0.0.1``
  and ``localhost``; the SCRAM users are written into the KRaft metadata when the storage is
  formatted (``kafka-storage format --add-scram``), so they exist before the broker serves anyone.
  The KRaft controller listener stays PLAINTEXT on loopback (no client ever reaches it).
- ClickHouse has no password-less user: the service and the suite log in with their own user
  and password (users.xml holds only SHA-256 hashes); it also speaks the native protocol over TLS
  (``tcp_port_secure``, the same certificate), where the suite reads.
- Prometheus asks for a login (basic auth, ``--web.config.file``; the file holds only a bcrypt hash),
  its own scrape of itself included: the suite reads it as user ``resilience``.
- The audit-service replicas get their credentials in their environment, never on a command line.

Three Kafka users: ``broker`` (inter-broker), ``sqlaudit`` (the service), ``resilience`` (the
suite: load, probes, lag exporter, the stack's own admin client); two ClickHouse users:
``sqlaudit`` and ``resilience``. Every password is generated per stack in ``secrets.json``
(mode 0600, :class:`stack.context.Secrets`).

:func:`client_credentials` is how the settings model (:mod:`target.settings`) learns a local
stack's credentials: only from its data directory, never from a file in git.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from clients.clickhouse import ClickHouseAuth
from clients.http_auth import HttpAuth
from clients.kafka import KafkaAuth
from stack.context import StackContext

__all__ = ["CH_SERVICE_USER", "CH_SUITE_USER", "KAFKA_BROKER_USER", "KAFKA_MECHANISM", "KAFKA_SERVICE_USER",
           "KAFKA_SUITE_USER", "PROMETHEUS_SUITE_USER", "StackCredentials", "Tls", "client_credentials", "ensure_tls",
           "is_secure", "kafka_client_environment", "prometheus_web_config", "sha256_hex", "suite_clickhouse_auth",
           "suite_kafka_auth", "suite_prometheus_auth"]

KAFKA_MECHANISM = "SCRAM-SHA-512"
KAFKA_BROKER_USER = "broker"
KAFKA_SERVICE_USER = "sqlaudit"
KAFKA_SUITE_USER = "resilience"
CH_SERVICE_USER = "sqlaudit"
CH_SUITE_USER = "resilience"
PROMETHEUS_SUITE_USER = "resilience"


@dataclass(frozen=True)
class Tls:
    """The stack's TLS files: the CA certificate clients trust, and the server's key and certificate chain
    in one PEM file (PKCS#8 key first, as Kafka's PEM keystore reads it)."""

    ca_cert: Path
    ca_key: Path
    server_pem: Path

    @classmethod
    def of(cls, data_dir: Path) -> Tls:
        d = data_dir / "tls"
        return cls(ca_cert=d / "ca.pem", ca_key=d / "ca.key", server_pem=d / "server.pem")


def ensure_tls(data_dir: Path, days: int = 825) -> Tls:
    """Make the stack's CA and its server certificate (SAN ``127.0.0.1``, ``localhost``) once; returns the files.

    Kept in ``<data-dir>/tls`` (keys mode 0600); a stack that has them keeps them.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    tls = Tls.of(data_dir)
    if tls.ca_cert.exists() and tls.server_pem.exists():
        return tls
    tls.ca_cert.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sql-audit-resilience stack CA ({data_dir.name})")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pkcs8 = serialization.PrivateFormat.PKCS8
    _write(tls.ca_key, ca_key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()), 0o600)
    _write(tls.server_pem, key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
           + cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM), 0o600)
    _write(tls.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return tls


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


def sha256_hex(password: str) -> str:
    """What ClickHouse's ``password_sha256_hex`` holds (the password itself stays out of users.xml)."""
    return hashlib.sha256(password.encode()).hexdigest()


def is_secure(data_dir: Path) -> bool:
    """Whether the stack in ``data_dir`` was made with ``--secure`` (its ``stack.json`` says so)."""
    try:
        return bool(json.loads((data_dir / "stack.json").read_text()).get("secure"))
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class StackCredentials:
    """The suite's logins to a secure local stack (ClickHouse over TLS on ``clickhouse_tcp_secure``)."""

    kafka: KafkaAuth
    clickhouse: ClickHouseAuth
    prometheus: HttpAuth


def client_credentials(data_dir: Path) -> StackCredentials | None:
    """The suite's credentials for the stack in ``data_dir``; ``None`` when it is not a ``--secure`` stack
    (or has no secrets yet)."""
    if not is_secure(data_dir):
        return None
    try:
        secrets = json.loads((data_dir / "secrets.json").read_text())
    except (OSError, ValueError):
        return None
    if not secrets.get("kafka_suite_password") or not secrets.get("clickhouse_suite_password"):
        return None
    # a secure stack made before Prometheus asked for a login has no password for it: no credentials then
    prometheus = (HttpAuth(username=PROMETHEUS_SUITE_USER, password=str(secrets["prometheus_suite_password"]))
                  if secrets.get("prometheus_suite_password") and (data_dir / "conf" / WEB_CONFIG).exists()
                  else HttpAuth())
    kafka = KafkaAuth(security_protocol="SASL_SSL", sasl_mechanism=KAFKA_MECHANISM, username=KAFKA_SUITE_USER,
                      password=str(secrets.get("kafka_suite_password", "")),
                      ca_file=str(Tls.of(data_dir).ca_cert))
    clickhouse = ClickHouseAuth(user=CH_SUITE_USER, password=str(secrets.get("clickhouse_suite_password", "")),
                                secure=True, ca_file=str(Tls.of(data_dir).ca_cert))
    return StackCredentials(kafka=kafka, clickhouse=clickhouse, prometheus=prometheus)


def suite_kafka_auth(ctx: StackContext) -> KafkaAuth:
    """The suite's Kafka login to the stack of ``ctx`` (PLAINTEXT unless it is secure)."""
    if not ctx.secure:
        return KafkaAuth()
    return KafkaAuth(security_protocol="SASL_SSL", sasl_mechanism=KAFKA_MECHANISM, username=KAFKA_SUITE_USER,
                     password=ctx.secrets.kafka_suite_password, ca_file=str(Tls.of(ctx.data_dir).ca_cert))


def suite_clickhouse_auth(ctx: StackContext) -> ClickHouseAuth:
    """The suite's ClickHouse login to the stack of ``ctx`` (``default`` without password unless it is secure)."""
    if not ctx.secure:
        return ClickHouseAuth()
    return ClickHouseAuth(user=CH_SUITE_USER, password=ctx.secrets.clickhouse_suite_password)


def kafka_client_environment(ctx: StackContext, prefix: str, user: str, password: str) -> dict[str, str]:
    """``<prefix>KAFKA_SECURITY_PROTOCOL`` ... variables for a process of the stack (``{}`` unless secure)."""
    if not ctx.secure:
        return {}
    return {f"{prefix}KAFKA_SECURITY_PROTOCOL": "SASL_SSL", f"{prefix}KAFKA_SASL_MECHANISM": KAFKA_MECHANISM,
            f"{prefix}KAFKA_USERNAME": user, f"{prefix}KAFKA_PASSWORD": password,
            f"{prefix}KAFKA_CA_FILE": str(Tls.of(ctx.data_dir).ca_cert)}


WEB_CONFIG = "prometheus-web.yml"
PASSWORD_FILE = "prometheus-suite.password"


def suite_prometheus_auth(ctx: StackContext) -> HttpAuth:
    """The suite's Prometheus login to the stack of ``ctx`` (none unless it is secure)."""
    if not ctx.secure:
        return HttpAuth()
    return HttpAuth(username=PROMETHEUS_SUITE_USER, password=ctx.secrets.prometheus_suite_password)


def prometheus_web_config(ctx: StackContext) -> tuple[Path, Path] | None:
    """For a secure stack: Prometheus' web config (basic auth, a bcrypt hash of the suite's password) and the
    password file its scrape of itself reads, both mode 0600 under ``conf/``; ``None`` otherwise."""
    if not ctx.secure:
        return None
    import bcrypt
    import yaml

    password = ctx.secrets.prometheus_suite_password
    web, pw = ctx.conf_dir / WEB_CONFIG, ctx.conf_dir / PASSWORD_FILE
    # cost 10: Prometheus checks the hash on every request (it caches by credentials), 2 cores here
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    _write(web, ("# Generated by the stack package for a --secure stack; do not edit.\n"
                 + yaml.safe_dump({"basic_auth_users": {PROMETHEUS_SUITE_USER: hashed}})).encode(), 0o600)
    _write(pw, password.encode(), 0o600)
    return web, pw
