"""Benchmark: the local cluster's start-up, idle footprint, pod recovery and NetworkPolicy timing.

    .venv/bin/python benchmarks/local_cluster.py [--state-dir DIR] [--repeat 5] [--idle 30] [--keep]

1. ``up`` from an empty state directory (certificates made, images imported, CoreDNS scheduled), then
   ``down`` (state kept) and ``up`` again, ``--repeat`` times: the warm start-up.
2. Idle footprint after ``--idle`` seconds: RSS and PSS summed over supervisord and every process of
   the node (components, containerd shims, the CoreDNS pod), per program, and CPU over the idle window.
3. A 3-replica StatefulSet of the base image: time to Ready; then ``--repeat`` times: delete ``web-1``,
   time until its replacement is Running and Ready.
4. A TCP prober pod against a server pod: ``--repeat`` times: create a deny-ingress NetworkPolicy, time
   until connections fail steadily; delete it, time until they succeed steadily (probe every 0.1 s).

Prints one line per measurement and a summary (median, min, max). Needs root and an installed cluster
(``python -m cluster install``). Ends with ``down --purge`` unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections import defaultdict
from pathlib import Path

import kubernetes
import psutil

from cluster import ClusterSettings, LocalCluster, workloads
from cluster.install import load_manifest
from cluster.settings import DEFAULT_DATA_ROOT


def _summary(name: str, values: list[float], unit: str = "s") -> None:
    if values:
        print(f"== {name}: median {statistics.median(values):.2f} {unit}, min {min(values):.2f}, "
              f"max {max(values):.2f} (n={len(values)})")


def _timed_up(lc: LocalCluster) -> float:
    t0 = time.monotonic()
    st = lc.up(progress=lambda step, detail: None)
    elapsed = time.monotonic() - t0
    if not st.healthy:
        raise SystemExit(f"cluster not healthy: {st.as_dict()}")
    return elapsed


def _footprint(lc: LocalCluster, idle: float) -> None:
    pids = lc.node_processes()
    sv = lc.supervisor.pid()
    if sv:
        pids.add(sv)
    procs = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            procs.append((p, p.cpu_times()))
        except psutil.Error:
            continue
    t0 = time.monotonic()
    time.sleep(idle)
    wall = time.monotonic() - t0
    rss: dict[str, float] = defaultdict(float)
    pss: dict[str, float] = defaultdict(float)
    cpu = 0.0
    for p, before in procs:
        try:
            mem = p.memory_full_info()
            after = p.cpu_times()
            name = p.name()
        except psutil.Error:
            continue
        rss[name] += mem.rss / 2**20
        pss[name] += mem.pss / 2**20
        cpu += (after.user - before.user) + (after.system - before.system)
    for name in sorted(rss, key=lambda n: -rss[n]):
        print(f"   {name:<28} RSS {rss[name]:7.1f} MiB   PSS {pss[name]:7.1f} MiB")
    print(f"== idle footprint ({len(procs)} processes, after {idle:g} s idle): RSS {sum(rss.values()):.0f} MiB, "
          f"PSS {sum(pss.values()):.0f} MiB, CPU {100 * cpu / wall:.1f} % of one core")


def _pod_recovery(api: kubernetes.client.ApiClient, ns: str, image: str, repeat: int) -> None:
    core = kubernetes.client.CoreV1Api(api)
    t0 = time.monotonic()
    kubernetes.utils.create_from_yaml(api, yaml_objects=workloads.statefulset("web", image, 3), namespace=ns)

    def ready(name: str, not_uid: str | None = None) -> bool:
        try:
            pod = core.read_namespaced_pod(name, ns, _request_timeout=10)
        except kubernetes.client.ApiException:
            return False
        return pod.metadata.uid != not_uid and workloads.pod_ready(pod)

    workloads.wait_for("3 Ready", lambda: all(ready(f"web-{i}") for i in range(3)), timeout=180)
    print(f"   StatefulSet of 3 Ready in {time.monotonic() - t0:.2f} s")
    times = []
    for i in range(repeat):
        uid = core.read_namespaced_pod("web-1", ns, _request_timeout=10).metadata.uid
        t = time.monotonic()
        core.delete_namespaced_pod("web-1", ns, _request_timeout=10)
        workloads.wait_for("web-1 back", lambda uid=uid: ready("web-1", uid), timeout=120, interval=0.05)
        times.append(time.monotonic() - t)
        print(f"   delete #{i + 1}: web-1 Running and Ready again after {times[-1]:.2f} s")
        time.sleep(2)
    _summary("deleted pod Ready again", times)


def _policy(api: kubernetes.client.ApiClient, ns: str, image: str, repeat: int) -> None:
    core = kubernetes.client.CoreV1Api(api)
    net = kubernetes.client.NetworkingV1Api(api)
    core.create_namespaced_pod(ns, workloads.tcp_server("server", image), _request_timeout=10)
    server = workloads.wait_for("server", lambda: (p := core.read_namespaced_pod("server", ns, _request_timeout=10))
                                and workloads.pod_ready(p) and p, timeout=120)
    core.create_namespaced_pod(ns, workloads.tcp_client("client", image, server.status.pod_ip), _request_timeout=10)

    def log() -> list[workloads.Attempt]:
        try:
            return workloads.probe_log(core, ns, "client")
        except kubernetes.client.ApiException:
            return []

    start = time.time()
    workloads.wait_for("TCP ok", lambda: workloads.first_stable(log(), start, True), timeout=120, interval=0.2)
    cuts, restores = [], []
    for i in range(repeat):
        net.create_namespaced_network_policy(ns, workloads.deny_ingress_policy("deny", {"app": "server"}),
                                             _request_timeout=10)
        applied = time.time()
        cut = workloads.wait_for("cut", lambda a=applied: workloads.first_stable(log(), a, False), timeout=60,
                                 interval=0.2)
        time.sleep(1)
        net.delete_namespaced_network_policy("deny", ns, _request_timeout=10)
        deleted = time.time()
        back = workloads.wait_for("restored", lambda d=deleted: workloads.first_stable(log(), d, True), timeout=60,
                                  interval=0.2)
        cuts.append(cut.at - applied)
        restores.append(back.at - deleted)
        print(f"   policy #{i + 1}: cut after {cuts[-1]:.2f} s, restored after {restores[-1]:.2f} s")
        time.sleep(1)
    _summary("deny policy cuts TCP", cuts)
    _summary("policy deleted, TCP restored", restores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = Path(os.environ.get("RESILIENCE_DATA_ROOT", DEFAULT_DATA_ROOT))
    parser.add_argument("--state-dir", type=Path, default=root / "bench-cluster")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    args = parser.parse_args()
    settings = ClusterSettings.from_env(args.state_dir)
    image = load_manifest(settings).images["base"].ref
    lc = LocalCluster(settings)
    lc.down(purge=True)
    try:
        print(f"== up from an empty state directory: {_timed_up(lc):.1f} s")
        warm = []
        for i in range(args.repeat):
            problems = lc.down()
            if problems:
                raise SystemExit(f"down left: {problems}")
            warm.append(_timed_up(lc))
            print(f"   warm up #{i + 1}: {warm[-1]:.1f} s")
        _summary("warm up", warm)
        _footprint(lc, args.idle)
        api = kubernetes.config.new_client_from_config(str(settings.admin_kubeconfig))
        ns = f"bench-{uuid.uuid4().hex[:6]}"
        kubernetes.client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
        core = kubernetes.client.CoreV1Api(api)
        workloads.wait_for("default ServiceAccount", lambda: core.list_namespaced_service_account(
            ns, _request_timeout=10).items, timeout=30)
        _pod_recovery(api, ns, image, args.repeat)
        _policy(api, ns, image, args.repeat)
        api.close()
    finally:
        if not args.keep:
            problems = lc.down(purge=True)
            print(f"down --purge: {problems or 'clean'}")


if __name__ == "__main__":
    main()
