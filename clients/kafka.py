"""How to log in to Kafka: one place that turns credentials into kafka-python keywords.

Every Kafka client of the suite (the load's producer, the lag reader, the drain wait, the
residue audit, the stack's own admin client, the lag exporter) builds its keywords with
:meth:`KafkaAuth.client_kwargs`, so SASL/SCRAM over TLS is either used everywhere or nowhere.

:func:`check_login` proves, before any fault, that the brokers accept the login: a wrong
password is an :class:`AuthError` naming the bootstrap address and the user, never a hang
or an unexplained "no brokers available" after the fault.

The password is held but never shown: ``repr()`` and :meth:`KafkaAuth.describe` mask it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["MECHANISMS", "PROTOCOLS", "AuthError", "KafkaAuth", "check_login", "is_auth_failure"]

ENV_NAMES = ("SECURITY_PROTOCOL", "SASL_MECHANISM", "USERNAME", "PASSWORD", "CA_FILE")
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class AuthError(Exception):
    """The brokers refused the login (or the TLS handshake); the message names the address and the user."""


@dataclass(frozen=True)
class KafkaAuth:
    """Credentials and transport security of a Kafka client (``PLAINTEXT`` and no user by default).

    Arguments:
        security_protocol: one of :data:`PROTOCOLS`.
        sasl_mechanism: one of :data:`MECHANISMS` (SASL protocols only).
        username: the SASL user.
        password: its password (kept out of ``repr``).
        ca_file: PEM file of the CA that signed the brokers' certificates (TLS protocols; ``None``:
            the system's trust store).
        check_hostname: verify that the broker's certificate names the address connected to.
    """

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.security_protocol not in PROTOCOLS:
            raise ValueError(f"security_protocol {self.security_protocol!r}: expected one of {', '.join(PROTOCOLS)}")
        if self.uses_sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise ValueError(f"sasl_mechanism {self.sasl_mechanism!r}: expected one of {', '.join(MECHANISMS)} "
                                 f"with {self.security_protocol}")
            if not self.username or not self.password:
                raise ValueError(f"{self.security_protocol} with {self.sasl_mechanism} needs a username and a password")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def client_kwargs(self) -> dict[str, Any]:
        """The kafka-python keywords (producer, consumer and admin client alike); ``{}`` for PLAINTEXT."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_sasl:
            kwargs.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                          sasl_plain_password=self.password)
        if self.uses_tls:
            kwargs["ssl_check_hostname"] = self.check_hostname
            if self.ca_file:
                kwargs["ssl_cafile"] = self.ca_file
        return kwargs

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], prefix: str) -> KafkaAuth:
        """Read ``<prefix>KAFKA_SECURITY_PROTOCOL``, ``_SASL_MECHANISM``, ``_USERNAME``, ``_PASSWORD`` and
        ``_CA_FILE``: how a process started by the suite (the load, the lag exporter) gets its login without
        a secret on its command line. Raises ``ValueError`` naming the variables."""
        get = {name: environ.get(f"{prefix}KAFKA_{name}") or None for name in ENV_NAMES}
        try:
            return cls(security_protocol=get["SECURITY_PROTOCOL"] or "PLAINTEXT", sasl_mechanism=get["SASL_MECHANISM"],
                       username=get["USERNAME"], password=get["PASSWORD"], ca_file=get["CA_FILE"])
        except ValueError as exc:
            raise ValueError(f"{prefix}KAFKA_*: {exc}") from None

    def environment(self, prefix: str) -> dict[str, str]:
        """The variables :meth:`from_environment` reads back (``{}`` for PLAINTEXT)."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        values = {"SECURITY_PROTOCOL": self.security_protocol, "SASL_MECHANISM": self.sasl_mechanism,
                  "USERNAME": self.username, "PASSWORD": self.password, "CA_FILE": self.ca_file}
        return {f"{prefix}KAFKA_{k}": str(v) for k, v in values.items() if v}

    def describe(self) -> str:
        """``SASL_SSL SCRAM-SHA-512 as user 'x'`` (never the password), for messages."""
        if not self.uses_sasl:
            return self.security_protocol
        return f"{self.security_protocol} {self.sasl_mechanism} as user {self.username!r}"


def check_login(bootstrap: str, auth: KafkaAuth, timeout_s: float = 5.0) -> None:
    """Log in to the brokers at ``bootstrap`` once (an admin client's bootstrap and a metadata request).

    Raises:
        AuthError: the brokers refused the SASL login or the TLS handshake failed; the message names
            ``bootstrap`` and the user.
        kafka.errors.KafkaError: the brokers could not be reached at all (not a credentials problem).
    """
    import socket

    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    ms = int(timeout_s * 1000)
    who = f"Kafka at {bootstrap} ({auth.describe()})"
    if not any(_accepts_tcp(address, timeout_s, socket) for address in bootstrap.split(",")):
        raise ConnectionError(f"Kafka at {bootstrap}: no address accepts a connection")
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="resilience-login-check",
                                 request_timeout_ms=ms, bootstrap_timeout_ms=ms, **auth.client_kwargs())
    except KafkaError as exc:
        raise _classify(who, exc) from None
    except OSError as exc:  # ssl.SSLError (a certificate the CA did not sign) is an OSError
        raise AuthError(f"{who}: TLS handshake failed: {exc}") from None
    try:
        admin.describe_cluster()
    except KafkaError as exc:
        raise _classify(who, exc) from None
    finally:
        admin.close()


def _accepts_tcp(address: str, timeout_s: float, socket: Any) -> bool:
    host, _, port = address.strip().rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def is_auth_failure(exc: BaseException) -> bool:
    """Whether a kafka-python error is a refused login (SASL) or a failed TLS handshake."""
    from kafka.errors import AuthorizationError, SaslAuthenticationFailedError

    return (isinstance(exc, SaslAuthenticationFailedError | AuthorizationError)
            or "handshake failed" in str(exc).lower())


def _classify(who: str, exc: Exception) -> Exception:
    """An :class:`AuthError` for a refused login, the original error for anything else."""
    if is_auth_failure(exc):
        return AuthError(f"{who}: login refused: {type(exc).__name__}: {exc}")
    return exc
