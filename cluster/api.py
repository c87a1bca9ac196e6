"""Reading the cluster through its API (admin kubeconfig): node readiness and Deployments."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import kubernetes

from cluster.settings import ClusterSettings

REQUEST_TIMEOUT = 5


@contextlib.contextmanager
def admin_client(settings: ClusterSettings) -> Iterator[kubernetes.client.ApiClient]:
    """An API client as the cluster's admin (system:masters), closed on exit."""
    api = kubernetes.config.new_client_from_config(str(settings.admin_kubeconfig))
    try:
        yield api
    finally:
        api.close()


def _condition(obj: Any, kind: str) -> Any:
    return next((c for c in (obj.status.conditions or []) if c.type == kind), None)


def node_problem(api: kubernetes.client.ApiClient, node: str) -> str | None:
    """``None`` when ``node`` is Ready, else why not."""
    try:
        obj: Any = kubernetes.client.CoreV1Api(api).read_node(node, _request_timeout=REQUEST_TIMEOUT)
    except kubernetes.client.ApiException as exc:
        return f"node {node}: HTTP {exc.status} {exc.reason}"
    ready = _condition(obj, "Ready")
    if ready is None:
        return f"node {node}: no Ready condition yet"
    return None if ready.status == "True" else f"node {node}: {ready.reason}: {ready.message}"


def deployment_problem(api: kubernetes.client.ApiClient, namespace: str, name: str) -> str | None:
    """``None`` when every replica of the Deployment is updated and ready, else why not."""
    try:
        dep: Any = kubernetes.client.AppsV1Api(api).read_namespaced_deployment(name, namespace,
                                                                         _request_timeout=REQUEST_TIMEOUT)
    except kubernetes.client.ApiException as exc:
        return f"deployment {namespace}/{name}: HTTP {exc.status} {exc.reason}"
    want = dep.spec.replicas or 0
    st = dep.status
    ready, updated = st.ready_replicas or 0, st.updated_replicas or 0
    if want and ready >= want and updated >= want and (st.observed_generation or 0) >= dep.metadata.generation:
        return None
    return f"deployment {namespace}/{name}: {ready}/{want} ready, {updated} updated"
