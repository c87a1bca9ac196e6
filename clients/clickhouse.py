"""How to log in to ClickHouse: one place that builds clickhouse-driver clients with the target's credentials.

Every ClickHouse read of the suite (the data-loss check, the violations cross-check, the stack's
own schema and health queries) builds its client with :func:`client`, so a user and password
(and TLS on the secure native port) are used everywhere or nowhere. :func:`check_login` proves
the login before any fault: a wrong password is an :class:`AuthError` naming the address and the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AUTH_CODES", "AuthError", "ClickHouseAuth", "check_login", "client", "is_auth_error"]

AUTH_CODES = {192, 193, 194, 195, 516}
"""Server error codes of a refused login: UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD,
IP_ADDRESS_NOT_ALLOWED (ClickHouse 18-20) and AUTHENTICATION_FAILED (later versions)."""


class AuthError(Exception):
    """ClickHouse refused the login; the message names the address and the user."""


@dataclass(frozen=True)
class ClickHouseAuth:
    """Who the suite is to ClickHouse.

    Arguments:
        user: the ClickHouse user (``default`` when none is configured).
        password: its password (kept out of ``repr``).
        secure: speak TLS on the native protocol (the server's ``tcp_port_secure``).
        ca_file: PEM file of the CA that signed the server's certificate (``secure`` only).
        verify: verify the server's certificate (``secure`` only).
    """

    user: str = "default"
    password: str = field(default="", repr=False)
    secure: bool = False
    ca_file: str | None = None
    verify: bool = True

    def client_kwargs(self) -> dict[str, Any]:
        """clickhouse-driver ``Client`` keywords."""
        kwargs: dict[str, Any] = {"user": self.user, "password": self.password}
        if self.secure:
            kwargs.update(secure=True, verify=self.verify)
            if self.ca_file:
                kwargs["ca_certs"] = self.ca_file
        return kwargs

    def describe(self) -> str:
        """``user 'x' over TLS`` (never the password), for messages."""
        return f"user {self.user!r}" + (" over TLS" if self.secure else "")


def client(host: str, port: int, auth: ClickHouseAuth | None = None, **kwargs: Any) -> Any:
    """A ``clickhouse_driver.Client`` for ``host:port`` logged in as ``auth`` (further ``kwargs`` passed on)."""
    from clickhouse_driver import Client

    return Client(host=host, port=port, **(auth or ClickHouseAuth()).client_kwargs(), **kwargs)


def is_auth_error(exc: BaseException) -> bool:
    """Whether a clickhouse-driver error is a refused login."""
    return getattr(exc, "code", None) in AUTH_CODES


def check_login(host: str, port: int, auth: ClickHouseAuth | None = None, timeout_s: float = 5.0) -> str:
    """``SELECT version()`` as ``auth``; returns the server's version.

    Raises:
        AuthError: the server refused the login (unknown user, wrong password), naming ``host:port`` and the user.
        Exception: the driver's own error when the server cannot be reached at all.
    """
    a = auth or ClickHouseAuth()
    c = client(host, port, a, connect_timeout=timeout_s, send_receive_timeout=timeout_s)
    try:
        return str(c.execute("SELECT version()")[0][0])
    except Exception as exc:
        if is_auth_error(exc):
            first = str(getattr(exc, "message", exc)).strip().splitlines()[0].split(" Stack trace:")[0][:200]
            raise AuthError(f"ClickHouse at {host}:{port}: login of {a.describe()} refused: {first}") from None
        raise
    finally:
        c.disconnect()
