"""Pod readiness from the Kubernetes API, in kube-state-metrics' names (the local cluster's stand-in for it).

kube-state-metrics is not built here yet; the suite's ``kubernetes`` metric profile reads
``kube_pod_status_ready{namespace, pod, condition}``. This exporter keeps a copy of the pods of its
namespace (a list every ``PERIOD`` seconds with the pod's ServiceAccount token, as kube-state-metrics'
informer keeps one) and serves the Ready condition the kubelet wrote into each pod's status: a pod the
kubelet has not found ready is 0, a deleted pod has no series at all. Scrapes are served from the copy, so
a slow API server delays the copy, never a scrape. Serves ``127.0.0.1:9101/metrics`` (the Prometheus pod's
loopback).

It also serves ``kube_pod_container_status_restarts_total{namespace, pod, container}`` (the kubelet's restart
count of each container: what ``liveness_restart`` reads after a hang) and
``kube_statefulset_replicas{namespace, statefulset}`` (each StatefulSet's desired replicas),
as kube-state-metrics does: a series present whenever a scrape succeeded, even with every pod gone, so the
readiness queries can tell "no pod ready" (0) from "this scrape failed" (no sample), docs/slo.yaml.
"""

import os
import threading
import time
from pathlib import Path

import requests
from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily

SA = "/var/run/secrets/kubernetes.io/serviceaccount"
NAMESPACE = os.environ.get("POD_NAMESPACE") or Path(f"{SA}/namespace").read_text().strip()
SELECTOR = os.environ.get("POD_SELECTOR", "")
PERIOD = float(os.environ.get("PERIOD", "0.5"))
API = f"https://{os.environ['KUBERNETES_SERVICE_HOST']}:{os.environ['KUBERNETES_SERVICE_PORT']}"

pods: list[tuple[str, str]] = []     # (pod, "true" | "false" | "unknown")
restarts: list[tuple[str, str, int]] = []  # (pod, container, restartCount)
statefulsets: list[tuple[str, int]] = []  # (name, spec.replicas)
lock = threading.Lock()


def poll() -> None:
    session = requests.Session()
    session.verify = f"{SA}/ca.crt"
    while True:
        t0 = time.monotonic()
        try:
            session.headers["Authorization"] = "Bearer " + Path(f"{SA}/token").read_text().strip()
            res = session.get(f"{API}/api/v1/namespaces/{NAMESPACE}/pods",
                              params={"labelSelector": SELECTOR}, timeout=5)
            res.raise_for_status()
            snapshot, counts = [], []
            for item in res.json()["items"]:
                conds = {c["type"]: c["status"].lower() for c in item.get("status", {}).get("conditions", [])}
                snapshot.append((item["metadata"]["name"], conds.get("Ready", "unknown")))
                counts += [(item["metadata"]["name"], c["name"], int(c.get("restartCount", 0)))
                           for c in item.get("status", {}).get("containerStatuses", [])]
            res = session.get(f"{API}/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets", timeout=5)
            res.raise_for_status()
            sets = [(i["metadata"]["name"], int(i["spec"].get("replicas", 1))) for i in res.json()["items"]]
            with lock:
                pods[:] = snapshot
                restarts[:] = counts
                statefulsets[:] = sets
        except (requests.RequestException, OSError, ValueError, KeyError) as exc:
            print(f"list pods: {exc}", flush=True)
        time.sleep(max(0.0, PERIOD - (time.monotonic() - t0)))


class Collector:
    def collect(self):  # type: ignore[no-untyped-def]
        ready = GaugeMetricFamily("kube_pod_status_ready", "The pod's Ready condition (kubelet).",
                                  labels=["namespace", "pod", "condition"])
        desired = GaugeMetricFamily("kube_statefulset_replicas", "Number of desired pods for a StatefulSet.",
                                    labels=["namespace", "statefulset"])
        restarted = CounterMetricFamily("kube_pod_container_status_restarts", "The number of container restarts "
                                        "per container (the kubelet's restartCount).",
                                        labels=["namespace", "pod", "container"])
        with lock:
            snapshot, sets, counts = list(pods), list(statefulsets), list(restarts)
        for pod, status in snapshot:
            for condition in ("true", "false", "unknown"):
                ready.add_metric([NAMESPACE, pod, condition], 1.0 if status == condition else 0.0)
        for name, replicas in sets:
            desired.add_metric([NAMESPACE, name], float(replicas))
        for pod, container, n in counts:
            restarted.add_metric([NAMESPACE, pod, container], float(n))
        yield ready
        yield desired
        yield restarted


if __name__ == "__main__":
    REGISTRY.register(Collector())  # type: ignore[arg-type]
    start_http_server(9101, addr="127.0.0.1")
    poll()
