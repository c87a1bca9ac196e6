"""Command-line entry points of the fault library.

``cleanup_command`` and ``watchdog_command`` are click commands for
``resilience cleanup`` / ``resilience watchdog`` (registered by
``resilience/cli.py``); ``python -m faults.cli`` runs them standalone, plus the
hidden ``expire`` command that detached expiry timers run and ``sweep``, which
reverts what expired in a cluster (the Deployment ``resilience-sweeper`` runs it).

Exit codes: 0 ok (nothing left open), 1 some fault could not be reverted, 2 bad invocation, 3 (``cleanup
--dead-only``) a run in scope is still at work: its faults were left alone.
"""

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from chaoslib.exceptions import ActivityFailed
from click.core import ParameterSource

from faults import cleanup as cleanup_mod
from faults import companions, journal, residue
from faults import watchdog as watchdog_mod
from stack.endpoints import DEFAULT_PORT_BASE
from target.settings import DEFAULT_HEARTBEAT_TIMEOUT, TARGET_FILE_ENV, resolve

logger = logging.getLogger(__name__)

state_dir_option = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar="RESILIENCE_STATE_DIR",
    default=None, help="Fault journal directory (default /var/tmp/sql-audit-resilience/faults).")


def _logging(verbose: int) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.command("cleanup")
@click.option("--run", "run_id", default=None,
              help="Only this run's faults. Alone it is scope enough: the run's faults on whatever stack "
                   "they are (add --port-base to narrow).")
@click.option("--port-base", type=click.IntRange(1024, 65495), default=DEFAULT_PORT_BASE, show_default=True,
              envvar="RESILIENCE_PORT_BASE",
              help="Only faults on the local stack at this port base; the default is the stack `resilience run` "
                   "uses by default (env RESILIENCE_PORT_BASE, else 19000).")
@click.option("--all", "all_stacks", is_flag=True,
              help="Every stack recorded in the journal: local stacks at any port base and every kubernetes "
                   "context/namespace, whoever started them. Not with --port-base.")
@state_dir_option
@click.option("--dead-only", is_flag=True,
              help="Leave alone the runs still at work (their heartbeat fresh; a run in another pod is told by its "
                   "heartbeat alone) and exit 3 if there is one: what a runner pod's cleanup container uses, so "
                   "it never reverts the faults of a run in another pod sharing the journal.")
