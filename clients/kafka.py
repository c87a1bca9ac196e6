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

__all__ = ["MECHANISMS", "PROTOCOLS", "AuthError", "KafkaAuth", "check_login", "is_auth_failure", "login_once"]

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
    """Log in to the brokers at ``bootstrap`` once: for SASL or TLS, one login by hand to the first address
    that accepts a connection (:func:`login_once`), then an admin client's bootstrap and a metadata request.

    Raises:
        AuthError: the brokers refused the SASL login or the TLS handshake failed; the message names
            ``bootstrap`` and the user.
        OSError or kafka.errors.KafkaError: the brokers could not be reached at all (``ConnectionError``
            when no address accepts a connection): not a credentials problem.
    """
    import socket

    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    ms = int(timeout_s * 1000)
    who = f"Kafka at {bootstrap} ({auth.describe()})"
    reachable = [a.strip() for a in bootstrap.split(",") if _accepts_tcp(a, timeout_s, socket)]
    if not reachable:
        raise ConnectionError(f"Kafka at {bootstrap}: no address accepts a connection")
    if auth.uses_sasl or auth.uses_tls:
        # kafka-python drops the broker's SASL error answer when the broker closes the connection right
        # after it (the answer and the close arrive together), and retries until its timeout: the login
        # is made here once, by hand, so a refused one is named as such.
        login_once(reachable[0], auth, timeout_s)
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


def login_once(address: str, auth: KafkaAuth, timeout_s: float = 5.0) -> None:
    """One TLS handshake and SASL login to the broker at ``host:port``, speaking the protocol by hand
    (SaslHandshake v1, SaslAuthenticate v0; the SCRAM/PLAIN exchange is kafka-python's own).

    Raises:
        AuthError: the certificate did not verify, or the broker refused the login (its error named).
        OSError: the broker could not be reached or hung up for another reason.
    """
    import socket
    import ssl
    import struct

    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    who = f"Kafka at {address} ({auth.describe()})"
    raw = socket.create_connection((host, int(port)), timeout=timeout_s)
    sock: Any = raw
    try:
        if auth.uses_tls:
            ctx = ssl.create_default_context(cafile=auth.ca_file)
            ctx.check_hostname = auth.check_hostname
            try:
                sock = ctx.wrap_socket(raw, server_hostname=host)
            except ssl.SSLError as exc:
                raise AuthError(f"{who}: TLS handshake failed: {exc}") from None
        if not auth.uses_sasl:
            return
        correlation = iter(range(1, 100))

        def call(api_key: int, version: int, body: bytes) -> bytes:
            client_id = b"resilience-login-check"
            header = struct.pack(">hhih", api_key, version, next(correlation), len(client_id)) + client_id
            sock.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
            (size,) = struct.unpack(">i", _read(sock, 4))
            return _read(sock, size)[4:]  # without the correlation id

        mech = (auth.sasl_mechanism or "").encode()
        answer = call(17, 1, struct.pack(">h", len(mech)) + mech)  # SaslHandshake v1
        (error,) = struct.unpack(">h", answer[:2])
        if error:
            raise AuthError(f"{who}: the broker does not offer {auth.sasl_mechanism} (SaslHandshake error {error})")
        from kafka.net.sasl import get_sasl_mechanism

        mechanism = get_sasl_mechanism(auth.sasl_mechanism)(
            host=host, sasl_mechanism=auth.sasl_mechanism, sasl_plain_username=auth.username,
            sasl_plain_password=auth.password)
        while not mechanism.is_done():
            token = mechanism.auth_bytes()
            answer = call(36, 0, struct.pack(">i", len(token)) + token)  # SaslAuthenticate v0
            error, message_len = struct.unpack(">hh", answer[:4])
            message = answer[4:4 + message_len].decode(errors="replace") if message_len > 0 else ""
            rest = answer[4 + max(message_len, 0):]
            if error:
                raise AuthError(f"{who}: login refused: {message or f'SASL error {error}'}")
            (token_len,) = struct.unpack(">i", rest[:4])
            mechanism.receive(rest[4:4 + max(token_len, 0)])
        if not mechanism.is_authenticated():
            raise AuthError(f"{who}: login refused: the broker's final SASL message did not verify")
    finally:
        sock.close()


def _read(sock: Any, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


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
