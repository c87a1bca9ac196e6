"""Command-line entry points of the fault library.

``cleanup_command`` and ``watchdog_command`` are click commands for
``resilience cleanup`` / ``resilience watchdog`` (registered by
``resilience/cli.py``); ``python -m faults.cli`` runs them standalone, plus the
hidden ``expire`` command that detached expiry timers run.

Exit codes: 0 ok (nothing left open), 1 some fault could not be reverted, 2 bad invocation.
"""

import json
import logging
import sys
from pathlib import Path

import click

from faults import cleanup as cleanup_mod
from faults import watchdog as watchdog_mod

state_dir_option = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar="RESILIENCE_STATE_DIR",
    default=None, help="Fault journal directory (default /var/tmp/sql-audit-resilience/faults).")


def _logging(verbose: int) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.command("cleanup")
@click.option("--run", "run_id", default=None, help="Only this run's faults (default: every run).")
@click.option("--port-base", type=click.IntRange(1024, 65495), default=None,
              help="Only faults applied to the stack at this port base (default: every stack).")
@state_dir_option
@click.option("--dry-run", is_flag=True, help="List what would be reverted; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("-v", "--verbose", count=True, help="Log every revert.")
def cleanup_command(run_id: str | None, port_base: int | None, state_dir: Path | None, dry_run: bool,
                    as_json: bool, verbose: int) -> None:
    """Revert every fault a killed or interrupted run left behind.

    Reads the fault journal and calls, for each fault still open, the remove
    activity recorded with it (idempotent). Exits 1 if any fault could not be
    reverted (it stays in the journal; run cleanup again).
    """
    _logging(verbose)
    results = cleanup_mod.cleanup(state_dir, run_id, port_base, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    elif not results:
        click.echo("no open faults")
    else:
        for r in results:
            mark = "would revert" if dry_run else ("reverted" if r.ok else "FAILED")
            click.echo(f"{mark:<12} {r.run_id}  {r.fault} {r.parameters}: {r.detail}")
    sys.exit(0 if all(r.ok for r in results) else 1)


@click.command("watchdog")
@click.option("--run", "run_id", required=True, help="Run whose heartbeat to watch.")
@state_dir_option
@click.option("--poll", type=click.FloatRange(0.1, 60), default=watchdog_mod.POLL_S, show_default=True,
              help="Seconds between checks.")
def watchdog_command(run_id: str, state_dir: Path | None, poll: float) -> None:
    """Watch a run: revert its faults when they expire or its heartbeat stops.

    Runs in the foreground until the run has no open fault (fault activities
    start it detached by themselves). Exits 1 if reverts kept failing.
    """
    _logging(1)
    sys.exit(watchdog_mod.run_watchdog(state_dir or cleanup_mod.default_state_dir(), run_id, poll))


@click.command("expire", hidden=True)
@click.argument("entry", type=click.Path(dir_okay=False, path_type=Path))
def expire_command(entry: Path) -> None:
    """Revert one journal entry when it expires (run detached by fault activities)."""
    _logging(1)
    sys.exit(watchdog_mod.run_timer(entry))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Fault library commands (also available as `resilience cleanup` / `resilience watchdog`)."""


main.add_command(cleanup_command)
main.add_command(watchdog_command)
main.add_command(expire_command)

if __name__ == "__main__":
    main()