@click.option("--dry-run", is_flag=True, help="List what would be reverted; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("-v", "--verbose", count=True, help="Log every revert.")
@click.pass_context
def cleanup_command(ctx: click.Context, run_id: str | None, port_base: int, all_stacks: bool,
                    state_dir: Path | None, dead_only: bool, dry_run: bool, as_json: bool, verbose: int) -> None:
    """Revert the faults a killed or interrupted run left behind, on one stack.

    Reads the fault journal and calls, for each fault still open in scope, the remove
    activity recorded with it (idempotent). The journal is shared by everyone on the
    machine, so the scope is one stack unless you say otherwise:

    \b
      (no option)      the local stack at the default port base (RESILIENCE_PORT_BASE,
                       else 19000), the stack `resilience run` uses by default
      --port-base N    the local stack at port base N
      --run ID         that run's faults, on whatever stack they are
      --all            every stack recorded in the journal: all local stacks and
                       kubernetes namespaces (other people's runs too)

    Without --all, --port-base or --run, faults on other stacks are left alone and
    counted, so you know to pass one of them.

    \b
    Then it stops the load of every dead run in scope and audits each stack in
    scope for residue: the stack now against its snapshot from before the newest
    run on it (kept in the journal), else against a stack at rest (nothing of this
    library on it). It prints "nothing to do" when it reverted nothing, stopped
    nothing and found nothing left; each leftover otherwise (LEFTOVER: this
    library's own, such as a toxic or a changed config; "not back": any other
    difference, such as a program still stopped).

    With --dead-only, a run still at work (a fresh heartbeat; for a runner in
    another pid namespace, such as another pod on the same journal volume, its
    heartbeat alone tells, after waiting up to twice its timeout) is left alone:
    its faults stay, its stack is not audited, and the exit code is 3.

    Exits 1 if any fault could not be reverted (it stays in the journal; run
    cleanup again) or a LEFTOVER remains, 2 on a bad invocation, 3 (--dead-only)
    if a run in scope is still at work.
    """
    _logging(verbose)
    explicit_port_base = ctx.get_parameter_source("port_base") is ParameterSource.COMMANDLINE
    if all_stacks and explicit_port_base:
        raise click.UsageError("--all takes every stack; --port-base takes one: give one of them", ctx)
    if all_stacks or (run_id is not None and not explicit_port_base):
        scope_port_base: int | None = None
        scope = f"of run {run_id}" if run_id is not None else "in the journal"
    else:
        scope_port_base = port_base
        scope = f"on the local stack at port base {port_base}" + (f" of run {run_id}" if run_id else "")
    state = state_dir or cleanup_mod.default_state_dir()
    runs = residue.scoped_runs(state, run_id, scope_port_base)
    at_work = companions.live_runs(state, runs, DEFAULT_HEARTBEAT_TIMEOUT) if dead_only else {}
    results = cleanup_mod.cleanup(state, run_id, scope_port_base, dry_run=dry_run, spare=set(at_work))
    stopped = [] if dry_run else companions.stop_dead(state, runs)
    # a stack with a live run on it is not at rest: its audit would take that run's faults for leftovers
    audits = [] if at_work else _audit(state, run_id, scope_port_base)
    leftovers = [(a, f) for a in audits if a.audit is not None for f in a.audit.leftovers]
    if as_json:
        click.echo(json.dumps({"reverted": [r.as_dict() for r in results], "stopped": stopped,
                               "audits": [a.as_dict() for a in audits], "at_work": at_work}, indent=2))
    else:
        for run, why in at_work.items():
            click.echo(f"{'AT WORK':<12} run {run}: {why}; its faults left alone, nothing audited")
        if not results:
            click.echo(f"no open faults {scope}" + (" but those of the runs at work" if at_work else ""))
        for r in results:
            mark = "would revert" if dry_run else ("reverted" if r.ok else "FAILED")
            click.echo(f"{mark:<12} {r.run_id}  {r.fault} {r.parameters}: {r.detail}")
        for line in stopped:
            click.echo(f"{'stopped':<12} {line}")
        for a, finding in leftovers:
            click.echo(f"{'LEFTOVER' if finding.item in a.library else 'not back':<12} {finding} [{a.stack}]")
        for a in audits:
            notes = a.audit.notes if a.audit is not None and verbose else []
            for note in notes:
                click.echo(f"{'note':<12} {note} [{a.stack}]")
            if a.skipped:
                click.echo(f"{'not audited':<12} {a.stack}: {a.skipped}")
        if not results and not stopped and not leftovers and not at_work:
            audited = [f"{a.stack} ({a.audit.reference})" for a in audits if a.audit is not None]
            click.echo(f"nothing to do: nothing left on {', '.join(audited) or 'no stack in scope'}")
    if not as_json and scope_port_base is not None:
        _report_out_of_scope(state, run_id, scope_port_base)
    ours = [f for a, f in leftovers if f.item in a.library and not dry_run]  # a dry run lists, it does not judge
    sys.exit(1 if not all(r.ok for r in results) or ours else 3 if at_work else 0)


@dataclass
class _StackAudit:
    stack: str
    audit: residue.Audit | None = None
    skipped: str | None = None
    library: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "skipped": self.skipped, **(self.audit.as_dict() if self.audit else {})}


