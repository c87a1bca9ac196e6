"""``cluster install | up | status | down``: a single-node Kubernetes cluster on this machine;
``deploy | undeploy``: the system under test on it; ``runner | job``: the suite's runner in it.

Exit codes (for CI): 0 ok (healthy) · 1 a step failed or the cluster is unhealthy ·
2 bad invocation · 3 a tool, binary or image is not installed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import NoReturn

import click

from cluster.core import ClusterStatus, LocalCluster
from cluster.errors import ClusterError, ComponentError, MissingToolError
from cluster.install import run_install
from cluster.runner import data_dir, deploy_runner, follow, logs, start_job
from cluster.settings import ClusterSettings
from cluster.system import deploy as deploy_system
from cluster.system import undeploy as undeploy_system

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MISSING = 0, 1, 2, 3

state_dir_option = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The cluster's state (certificates, etcd, images, logs). Default: $RESILIENCE_CLUSTER_DIR, else "
         "$RESILIENCE_DATA_ROOT/cluster (/var/tmp/sql-audit-resilience/cluster).")


def _echo(text: str) -> None:
    click.echo(text, err=True)


def _fail(message: str, code: int) -> NoReturn:
    _echo(f"error: {message}")
    sys.exit(code)


def _settings(state_dir: Path | None) -> ClusterSettings:
    try:
        return ClusterSettings.from_env(state_dir)
    except ClusterError as exc:
        _fail(str(exc), EXIT_USAGE)


def _print_status(st: ClusterStatus, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(st.as_dict(), indent=2))
        return
    for c in st.components:
        mark = "ok " if c.healthy else "BAD"
        pid = f"pid {c.pid}" if c.pid else ""
        click.echo(f"{mark} {c.name:<24} {c.state:<10} {pid:<11} {c.detail}")
    click.echo(f"{'healthy' if st.healthy else 'UNHEALTHY'}: API {st.api_server}, kubeconfig {st.kubeconfig}")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cluster(verbose: int) -> None:
    """A real single-node Kubernetes cluster on this machine, for the `kubernetes` target.

    \b
    etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet + containerd, kube-proxy,
    kube-router (NetworkPolicy enforcement) and CoreDNS, all in a network and mount namespace of their
    own ("the node", reached from the machine over a veth; no route out), supervised by supervisord.
    Images come from archives built here (no registry): pods use imagePullPolicy: Never.

    \b
      cluster install            # once: build and cache binaries and images (~20 min cold; seconds after)
      cluster up                 # start; waits until the node and CoreDNS are Ready
      cluster status             # one line per component; exit 1 if anything is unhealthy
      cluster down [--purge]     # stop, remove namespaces/mounts/cgroups, restore sysctls; --purge: state

    Needs root. Exit codes: 0 ok, 1 failed or unhealthy, 2 bad invocation, 3 not installed.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cluster.command()
@click.option("--force", is_flag=True, help="Rebuild our binaries and images even when cached.")
def install(force: bool) -> None:
    """Build and cache what the cluster runs (deploy/k8s/local/install.sh; idempotent).

    Debian packages (containerd, runc, CNI plugins, iptables, ipset, debootstrap, umoci), kube-apiserver and
    etcd (shared with the API-server tests), kubelet, kube-controller-manager, kube-scheduler, kube-proxy,
    kubectl, kube-router, CoreDNS from the Go module proxy, and the pause, coredns and base images, into
    RESILIENCE_K8S_CACHE (default /var/cache/sql-audit-resilience/k8s). Prints each step's time.
    """
    settings = _settings(None)
    try:
        run_install(settings, force=force)
    except MissingToolError as exc:
        _fail(str(exc), EXIT_MISSING)
    except ClusterError as exc:
        _fail(str(exc), EXIT_FAILED)


@cluster.command()
@state_dir_option
@click.option("--timeout", type=click.FloatRange(min=10), default=300, show_default=True,
              help="Seconds to wait for everything to be healthy.")
@click.option("--json", "as_json", is_flag=True, help="Print the final status as JSON on stdout.")
def up(state_dir: Path | None, timeout: float, as_json: bool) -> None:
    """Start the cluster and wait until the node and CoreDNS are Ready (idempotent).

    Starts only what is not running: a second `up` checks and returns. When a component does not become
    healthy, names it and shows the end of its log; what started stays up for inspection (`down` stops it).
    """
    settings = _settings(state_dir)
    lc = LocalCluster(settings)
    t0 = time.monotonic()
    try:
        st = lc.up(progress=lambda step, detail: _echo(f"  {step}: {detail}"), timeout=timeout)
    except MissingToolError as exc:
        _fail(str(exc), EXIT_MISSING)
    except ComponentError as exc:
        _fail(f"{exc.describe()}\n  (`cluster status` shows the rest; `cluster down` stops it)", EXIT_FAILED)
    except ClusterError as exc:
        _fail(str(exc), EXIT_FAILED)
    _echo(f"up in {time.monotonic() - t0:.1f} s")
    _print_status(st, as_json)
    sys.exit(EXIT_OK if st.healthy else EXIT_FAILED)


