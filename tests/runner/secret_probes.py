"""A deliberately careless probe for the secrets test: it uses a real secret and puts it in what it returns and logs.

Probes written by users do this (a DSN in a log line, a token echoed by an HTTP endpoint into
the journal): the run directory must still hold no secret value.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

logger = logging.getLogger(__name__)


def connect_to_postgres(host: str, port: int, user: str, dbname: str, configuration: dict[str, Any] | None = None,
                        secrets: dict[str, Any] | None = None) -> bool:
    """Connect with the password of the ``db`` secrets (``secrets["password"]``) and log the DSN, password and all."""
    password = (secrets or {})["password"]
    dsn = f"postgresql://{user}:{password}@{host}:{port}/{dbname}"
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        one = conn.execute("SELECT 1").fetchone()
    logger.info("connected to %s", dsn)
    return bool(one and one[0] == 1)