def _audit(state: Path, run_id: str | None, port_base: int | None) -> list[_StackAudit]:
    """The residue audit of every stack in scope (one that cannot be read is skipped, saying why)."""
    out: list[_StackAudit] = []
    for cfg in residue.scoped_stacks(state, run_id, port_base):
        where = f"{cfg.get('target', 'local')} stack"
        try:
            settings = resolve({**cfg, "dry_run": False})
            where = journal.describe_stack(journal.settings_stack(settings))
            reason = residue.not_auditable(settings)
            if reason:
                out.append(_StackAudit(where, skipped=reason))
                continue
            out.append(_StackAudit(where, residue.audit_stack(cfg, run_id), library=residue.library_items(
                settings.target)))
        except Exception as exc:  # one stack that cannot be audited must not hide the others
            out.append(_StackAudit(where, skipped=f"audit failed: {exc}"))
    return out


def _report_out_of_scope(state: Path, run_id: str | None, port_base: int) -> None:
    """Say how many open faults the stack scope left alone, and where they are."""
    others = [e for _, e in journal.open_entries(state, run_id) if not journal.on_local_stack(e, port_base)]
    if not others:
        return
    stacks = sorted({journal.describe_stack(journal.entry_stack(e)) for e in others})
    click.echo(f"{len(others)} open on other stacks, left alone ({'; '.join(stacks)}): pass --port-base N "
               f"or --run ID for one of them, --all for every stack", err=True)


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


@click.command("sweep")
@click.option("--target-config", type=click.Path(exists=True, dir_okay=False, path_type=Path), envvar=TARGET_FILE_ENV,
              required=True, help=f"The target file of the kubernetes target (env {TARGET_FILE_ENV}, as for every "
                                  "kubernetes command): cluster, namespaces, allow-lists.")
@click.option("--every", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Sweep every SECONDS, forever (default: once).")
@click.option("--dry-run", is_flag=True, help="List what would be reverted; send only reads.")
@click.option("-v", "--verbose", count=True, help="Log every request that changes something.")
def sweep_command(target_config: Path, every: float | None, dry_run: bool, verbose: int) -> None:
    """Revert every fault of this library in the cluster whose expiry has passed, and nothing else.

    \b
    Partition NetworkPolicies in the service's namespace are deleted; StatefulSets
    held down by a fault (`duration`) are scaled back to their recorded count, their
    annotations dropped. Both carry `sql-audit-resilience/expires-at`; an object
    without it, or not yet past it, is left alone. The journal is not read: the
    next run's cleanup closes the entries (their removes find the faults gone).

    Prints one line per object reverted (kind, namespace/name, when it expired).
    Once: exits 0, or 1 if a request failed, 2 on a bad invocation or target
    file. With --every: a failed request is logged and the next sweep comes on
    time; it never exits by itself.
    """
    from faults.kubernetes.sweep import sweep
    from target.kubernetes import KubeSettings

    _logging(verbose)
    environ = {**os.environ, TARGET_FILE_ENV: str(target_config)}
    configuration = {"dry_run": True} if dry_run else None
    try:
        settings = resolve(configuration, environ)
        if settings.target != "kubernetes":
            raise click.UsageError(f"{target_config}: target {settings.target!r}: the sweep is for target kubernetes")
        KubeSettings.from_configuration(settings.kubernetes_keys)
    except ActivityFailed as exc:  # SettingsError too: a target file the sweep cannot use
        raise click.UsageError(f"{target_config}: {exc}") from None
    while True:
        started = time.monotonic()
        try:
            result = sweep(configuration, environ)
            for swept in result.swept:
                click.echo(swept.line(dry_run))
            ok = result.ok
            if every is None and not result.swept and not result.errors:
                click.echo("nothing expired")
        except Exception as exc:  # a sweep that cannot start (API unreachable, guard) must not end the loop
            logger.error("sweep failed: %s", exc)
            ok = False
        sys.stdout.flush()
        if every is None:
            sys.exit(0 if ok else 1)
        time.sleep(max(0.0, every - (time.monotonic() - started)))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Fault library commands (also available as `resilience cleanup` / `resilience watchdog`)."""


main.add_command(cleanup_command)
main.add_command(watchdog_command)
main.add_command(expire_command)
main.add_command(sweep_command)

if __name__ == "__main__":
    main()
