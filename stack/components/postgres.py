"""PostgreSQL as a single server (minimal profile), and the audit database both profiles bootstrap.

The ha profile runs two members under Patroni instead (:mod:`stack.components.patroni`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from stack.components.base import SCHEMA_DIR, Component, chown_postgres, run_command
from stack.context import StackContext
from stack.paths import REPO_ROOT

ARCHIVE_SCRIPT = REPO_ROOT / "deploy" / "backup" / "pg-archive-wal.sh"
"""The ``archive_command`` (docs/backup.md): copies a finished WAL segment into the archive while it exists."""


def backup_root(ctx: StackContext) -> Path:
    """Where the stack's backups live (``<data-dir>/backups``): beside the stores, not inside them, so a
    store's data lost is not its backup lost."""
    return ctx.data_dir / "backups"


def wal_archive(ctx: StackContext) -> Path:
    """The WAL archive of the minimal profile's server: archiving is on while this directory exists
    (the first backup creates it; docs/backup.md)."""
    return backup_root(ctx) / "wal-archive"


def pgdata_dir(ctx: StackContext) -> Path:
    """The minimal profile's PGDATA."""
    return ctx.data_dir / "postgres" / "pgdata"


def postgres(ctx: StackContext) -> Component:
    pgdata = pgdata_dir(ctx)
    archiver = ctx.data_dir / "postgres" / ARCHIVE_SCRIPT.name  # a copy the postgres user can read
    sockdir = ctx.data_dir / "postgres" / "run"
    bindir = ctx.tools.pg_bindir

    def prepare(c: StackContext) -> None:
        root = pgdata.parent
        root.mkdir(parents=True, exist_ok=True)
        sockdir.mkdir(parents=True, exist_ok=True)
        for p in (root, sockdir):
            chown_postgres(p)
        shutil.copyfile(ARCHIVE_SCRIPT, archiver)
        archiver.chmod(0o755)
        if (pgdata / "PG_VERSION").exists():
            return
        pwfile = root / ".initpw"
        pwfile.write_text(c.secrets.postgres_password + "\n")
        chown_postgres(pwfile)
        pwfile.chmod(0o600)
        try:
            run_command(
                ["runuser", "-u", "postgres", "--", str(bindir / "initdb"), "-D", str(pgdata),
                 "-U", "postgres", f"--pwfile={pwfile}", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
                "postgres", c,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _connect(c: StackContext, **kw: object):
        import psycopg

        return psycopg.connect(connect_timeout=3, autocommit=True, **kw)  # type: ignore[arg-type]

    def probe(c: StackContext) -> str:
        with _connect(c, host=str(sockdir), port=c.endpoints.port("postgres"), user="postgres",
                      dbname="postgres") as conn:
            conn.execute("SELECT 1")
        return "accepts connections"

    def bootstrap(c: StackContext) -> str:
        ensure_audit_database(c, {"host": str(sockdir), "port": c.endpoints.port("postgres")})
        return "role, database and schema present"

    def health(c: StackContext) -> str:
        with _connect(c, **c.postgres_kwargs()) as conn:
            conn.execute("SELECT 1")
            in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        return "SELECT 1 ok, " + ("replica" if in_recovery else "primary")

    port = ctx.endpoints.port("postgres")
    return Component(
        name="postgres",
        command=[
            str(bindir / "postgres"), "-D", str(pgdata),
            "-c", f"port={port}", "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={sockdir}",
            "-c", "shared_buffers=128MB", "-c", "max_connections=100",
            "-c", "fsync=on", "-c", "synchronous_commit=on",
            # WAL archiving for point-in-time recovery (docs/backup.md): always on, a no-op until a backup
            # creates the archive directory; archive_mode needs a restart, the directory does not.
            "-c", "wal_level=replica", "-c", "archive_mode=on",
            "-c", f"archive_command={archiver} {wal_archive(ctx)} %p %f",
        ],
        ports=["postgres"],
        user="postgres",
        prepare=prepare,
        probe=probe,
        bootstrap=bootstrap,
        health=health,
        stopsignal="INT",  # fast shutdown
        startup_timeout=60,
        endpoint=f"postgresql://{ctx.pg_user}@127.0.0.1:{port}/{ctx.pg_database}",
    )


def ensure_audit_database(ctx: StackContext, superuser: dict[str, object]) -> None:
    """Create the audit role, database and ``violations`` schema if missing (idempotent).

    ``superuser`` gives ``host`` (the unix socket directory) and ``port`` of the primary, where
    the ``postgres`` superuser connects without a password.
    """
    import psycopg
    from psycopg import sql

    with psycopg.connect(**superuser, user="postgres", dbname="postgres", connect_timeout=3,  # type: ignore[arg-type]
                         autocommit=True) as conn:
        role = ctx.pg_user
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(ctx.secrets.postgres_password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (ctx.pg_database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(ctx.pg_database), sql.Identifier(role)))
    with psycopg.connect(**ctx.postgres_kwargs(), connect_timeout=3, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute((SCHEMA_DIR / "postgres.sql").read_text())
