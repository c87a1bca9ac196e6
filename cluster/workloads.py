"""Small workloads that prove the cluster works, and measure it (used by tests/cluster and the benchmark).

- :func:`statefulset`: N replicas of the base image behind a headless Service, each serving HTTP on
  8080 with a readiness probe (the shape the system's Kafka/Patroni/ClickHouse StatefulSets have).
- :func:`tcp_pair`: a server pod and a client pod whose prober opens a real TCP connection to the
  server every 100 ms and prints ``<unix time> <1|0>`` per attempt; :func:`probe_log` reads it back.
  What NetworkPolicy enforcement is judged on.

Every object here is plain data for the Kubernetes API; nothing is applied by this module except
through the functions that say so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import kubernetes

REQUEST_TIMEOUT = 10

# A SIGTERM handler: PID 1 in a container ignores signals it does not handle, so without it every
# delete would wait out the whole grace period.
HTTP_SERVER = """\
import http.server, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
http.server.ThreadingHTTPServer(("", 8080), http.server.SimpleHTTPRequestHandler).serve_forever()
"""

PROBER = """\
import signal, socket, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
target = (sys.argv[1], int(sys.argv[2]))
while True:
    t = time.time()
    try:
        socket.create_connection(target, timeout=0.3).close()
        ok = 1
    except OSError:
        ok = 0
    print(f"{t:.3f} {ok}", flush=True)
    time.sleep(max(0.0, 0.1 - (time.time() - t)))
"""


def _container(name: str, image: str, script: str, *args: str, port: int | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "Never",
                         "command": ["python3", "-c", script, *args],
                         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}}
    if port is not None:
        c["ports"] = [{"name": "http", "containerPort": port}]
        c["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 1}
    return c


def statefulset(name: str, image: str, replicas: int = 3) -> list[dict[str, Any]]:
    """A headless Service and a StatefulSet of ``replicas`` HTTP servers (``app=<name>``)."""
    labels = {"app": name}
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
         "spec": {"clusterIP": "None", "selector": labels, "ports": [{"name": "http", "port": 8080}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "labels": labels},
         "spec": {"serviceName": name, "replicas": replicas, "podManagementPolicy": "Parallel",
                  "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"terminationGracePeriodSeconds": 5,
                                        "containers": [_container("http", image, HTTP_SERVER, port=8080)]}}}},
    ]


def tcp_server(name: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name, "role": "server"}},
            "spec": {"terminationGracePeriodSeconds": 2,
                     "containers": [_container("server", image, HTTP_SERVER, port=8080)]}}


def tcp_client(name: str, image: str, target_ip: str, port: int = 8080) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name, "role": "client"}},
            "spec": {"terminationGracePeriodSeconds": 2,
                     "containers": [_container("prober", image, PROBER, target_ip, str(port))]}}


def deny_ingress_policy(name: str, selector: dict[str, str]) -> dict[str, Any]:
    """A NetworkPolicy that denies all ingress to the pods matching ``selector``."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name},
            "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"], "ingress": []}}


@dataclass(frozen=True)
class Attempt:
    at: float       # unix time the connection was attempted
    ok: bool


def probe_log(core: kubernetes.client.CoreV1Api, namespace: str, pod: str) -> list[Attempt]:
    """Every attempt the prober in ``pod`` printed so far."""
    text = core.read_namespaced_pod_log(pod, namespace, _request_timeout=REQUEST_TIMEOUT) or ""
    attempts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in ("0", "1"):
            attempts.append(Attempt(float(parts[0]), parts[1] == "1"))
    return attempts


def first_stable(attempts: list[Attempt], since: float, ok: bool, run: int = 5) -> Attempt | None:
    """The first attempt after ``since`` that starts ``run`` consecutive attempts with outcome ``ok``."""
    after = [a for a in attempts if a.at >= since]
    for i in range(len(after) - run + 1):
        if all(a.ok == ok for a in after[i:i + run]):
            return after[i]
    return None


def pod_ready(pod: Any) -> bool:
    return bool(pod.status and pod.status.phase == "Running"
                and any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or [])))


def wait_for(what: str, predicate: Any, timeout: float = 120.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; raises ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
