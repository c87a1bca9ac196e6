"""The ``resilience`` command.

Exit codes (for CI):
  stack commands (up, status, down):
    0  success (stack healthy)   1  a component failed or is unhealthy
    2  bad invocation            3  a required tool is not installed
  run, gate, replay, report:
    0  every SLO passed          1  an SLO failed
    2  inconclusive (no data, load not reached, not drained), bad input, or an error
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console

from probes.slo import DEFAULT_SLO_FILE
from resilience import __version__
from resilience.plan import DEFAULT_REPORTS, RunError, RunOptions
from resilience.runner import RunInterrupted, RunResult
from resilience.runner import run as run_scenario
from stack.core import LocalStack, StackStatus
from stack.endpoints import DEFAULT_PORT_BASE
from stack.errors import ComponentError, MissingToolError, StackError
from stack.paths import DEPLOY_LOCAL, REPO_ROOT

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MISSING = 0, 1, 2, 3

port_base_option = click.option(
    "--port-base", type=click.IntRange(1024, 65495), default=DEFAULT_PORT_BASE, show_default=True,
    envvar="RESILIENCE_PORT_BASE",
    help="First of the loopback ports the stack uses (40 for minimal, 60 for ha); keep two stacks' "
         "bases 60 apart.")
abort_if_option = click.option(
    "--abort-if", "abort_if", multiple=True, metavar="PROMQL",
    help="Abort (and roll back) as soon as this PromQL returns a non-zero sample while a fault is active; "
         "{measure} placeholders of docs/slo.yaml stand for the target's queries, e.g. "
         "'{consumer_lag} > 40000'. Repeatable.")
secure_option = click.option(
    "--secure", is_flag=True, default=False,
    help="The local stack with the doors of production: Kafka SASL_SSL (SCRAM-SHA-512, a CA made for the "
         "stack), ClickHouse passwords; the suite uses its own credentials (docs/local-stack.md, 'Secure stack'). "
         "Made once, at creation: a plain stack must be purged first.")
service_option = click.option(
    "--service", type=click.Choice(["python", "spring"]), default=None, envvar="RESILIENCE_SERVICE",
    help="The audit service under test: python (the reference service, sqlaudit/) or spring (services/spring, "
         "Spring Boot as the operations guide describes it; its metrics are read with the micrometer profile). "
         "Default: the service the local stack was made with, else python.")
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
@click.option("--profile", type=click.Choice(["minimal", "ha"]), default="minimal", show_default=True,
              help="Topology to start. minimal: one of each component; ha: Patroni pair, two ClickHouse "
                   "replicas, three Kafka brokers (docs/local-stack.md).")
@click.option("--service", type=click.Choice(["python", "spring"]), default="python", show_default=True,
              envvar="RESILIENCE_SERVICE",
              help="Audit service the replicas run. python: the reference service (default: 3 s to start, "
                   "~90 MiB a replica); spring: the Spring Boot service (services/spring; 30-100 s to start, "
                   "~250 MiB a replica, docs/benchmarks.md).")
@port_base_option
@data_dir_option
@secure_option
@click.option("--json", "as_json", is_flag=True, help="Print the final status as JSON on stdout.")
def up(profile: str, service: str | None, port_base: int, data_dir: Path | None, secure: bool, as_json: bool) -> None:
    """Start the embedded stack and wait until every component is healthy.

    Starts Kafka (KRaft), PostgreSQL, ClickHouse, Prometheus (1 s scrapes) and toxiproxy
    (one proxy per edge of the audit service) under supervisord, creates the topic and
    the schemas, and prints the endpoints. On a running stack it only reports status.
    If anything fails, the partial start-up is torn down and the failing component's
    log is shown.
    """
    stack = _stack(port_base, data_dir, profile, secure, service)
    already = stack.is_running()
    t0 = time.monotonic()
    try:
        if already:
            if stack.ctx.service != service:
                _fail(f"the stack in {stack.data_dir} runs the {stack.ctx.service} service: run `resilience down` "
                      f"before starting one with --service {service}", EXIT_USAGE)
            console.print(f"[bold]stack already running[/] in {stack.data_dir}; nothing changed")
            status = stack.status()
        else:
            what = "secure " if secure else ""
            console.print(f"starting [bold]{what}{profile}[/] stack with the [bold]{stack.ctx.service}[/] service, "
                          f"port base {stack.endpoints.port_base}, data in {stack.data_dir}")
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


@cli.command()
@click.argument("experiment")
@click.option("--target", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True,
              help="local: the embedded stack (brought up if needed). kubernetes: a staging cluster.")
@click.option("--shape", type=click.Choice(["steady", "ramp", "spike", "soak"]), default=None,
              help="Load shape (default: the experiment's).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Base load in events per second (default: the experiment's).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds of load (default: the experiment's).")
@click.option("--seed", type=int, default=None, help="Seed of the event content (default: the experiment's).")
@port_base_option
@data_dir_option
@click.option("--reports-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the run directory goes (default: reports/ in the checkout).")
@click.option("--slo-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="SLO catalogue (default: docs/slo.yaml).")
@click.option("--prometheus-url", envvar="RESILIENCE_PROMETHEUS_URL", help="kubernetes target: Prometheus base URL.")
@click.option("--kafka-bootstrap", envvar="RESILIENCE_KAFKA_BOOTSTRAP", help="kubernetes target: Kafka bootstrap.")
@click.option("--clickhouse", envvar="RESILIENCE_CLICKHOUSE", help="kubernetes target: ClickHouse host:port.")
@click.option("--repeat", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Trials: with N > 1 each SLO's verdict comes from a confidence interval over N runs "
                   "(docs/report.md, 'Repeated trials').")
@abort_if_option
@secure_option
@service_option
def run(experiment: str, target: str, shape: str | None, rate: float | None, duration: float | None,
        seed: int | None, port_base: int, data_dir: Path | None, reports_dir: Path | None, slo_file: Path | None,
        prometheus_url: str | None, kafka_bootstrap: str | None, clickhouse: str | None, repeat: int,
        abort_if: tuple[str, ...], secure: bool, service: str | None) -> None:
    """Run one scenario under load and judge its SLOs.

    EXPERIMENT is a scenario name (pod_failure, postgres_failure... see `resilience list`)
    or a path to a Chaos Toolkit experiment file.

    \b
    It validates every input first (nothing is injected on bad input), brings the local
    stack up if needed, runs the experiment with rollbacks always on, waits for the
    pipeline to drain, judges every SLO of the scenario, and writes
    reports/<time>-<experiment>/ with summary.json and report.html.

    \b
    Exit codes: 0 every SLO passed, 1 an SLO failed,
                2 inconclusive (missing data, load not reached, not drained) or an error.
    """
    options = _run_options(experiment, target, shape, rate, duration, seed, port_base, reports_dir, slo_file,
                           prometheus_url, kafka_bootstrap, clickhouse)
    options.data_dir = data_dir
    options.abort_if = abort_if
    options.secure = secure
    options.service = service
    if repeat > 1:
        sys.exit(_run_trials_and_print(options, repeat))
    sys.exit(_run_and_print(options))


def _run_options(experiment: str, target: str, shape: str | None, rate: float | None, duration: float | None,
                 seed: int | None, port_base: int, reports_dir: Path | None, slo_file: Path | None,
                 prometheus_url: str | None, kafka_bootstrap: str | None, clickhouse: str | None) -> RunOptions:
    ch: tuple[str, int] | None = None
    if clickhouse:
        host, _, port = clickhouse.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter(f"{clickhouse!r}: expected host:port", param_hint="--clickhouse")
        ch = (host, int(port))
    return RunOptions(experiment=experiment, target=target, shape=shape, rate=rate, duration=duration, seed=seed,
                      port_base=port_base, reports_dir=reports_dir or DEFAULT_REPORTS,
                      slo_file=slo_file or DEFAULT_SLO_FILE, prometheus_url=prometheus_url,
                      kafka_bootstrap=kafka_bootstrap, clickhouse=ch)


def _run_and_print(options: RunOptions) -> int:
    """Run with progress, print the verdicts; returns the exit code (2 when the run could not start)."""
    try:
        result = _run_with_progress(options)
    except RunError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        console.print("nothing was injected")
        return 2
    except RunInterrupted as exc:
        console.print(f"[bold red]interrupted:[/] {exc}; rolled back and judged", soft_wrap=True)
        return 2
    return result.exit_code


def _run_trials_and_print(options: RunOptions, repeat: int) -> int:
    """``run --repeat N``: N trials, then one verdict per SLO from its confidence interval."""
    from resilience.trials import run_trials

    try:
        result = run_trials(options, repeat, _run_with_progress,
                            on_trial=lambda i, n: console.rule(f"trial {i}/{n}"))
    except RunError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        console.print("nothing was injected")
        return 2
    except RunInterrupted as exc:
        console.print(f"[bold red]interrupted:[/] {exc}; that trial rolled back and judged, no more trials",
                      soft_wrap=True)
        return 2
    console.rule(f"{repeat} trials")
    _print_verdicts(result.summary)
    console.print(f"report: {result.run_dir / 'report.html'}")
    return result.exit_code


def _run_with_progress(options: RunOptions) -> RunResult:
    """Run with a live status line, then print the verdicts. Raises :class:`RunError` (nothing injected)."""
    from rich.live import Live
    from rich.text import Text

    state: dict[str, object] = {"phase": "validating", "detail": "", "t0": time.monotonic()}

    def render() -> Text:
        elapsed = time.monotonic() - float(state["t0"])  # type: ignore[arg-type]
        live = state.get("live") or {}
        assert isinstance(live, dict)

        def fmt(key: str, f: str) -> str:
            v = live.get(key)
            return f.format(v) if isinstance(v, int | float) else "?"

        return Text.assemble(
            (f"[{elapsed:5.0f} s] ", "dim"), (f"{state['phase']}", "bold"), f" {state['detail']}  ",
            ("lag ", "dim"), fmt("lag", "{:.0f}"), ("  p95 e2e ", "dim"), fmt("p95", "{:.3f} s"),
            ("  ready ", "dim"), fmt("ready", "{:.0f}"))

    # A terminal gets a live status line; a log (CI) gets one line per phase and no redraws.
    live_view = Live(render(), console=console, refresh_per_second=2, transient=False) if console.is_terminal else None

    def phase(name: str, detail: str) -> None:
        if name != "activity" and name != state["phase"]:
            console.log(f"{name}: {detail}")
        elif name == "activity" and live_view is None:
            console.log(f"  {detail}")
        state.update(phase=name, detail=detail)
        if live_view is not None:
            live_view.update(render())

    def live(values: dict[str, object]) -> None:
        state["live"] = values
        if live_view is not None:
            live_view.update(render())

    interrupted: RunInterrupted | None = None
    try:
        if live_view is not None:
            live_view.start()
        result = run_scenario(options, phase=phase, live=live)
    except RunInterrupted as exc:  # rolled back and judged: its verdicts, then the caller stops
        interrupted, result = exc, exc.result
    finally:
        if live_view is not None:
            live_view.stop()
    _print_verdicts(result.summary)
    console.print(f"report: {result.run_dir / 'report.html'}")
    if interrupted is not None:
        raise interrupted
    return result


def _print_verdicts(summary: dict[str, object]) -> None:
    colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
    verdicts = summary.get("verdicts") or []
    assert isinstance(verdicts, list)
    for v in verdicts:
        measured = "-" if v["measured"] is None else f"{v['measured']:g}"
        c = colour.get(v["outcome"], "white")
        out.print(f"[{c}]{v['outcome']:<12}[/] {v['slo']:<24} {measured:>10} {v['unit']:<9} "
                  f"(objective {v['objective']}) {v['reason']}", soft_wrap=True)
    for err in summary.get("errors") or []:  # type: ignore[attr-defined]
        out.print(f"[yellow]error:[/] {err}", soft_wrap=True)
    outcome = str(summary.get("outcome"))
    out.print(f"[bold {colour.get(outcome, 'white')}]{outcome.upper()}[/] {summary.get('scenario')}")


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--slo-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Judge against this SLO catalogue instead of the one the run used (what-if).")
def report(run_dir: Path, slo_file: Path | None) -> None:
    """Re-judge a recorded run offline and re-render its report (no stack needed).

    Reads the run's recorded Prometheus answers, final store read and ledger, computes the
    verdicts again, rewrites summary.json and report.html, and exits like `run` did
    (0 pass, 1 an SLO failed, 2 inconclusive). With --slo-file, the same recording is judged
    against other objectives.
    """
    from probes.slo import SloFileError, load_catalogue
    from resilience.judge import judge
    from resilience.runner import render

    try:
        meta = json.loads((run_dir / "run.json").read_text())
        catalogue = load_catalogue(slo_file) if slo_file else None
    except SloFileError as exc:
        _fail(str(exc), 2)
    except (OSError, ValueError) as exc:
        _fail(f"{run_dir / 'run.json'}: {exc}", 2)
    j = judge(run_dir, meta, meta.get("endpoints", {}).get("prometheus_url", ""), live=False, catalogue=catalogue)
    summary = j.summary(meta["scenario"])
    previous = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    if isinstance(previous, dict) and "history" in previous:
        summary["history"] = previous["history"]  # what the run recorded; `history import` records a re-judge
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    render(run_dir)
    _print_verdicts(summary)
    console.print(f"report: {run_dir / 'report.html'}")
    sys.exit(j.exit_code)


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@port_base_option
@service_option
def replay(run_dir: Path, port_base: int, service: str | None) -> None:
    """Run a recorded scenario again with the same experiment, load shape, rate, duration, seed and service
    (--service runs it against another one)."""
    try:
        meta = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError) as exc:
        _fail(f"{run_dir / 'run.json'}: {exc}", 2)
    load = meta.get("load", {})
    console.print(f"replaying {meta.get('scenario')} from {run_dir}: {meta.get('experiment')}, "
                  f"{load.get('shape')} {load.get('rate_eps')} events/s for {load.get('duration_s')} s, "
                  f"seed {load.get('seed')}")
    options = RunOptions(experiment=str(REPO_ROOT / meta["experiment"]) if not Path(meta["experiment"]).is_absolute()
                         else meta["experiment"], target=meta.get("target", "local"), shape=load.get("shape"),
                         rate=load.get("rate_eps"), duration=load.get("duration_s"), seed=load.get("seed"),
                         port_base=port_base, service=service or meta.get("service"))
    sys.exit(_run_and_print(options))


@cli.command()
@click.option("--tag", "tags", multiple=True,
              help="Only experiments with this tag (repeatable: any of them). "
                   "Experiments tagged `long` run only with --tag long or by name.")
@click.option("--experiment", "names", multiple=True, help="Only this experiment (repeatable).")
@click.option("--catalogue", "catalogue_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Directory of the experiments (default: experiments/ in the checkout): a team's "
                                 "own catalogue, or edited copies.")
@click.option("--profile", type=click.Choice(["minimal", "ha"]), default="minimal", show_default=True,
              help="Stack profile of the gate: experiments that need another profile are listed and skipped.")
@click.option("--target", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True,
              help="kubernetes: endpoints and k8s_* keys come from the file named by RESILIENCE_TARGET_CONFIG.")
@port_base_option
@data_dir_option
@click.option("--reports-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the gate directory goes (default: reports/ in the checkout).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the JUnit XML here (it is always in the gate directory).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Base load of every experiment in events per second (default: each experiment's, 300 for most); "
                   "a smaller cluster than the SLOs were written for: say so with a lower rate, not a laxer SLO.")
@click.option("--repeat", type=click.IntRange(1, 100), default=None,
              help="Trials per experiment (default: each experiment's `repeat`, usually 1).")
@click.option("--baseline", default=None, metavar="RELEASE|RUN-ID|GATE-ID|last-N",
              help="Compare every SLO with this baseline from the history (Mann-Whitney U): a regression fails "
                   "the gate (docs/report.md, 'Regression verdicts').")
@abort_if_option
@secure_option
@service_option
def gate(tags: tuple[str, ...], names: tuple[str, ...], catalogue_dir: Path | None, profile: str, target: str,
         port_base: int,
         data_dir: Path | None, reports_dir: Path | None, junit_path: Path | None, rate: float | None,
         repeat: int | None,
         baseline: str | None, abort_if: tuple[str, ...], secure: bool, service: str | None) -> None:
    """Run the catalogue (or a tagged subset) as a pre-release gate: one verdict for CI.

    \b
    Writes reports/gate-<time>/ with one run directory per scenario, index.html and
    junit.xml (an inconclusive scenario is a JUnit error, never a pass).
    Exit code: 0 every scenario passed, 1 any SLO failed, 2 otherwise inconclusive or an error.
    """
    from resilience.experiments import ExperimentError
    from resilience.gate import GateOptions, run_gate, select

    options = GateOptions(tags=tags, names=names, profile=profile, target=target, port_base=port_base,
                          data_dir=data_dir, reports_dir=reports_dir or DEFAULT_REPORTS, junit_path=junit_path,
                          repeat=repeat, baseline=baseline, abort_if=abort_if, secure=secure, service=service,
                          rate=rate, **({"catalogue_dir": catalogue_dir} if catalogue_dir else {}))
    try:
        chosen, other = select(options)
    except ExperimentError as exc:
        _fail(str(exc), 2)
    from resilience.cli_history import check_baseline, refuse_if_halted

    refuse_if_halted(target)
    if baseline:
        console.print(f"baseline: {check_baseline(baseline)}")
    if other:
        console.print(f"skipping {', '.join(e.name for e in other)}: they need another profile than {profile} "
                      "(run the gate again with --profile)")
    if not chosen:
        _fail(f"no {profile} experiment matches --tag {list(tags)} --experiment {list(names)} "
              "(see `resilience list`)", 2)
    console.print(f"gate: {len(chosen)} scenarios ({', '.join(e.name for e in chosen)})")

    def run_one(run_options: RunOptions) -> RunResult:
        try:
            return _run_with_progress(run_options)
        except RunError as exc:
            console.print(f"[bold red]error:[/] {exc}\nnothing was injected", soft_wrap=True)
            raise

    result = run_gate(options, run_one, chosen,
                      on_start=lambda i, n, exp: console.rule(f"[{i}/{n}] {exp.name}"))
    console.rule("gate")
    for r in result.results:
        changed = ", ".join(f"{c['slo']} {c['verdict']}" for c in r.comparisons if c.get("verdict") != "no change")
        score = "-" if r.score is None else f"{r.score:g}"
        out.print(f"{r.outcome.value:<13} {r.scenario:<26} score {score:>5}" + (f"  {changed}" if changed else ""),
                  soft_wrap=True)
    for note in result.skipped:
        console.print(f"[yellow]skipped[/] {note}", soft_wrap=True)
    for note in result.settled:
        console.print(f"[yellow]settled[/] {note}", soft_wrap=True)
    if result.interrupted:
        console.print(f"[bold red]interrupted[/] during {result.interrupted}: the experiments after it did not "
                      "start", soft_wrap=True)
    console.print(f"index: {result.index}\njunit: {result.junit}")
    sys.exit(result.exit_code)


@cli.command(name="check-target")
@click.option("--target", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True,
              help="Which target's metric view to check (kubernetes: endpoints and keys come from the file "
                   "named by RESILIENCE_TARGET_CONFIG).")
@port_base_option
@click.option("--prometheus-url", envvar="RESILIENCE_PROMETHEUS_URL", help="Prometheus base URL (local: the stack's).")
@click.option("--metric-profiles", default=None,
              help="Comma-separated metric profiles of the SLO catalogue, first wins (default: the target's).")
@click.option("--selector", "metric_selector", default=None,
              help="Label matchers selecting the service, e.g. 'namespace=\"audit\", app=\"sql-audit\"'.")
@click.option("--slo-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="SLO catalogue (default: docs/slo.yaml).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@service_option
def check_target(target: str, port_base: int, prometheus_url: str | None, metric_profiles: str | None,
                 metric_selector: str | None, slo_file: Path | None, as_json: bool, service: str | None) -> None:
    """Check, before any fault, that the target's Prometheus has every metric the suite reads.

    \b
    Asks every measure of the SLO catalogue once, under the metric profiles and selector the
    target uses (or the ones given), and prints one line per measure:
      ok         it returned a value
      idle       its metrics exist but had no samples in the last minute (no events yet)
      missing    Prometheus has no series of a metric it reads: named, with the selector
      undefined  no chosen profile defines it
      optional   an optional measure (the read API) the service does not have: its SLOs are not applicable
    Exit codes: 0 every measure ok or idle, 2 a measure missing or undefined (or bad input).
    """
    from probes import prom
    from resilience.check_target import check_measures

    try:
        options = RunOptions(experiment="pod_failure", target=target, port_base=port_base,
                             slo_file=slo_file or DEFAULT_SLO_FILE, prometheus_url=prometheus_url,
                             metric_profiles=tuple(p.strip() for p in (metric_profiles or "").split(",") if p.strip()),
                             metric_selector=metric_selector, service=service)
        from resilience.plan import plan as make_plan

        p = make_plan(options)
        checks = check_measures(p.catalogue, p.view, p.prometheus_url)
    except (RunError, prom.ProbeError) as exc:
        _fail(str(exc), 2)
    bad = [c for c in checks if not c.usable]
    if as_json:
        out.print_json(json.dumps({"prometheus_url": p.prometheus_url, "view": p.view.as_dict(),
                                   "measures": [c.__dict__ for c in checks], "ok": not bad}))
    else:
        out.print(f"{p.prometheus_url}: service {p.settings.service}, profiles {', '.join(p.view.profiles)}, "
                  f"selector {p.view.selector}", soft_wrap=True)
        colour = {"ok": "green", "idle": "yellow", "missing": "red", "undefined": "red", "optional": "dim"}
        for c in checks:
            shown = f"{c.value:g}" if c.value is not None else ""
            out.print(f"[{colour[c.status]}]{c.status:<9}[/] {c.measure:<24} {shown:>10}  {c.detail}", soft_wrap=True)
    sys.exit(2 if bad else 0)


@cli.command(name="list")
def list_experiments() -> None:
    """List the experiment catalogue: name, scenario, tags, title."""
    from resilience.experiments import ExperimentError, catalogue

    try:
        exps = catalogue()
    except ExperimentError as exc:
        _fail(str(exc), 2)
    for e in exps:
        out.print(f"{e.name:<28} {e.ext.scenario:<24} {','.join(e.ext.tags):<14} {e.title}", soft_wrap=True)


def _register_commands() -> None:
    """`cleanup` and the internal `watchdog` live with the fault library (faults/cli.py), `cluster` with the
    local Kubernetes cluster (cluster/cli.py), `history`, `halt` and `resume` in resilience/cli_history.py."""
    from cluster.cli import cluster as cluster_group
    from faults.cli import cleanup_command, watchdog_command
    from resilience.cli_history import halt_command, history_group, resume_command

    cli.add_command(cleanup_command)
    cli.add_command(watchdog_command)
    cli.add_command(cluster_group, "cluster")
    cli.add_command(history_group)
    cli.add_command(halt_command)
    cli.add_command(resume_command)


_register_commands()


def _stack(port_base: int, data_dir: Path | None, profile: str = "minimal", secure: bool = False,
           service: str | None = None) -> LocalStack:
    try:
        return LocalStack(port_base=port_base, data_dir=data_dir, profile=profile, secure=secure, service=service)
    except StackError as exc:
        _fail(str(exc), EXIT_USAGE)


def _fail(message: str, code: int, note: str | None = None) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
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
    out.print(f"{st.profile} stack ({st.service} service), port base {st.port_base}, "
              f"supervisord pid {st.supervisord_pid}, data {st.data_dir}", soft_wrap=True)
    width = max(len(c.name) for c in st.components)
    for c in st.components:
        mark = "[green]ok  [/]" if c.healthy else "[red]FAIL[/]"
        out.print(f"{mark} {c.name:<{width}}  {c.state:<8} pid {c.pid or '-':<7}  {c.endpoint}  — {c.detail}",
                  soft_wrap=True)


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (a CI timeout, `kill`) gets the same clean-up as Ctrl-C: a partial `up` is torn
    # down, a run rolls its faults back. (chaoslib installs its own handlers while it runs.)
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    signal.signal(signal.SIGTERM, _terminate)
    # A shell without job control starts a background job (`resilience gate &` in a script, a CI step) with
    # SIGINT ignored, and Python then installs no handler: `kill -INT` would do nothing. Ctrl-C and
    # SIGINT roll a run back like SIGTERM, wherever it was started.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    cli()


if __name__ == "__main__":
    main()
