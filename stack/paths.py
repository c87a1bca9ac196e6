"""Where the suite keeps installed tools (cache) and a stack's state (data dir).

Both live outside the git checkout. The cache must be readable by the
``postgres`` user (PostgreSQL and Patroni refuse to run as root), so it is
not under ``/root`` by default.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_LOCAL = REPO_ROOT / "deploy" / "local"

DEFAULT_CACHE_DIR = Path("/var/cache/sql-audit-resilience")
DEFAULT_DATA_ROOT = Path("/var/tmp/sql-audit-resilience")


def cache_dir() -> Path:
    """Directory holding the Kafka jars, the toxiproxy binary and the postgres-user venv.

    Overridden by ``RESILIENCE_CACHE_DIR``; ``deploy/local/install.sh`` fills it.
    """
    return Path(os.environ.get("RESILIENCE_CACHE_DIR", DEFAULT_CACHE_DIR))


def default_data_dir(port_base: int) -> Path:
    """Data directory of the stack at ``port_base`` (``RESILIENCE_DATA_ROOT`` moves the root)."""
    root = Path(os.environ.get("RESILIENCE_DATA_ROOT", DEFAULT_DATA_ROOT))
    return root / f"stack-{port_base}"

#: The reference service's DDL (ClickHouse table, PostgreSQL violations schema).
SCHEMA_DIR = REPO_ROOT / "sqlaudit" / "schema"
