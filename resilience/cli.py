"""The ``resilience`` command.

Exit codes (for CI):
  0  success (stack healthy)
  1  a component failed to start or is unhealthy
  2  bad invocation (unknown option, bad value)
  3  a required tool is not installed (run ``resilience install``)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console

from resilience import __version__
from resilience.paths import DEPLOY_LOCAL
from resilience.stack import DEFAULT_PORT_BASE, ComponentError, LocalStack, MissingToolError, StackError
from resilience.stack.core import StackStatus

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MISSING = 0, 1, 2, 3

port_base_option = click.option(
    "--port-base", type=click.IntRange(1024, 65495), default=DEFAULT_PORT_BASE, show_default=True,
    envvar="RESILIENCE_PORT_BASE",
    help="First of the 40 loopback ports the stack uses; two stacks need bases 40 apart.")
data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), envvar="RESILIENCE_DATA_DIR",
    help="Stack state (configs, data, logs). Default: /var/tmp/sql-audit-resilience/stack-<port-base>.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="resilience")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Prove the SQL Audit Service's SLOs under failure.

    \b
    Typical session on the embedded stack:
      resilience install          # once: Kafka, PostgreSQL, ClickHouse, Prometheus, toxiproxy
      resilience up               # start a local replica of the production topology
      resilience status           # one line per component; exit 1 if anything is unhealthy
      resilience down --purge     # stop everything and delete its data

    Exit codes: 0 ok, 1 failed or unhealthy, 2 bad invocation, 3 tool not installed.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Client libraries log every refused connection while a component starts; that is expected.
    for noisy in ("kafka", "clickhouse_driver"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL if verbose < 2 else logging.DEBUG)


@cli.command()
def install() -> None:
    """Install everything the embedded stack runs (idempotent; about a second when done).

    Debian packages (PostgreSQL 15, ClickHouse, Prometheus, ZooKeeper, etcd), the Kafka
    broker jars from Maven Central, toxiproxy built with `go install`, and a venv for
    Patroni, into RESILIENCE_CACHE_DIR (default /var/cache/sql-audit-resilience).
    Needs root or sudo.
    """
    rc = subprocess.call(["bash", str(DEPLOY_LOCAL / "install.sh")])
    sys.exit(EXIT_OK if rc == 0 else EXIT_FAILED)


@cli.command()
@click.option("--profile", type=click.Choice(["minimal"]), default="minimal", show_default=True,
              help="Topology to start. minimal: one of each component (the ha profile comes later).")
@port_base_option
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the final status as JSON on stdout.")
def up(profile: str, port_base: int, data_dir: Path | None, as_json: bool) -> None:
    """Start the embedded stack and wait until every component is healthy.

    Starts Kafka (KRaft), PostgreSQL, ClickHouse, Prometheus (1 s scrapes) and toxiproxy
    (one proxy per edge of the audit service) under supervisord, creates the topic and
    the schemas, and prints the endpoints. On a running stack it only reports status.
    If anything fails, the partial start-up is torn down and the failing component's
    log is shown.
    """
    stack = _stack(port_base, data_dir, profile)
    already = stack.is_running()
    t0 = time.monotonic()
    try:
        if already:
            console.print(f"[bold]stack already running[/] in {stack.data_dir}; nothing changed")
            status = stack.status()
        else:
            console.print(f"starting [bold]{profile}[/] stack, port base {stack.endpoints.port_base}, "
                          f"data in {stack.data_dir}")
            with console.status("starting...") as spinner:
                def progress(component: str, phase: str, detail: str) -> None:
                    if phase == "healthy":
                        console.print(f"  [green]✓[/] {component:<12} {detail}")
                    elif phase == "tearing down":
                        console.print(f"  [red]✗[/] {detail}: tearing down")
                    else:
                        spinner.update(f"{component}: {phase} ({time.monotonic() - t0:.0f} s)")
                status = stack.up(progress)
            console.print(f"stack healthy in {time.monotonic() - t0:.1f} s")
    except MissingToolError as exc:
        _fail(str(exc), EXIT_MISSING)
    except ComponentError as exc:
        _fail(exc.describe(), EXIT_FAILED, "nothing was left running" if not already else None)
    except StackError as exc:
        _fail(str(exc), EXIT_FAILED)
    _print_status(status, as_json)
    sys.exit(EXIT_OK if status.healthy else EXIT_FAILED)


@cli.command()
@port_base_option
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def status(port_base: int, data_dir: Path | None, as_json: bool) -> None:
    """Show every component: state, pid, endpoint and the result of its health check.

    Exits 1 when the stack is not running or any component is unhealthy.
    """
    try:
        st = _stack(port_base, data_dir).status()
    except StackError as exc:
        _fail(str(exc), EXIT_FAILED)
    _print_status(st, as_json)
    sys.exit(EXIT_OK if st.healthy else EXIT_FAILED)


@cli.command()
@port_base_option
@data_dir_option
@click.option("--purge", is_flag=True, help="Also delete the stack's data directory.")
def down(port_base: int, data_dir: Path | None, purge: bool) -> None:
    """Stop every process of the stack (verified by pid; stragglers are killed)."""
    stack = _stack(port_base, data_dir)
    try:
        pids = stack.down(purge=purge)
    except StackError as exc:
        _fail(str(exc), EXIT_FAILED)
    if pids:
        console.print(f"stopped {len(pids)} processes ({', '.join(map(str, pids))})")
    else:
        console.print("no stack was running")
    if purge:
        console.print(f"removed {stack.data_dir}")


def _stack(port_base: int, data_dir: Path | None, profile: str = "minimal") -> LocalStack:
    try:
        return LocalStack(port_base=port_base, data_dir=data_dir, profile=profile)
    except StackError as exc:
        _fail(str(exc), EXIT_USAGE)


def _fail(message: str, code: int, note: str | None = None) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}")
    if note:
        console.print(note)
    sys.exit(code)


def _print_status(st: StackStatus, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(st.as_dict()))
        return
    if not st.running:
        out.print(f"stack (port base {st.port_base}) is not running; data dir {st.data_dir}")
        return
    out.print(f"{st.profile} stack, port base {st.port_base}, supervisord pid {st.supervisord_pid}, "
              f"data {st.data_dir}", soft_wrap=True)
    width = max(len(c.name) for c in st.components)
    for c in st.components:
        mark = "[green]ok  [/]" if c.healthy else "[red]FAIL[/]"
        out.print(f"{mark} {c.name:<{width}}  {c.state:<8} pid {c.pid or '-':<7}  {c.endpoint}  — {c.detail}",
                  soft_wrap=True)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli()


if __name__ == "__main__":
    main()
