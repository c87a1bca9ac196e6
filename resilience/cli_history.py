"""The commands of issue 17 beside ``resilience run`` and ``gate``: ``history``, ``halt`` and ``resume``.

Registered on the ``resilience`` group by :mod:`resilience.cli`. Exit codes: 0 done, 2 bad input or
a store that cannot be reached.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console

console = Console(stderr=True, highlight=False)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 170)

__all__ = ["check_baseline", "halt_command", "history_group", "refuse_if_halted", "resume_command"]

history_url_option = click.option(
    "--history-url", default=None, envvar="RESILIENCE_HISTORY_URL", metavar="URL",
    help="The history store: an SQLAlchemy URL or PostgreSQL DSN (default: SQLite history.sqlite in the data root, "
         "RESILIENCE_DATA_ROOT; docs/history.md).")
target_option = click.option("--target", type=click.Choice(["local", "kubernetes"]), default="local",
                             show_default=True, help="local: the file HALT in the fault journal's directory; "
                                                     "kubernetes: the control ConfigMap (RESILIENCE_TARGET_CONFIG).")


def _fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    sys.exit(code)


def check_baseline(selector: str, url: str | None = None) -> str:
    """What ``--baseline`` means in the history (exit 2 when it matches nothing, before any run)."""
    from resilience.baseline import BaselineError, check_selector
    from resilience.history.store import HistoryError, HistoryStore

    try:
        return check_selector(HistoryStore.open(url), selector)
    except (BaselineError, HistoryError) as exc:
        _fail(f"{exc}; nothing was run")


def refuse_if_halted(target: str) -> None:
    """Exit 2 with the kill switch's message when it is set (a gate would only refuse each of its runs)."""
    from faults.killswitch import HaltedError
    from faults.killswitch import refuse_if_halted as refuse
    from target.settings import SettingsError, resolve

    try:
        refuse(resolve({"target": target}), "resilience gate")
    except (HaltedError, SettingsError) as exc:
        _fail(f"{exc}; nothing was run")


@click.command(name="history", context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, metavar="[SCENARIO] | import DIR...")
@click.option("--limit", type=click.IntRange(1, 100000), default=30, show_default=True,
              help="Rows of the terminal table (the HTML plots every run).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where history.html goes (default: reports/history.html).")
@history_url_option
def history_group(args: tuple[str, ...], limit: int, html_path: Path | None, history_url: str | None) -> None:
    """The run history: trends per scenario and SLO, releases, scores.

    \b
      resilience history                      every scenario: a table here, plots in reports/history.html
      resilience history pod_failure          one scenario
      resilience history import reports/      add existing run directories (summary.json) to the history

    The store is SQLite in the data root unless --history-url (or the settings key history_url) names
    another database, e.g. postgresql://user@host/db.
    """
    from resilience.history.store import HistoryError, HistoryStore

    try:
        store = HistoryStore.open(history_url)
    except HistoryError as exc:
        _fail(str(exc))
    if args and args[0] == "import":
        if len(args) < 2:
            _fail("history import needs at least one directory (e.g. reports/)")
        from resilience.history.importer import import_dirs

        missing = [a for a in args[1:] if not Path(a).is_dir()]
        if missing:
            _fail(f"not a directory: {', '.join(missing)}")
        t0 = time.monotonic()
        report = import_dirs(store, [Path(a) for a in args[1:]])
        for where, why in report.skipped:
            console.print(f"[yellow]skipped[/] {where}: {why}", soft_wrap=True)
        console.print(f"imported {len(report.imported)} runs and {len(report.gates)} gates into {store} "
                      f"in {time.monotonic() - t0:.1f} s ({len(report.skipped)} skipped)")
        return
    if len(args) > 1:
        _fail(f"one scenario at most (got {' '.join(args)}); `resilience history import DIR...` imports")
    from resilience.history.view import print_table, write_html
    from stack.paths import REPO_ROOT

    scenario = args[0] if args else None
    rows = store.runs(scenario=scenario)
    if not rows:
        _fail(f"no run{' of ' + scenario if scenario else ''} in the history at {store} "
              "(`resilience history import reports/` adds existing runs)")
    print_table(out, rows[:limit], scenario)
    path = write_html(rows, html_path or REPO_ROOT / "reports" / "history.html", scenario, str(store))
    console.print(f"{len(rows)} runs in {store}; plots: {path}")


@click.command(name="halt")
@click.option("--reason", default="", help="Why (shown to every run refused until `resilience resume`).")
@click.option("--wait", "wait_s", type=click.FloatRange(0, 600), default=10.0, show_default=True,
              help="local: seconds to wait for every open fault of the journal to be reverted.")
@target_option
def halt_command(reason: str, wait_s: float, target: str) -> None:
    """Emergency stop: every running experiment rolls back, and no run starts until `resilience resume`.

    Sets the kill switch (docs/faults.md, "Kill switch"); each run's safeguard monitor interrupts its
    experiment within a second, its rollbacks run, and a run's watchdog reverts what is left. Locally,
    waits until the fault journal has no open fault and says how long that took.
    """
    from faults import journal, killswitch
    from target.settings import SettingsError, resolve

    try:
        settings = resolve({"target": target})
        h = killswitch.halt(settings, reason)
    except (SettingsError, OSError) as exc:
        _fail(str(exc))
    except Exception as exc:  # the cluster refused the patch
        _fail(f"kill switch not set: {exc}", 1)
    t0 = time.monotonic()
    console.print(f"[bold red]HALT[/] {h.describe()}", soft_wrap=True)
    if target != "local":
        return
    opened = journal.open_entries(settings.fault_state_dir)
    while opened and time.monotonic() - t0 < wait_s:
        time.sleep(0.2)
        opened = journal.open_entries(settings.fault_state_dir)
    if opened:
        console.print(f"[yellow]{len(opened)} faults still open after {wait_s:g} s[/]: "
                      + ", ".join(str(e.get("id")) for _, e in opened) + " (`resilience cleanup --all` reverts them)",
                      soft_wrap=True)
        sys.exit(1)
    console.print(f"no open fault in {settings.fault_state_dir} ({time.monotonic() - t0:.1f} s)")


@click.command(name="resume")
@target_option
def resume_command(target: str) -> None:
    """Clear the kill switch: runs may start again."""
    from faults import killswitch
    from target.settings import SettingsError, resolve

    try:
        cleared = killswitch.resume(resolve({"target": target}))
    except (SettingsError, OSError) as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(f"kill switch not cleared: {exc}", 1)
    console.print("kill switch cleared: runs may start again" if cleared else "the kill switch was not set")