@cluster.command()
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def status(state_dir: Path | None, as_json: bool) -> None:
    """One line per component (state, pid, health); exit 1 if anything is unhealthy or the cluster is down."""
    st = LocalCluster(_settings(state_dir)).status()
    _print_status(st, as_json)
    sys.exit(EXIT_OK if st.healthy else EXIT_FAILED)


@cluster.command()
@state_dir_option
@click.option("--purge", is_flag=True, help="Also delete the state directory (certificates, etcd, images, logs).")
def down(state_dir: Path | None, purge: bool) -> None:
    """Stop everything and leave the machine as it was before `up`.

    Stops every component and container (verified by pid), removes the node's namespaces (with every mount
    containerd and the kubelet made, the pods' networks and the veth), the pods' cgroups, and restores the
    host sysctls saved by `up`. Exit 1 lists whatever could not be undone.
    """
    lc = LocalCluster(_settings(state_dir))
    try:
        problems = lc.down(purge=purge, progress=lambda step, detail: _echo(f"  {step}: {detail}"))
    except ClusterError as exc:
        _fail(str(exc), EXIT_FAILED)
    if problems:
        _fail("down left something behind:\n  " + "\n  ".join(problems), EXIT_FAILED)
    _echo("down" + (" and purged" if purge else ""))


@cluster.command()
@state_dir_option
@click.option("--timeout", type=click.FloatRange(min=10), default=600, show_default=True,
              help="Seconds to wait for the bootstrap Job and every StatefulSet.")
def deploy(state_dir: Path | None, timeout: float) -> None:
    """Put the system under test on the running cluster and wait Ready (deploy/k8s/local/system/).

    Imports the platform and service images (deploy/k8s/local/images.sh), applies the overlay in namespace
    sql-audit (Kafka, PostgreSQL, ClickHouse, Prometheus, the service's StatefulSet of 3, NetworkPolicies),
    waits for the bootstrap Job and every StatefulSet, and writes the target file for
    `resilience run --target kubernetes` (its path is printed on stdout).
    """
    settings = _settings(state_dir)
    try:
        path = deploy_system(settings, progress=lambda step, detail: _echo(f"  {step}: {detail}"), timeout=timeout)
    except MissingToolError as exc:
        _fail(str(exc), EXIT_MISSING)
    except ClusterError as exc:
        _fail(str(exc), EXIT_FAILED)
    click.echo(str(path))


@cluster.command()
@state_dir_option
def undeploy(state_dir: Path | None) -> None:
    """Delete the system under test (namespace sql-audit) and wait until it is gone."""
    try:
        undeploy_system(_settings(state_dir), progress=lambda step, detail: _echo(f"  {step}: {detail}"))
    except ClusterError as exc:
        _fail(str(exc), EXIT_FAILED)


@cluster.command()
@state_dir_option
def runner(state_dir: Path | None) -> None:
    """Put the suite's runner in the cluster (deploy/k8s/local/runner/, after `deploy`).

    deploy/k8s/base as a staging cluster gets it: ServiceAccount and least-privilege Role, the nightly CronJob
    (suspended here: `job` runs its template), the gate Job's template, the report volume (a directory of the
    node, printed), with the runner image built here and the system's in-cluster names as target file.
    """
    settings = _settings(state_dir)
    try:
        deploy_runner(settings, progress=lambda step, detail: _echo(f"  {step}: {detail}"))
    except MissingToolError as exc:
        _fail(str(exc), EXIT_MISSING)
    except ClusterError as exc:
        _fail(str(exc), EXIT_FAILED)
    click.echo(str(data_dir(settings)))


@cluster.command(context_settings={"ignore_unknown_options": True})
@state_dir_option
@click.option("--timeout", type=click.FloatRange(min=10), default=3600, show_default=True,
              help="Seconds to wait for the run to end (the Job's own activeDeadlineSeconds is 1 h).")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def job(state_dir: Path | None, timeout: float, args: tuple[str, ...]) -> None:
    """Run `resilience ARGS` once in the cluster, in a Job of the nightly CronJob's template; exit with its code.

    \b
    Example:
      python -m cluster job -- run pod_failure --target kubernetes --rate 50 \\
          --reports-dir /var/lib/resilience/reports
    The pod's logs are printed as they come; the reports are on the volume `runner` printed.
    Exit codes: the runner's (0 pass, 1 SLO failed, 2 inconclusive...), or 1 when the pod failed without one.
    """
    settings = _settings(state_dir)
    name = ""
    try:
        name = start_job(settings, list(args))
        _echo(f"  job/{name}: created")
        code = follow(settings, name, progress=lambda step, detail: _echo(f"  {step}: {detail}"), timeout=timeout)
    except ClusterError as exc:
        if name:
            click.echo(logs(settings, name))
        _fail(str(exc), EXIT_FAILED)
    _echo(f"job/{name}: runner exited {code}")
    sys.exit(code)


def main() -> None:
    cluster(prog_name="cluster")
