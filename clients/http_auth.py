"""How to log in to an HTTP API such as Prometheus: a bearer token or basic auth, as request headers.

Prometheus behind an authenticating proxy (or with its own ``web.config.file``) wants a bearer
token or a user and password on every request; :class:`HttpAuth` gives the one header that
carries them, and its ``repr`` and :meth:`HttpAuth.describe` never show the secret.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

__all__ = ["HttpAuth"]


@dataclass(frozen=True)
class HttpAuth:
    """A bearer token, or a user and password (basic auth), or nothing."""

    bearer_token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.bearer_token and self.username:
            raise ValueError("give a bearer token or a username and password, not both")
        if self.username and self.password is None:
            raise ValueError(f"basic auth of user {self.username!r} needs a password")

    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header (``{}`` without credentials)."""
        if self.bearer_token:
            return {"Authorization": f"Bearer {self.bearer_token}"}
        if self.username:
            raw = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def describe(self) -> str:
        """``a bearer token``, ``user 'x'`` or ``no credentials`` (never the secret)."""
        if self.bearer_token:
            return "a bearer token"
        if self.username:
            return f"user {self.username!r}"
        return "no credentials"
