"""The one way the Kubernetes backends talk to the API server: every request named, logged and bounded.

:class:`Kube` opens a client for the configured kubeconfig context (or the pod's service
account), runs the safety guard of :mod:`target.kubernetes` before the first
request, and sends every request through :meth:`Kube._send`, which

* records the RBAC triple (verb, API group, resource) it needs: :data:`CALLS` lists every
  triple the backends can use, and deploy/k8s's Role must grant exactly those (a test
  checks both directions);
* on a dry run sends reads (get, list, and read-only execs) and *not* writes: each write is
  logged at INFO as ``dry run: would DELETE /api/v1/...`` and returned in ``requests``;
* passes a timeout to every request and wraps ``ApiException`` in ``ActivityFailed`` naming
  the request and the cluster.
"""

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import kubernetes
from chaoslib.exceptions import ActivityFailed
from kubernetes.client.rest import ApiException

from clients.wait import wait_until
from target.kubernetes import IN_CLUSTER, KubeSettings, kubeconfig_path
from target.settings import resolve

logger = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Call:
    """An RBAC rule atom: ``verb`` on ``resource`` (``pods/exec`` for a subresource) of API ``group``."""

    verb: str
    group: str
    resource: str


CALLS = frozenset({
    Call("list", "", "pods"), Call("get", "", "pods"), Call("delete", "", "pods"),
    Call("get", "", "pods/exec"), Call("create", "", "pods/exec"),
    Call("list", "networking.k8s.io", "networkpolicies"), Call("create", "networking.k8s.io", "networkpolicies"),
    Call("delete", "networking.k8s.io", "networkpolicies"),
    Call("get", "apps", "statefulsets"), Call("list", "apps", "statefulsets"), Call("patch", "apps", "statefulsets"),
    Call("patch", "apps", "statefulsets/scale"),
    Call("get", "", "configmaps"), Call("patch", "", "configmaps"),
    Call("list", "chaos-mesh.org", "networkchaos"), Call("create", "chaos-mesh.org", "networkchaos"),
    Call("delete", "chaos-mesh.org", "networkchaos"),
})
"""Every namespaced API call the Kubernetes backends can make (API discovery aside)."""

_METHOD = {"list": "GET", "get": "GET", "create": "POST", "delete": "DELETE", "patch": "PATCH"}
_recorders: list[list[Call]] = []


@contextlib.contextmanager
def record_calls() -> Iterator[list[Call]]:
    """Collect the :class:`Call` of every request sent (or, on a dry run, planned) inside the block."""
    calls: list[Call] = []
    _recorders.append(calls)
    try:
        yield calls
    finally:
        for i, recorder in enumerate(_recorders):
            if recorder is calls:  # by identity: recorders that hold equal lists are different recorders
                del _recorders[i]
                break


def is_ready(pod: Any) -> bool:
    """Whether ``pod`` is not terminating and has condition Ready=True."""
    if pod.metadata.deletion_timestamp is not None:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def rollout_status(sts: Any) -> tuple[bool, str]:
    """``(complete, message)`` of a StatefulSet's rolling update, judged as ``kubectl rollout status`` does.

    Complete when the controller has seen the latest spec (``observedGeneration``), every replica is
    Ready, every pod the update may touch runs the update revision (``updatedReplicas`` against
    ``replicas - partition``) and, without a partition, ``currentRevision`` caught up with
    ``updateRevision`` (the controller sets it when the roll is done).
    """
    name = sts.metadata.name
    strategy = sts.spec.update_strategy
    kind = (strategy.type if strategy else None) or "RollingUpdate"
    if kind != "RollingUpdate":
        return False, f"StatefulSet {name} has updateStrategy {kind}: a restart rolls no pod by itself"
    status = sts.status
    replicas = sts.spec.replicas if sts.spec.replicas is not None else 1
    if status is None or not status.observed_generation or (sts.metadata.generation or 0) > status.observed_generation:
        return False, f"waiting for the controller to observe generation {sts.metadata.generation} of {name}"
    ready = status.ready_replicas or 0
    if ready < replicas:
        return False, f"waiting for {replicas - ready} of {replicas} pods of {name} to be Ready"
    rolling = strategy.rolling_update if strategy else None
    partition = (rolling.partition if rolling else None) or 0
    updated = status.updated_replicas or 0
    if updated < replicas - partition:
        return False, (f"waiting for the rolling update of {name}: {updated} of {replicas - partition} pods at "
                       f"revision {status.update_revision}")
    if partition == 0 and status.update_revision != status.current_revision:
        return False, f"waiting for the rolling update of {name} to complete at revision {status.update_revision}"
    return True, f"rolling update of {name} complete: {replicas} pods at revision {status.update_revision}"


class Kube:
    """A guarded, recorded Kubernetes client for one activity call (use as a context manager)."""

    def __init__(self, configuration: dict[str, Any] | None, what: str,
                 environ: Mapping[str, str] | None = None) -> None:
        self.what = what
        self.base = resolve(configuration, environ)  # environ: the process's unless given (the sweep's target file)
        # The k8s_* keys of the target file too (RESILIENCE_TARGET_CONFIG), under the configuration's: Chaos
        # Toolkit drops the keys an experiment does not declare, so a run on a cluster names them only there.
        self.settings = KubeSettings.from_configuration(self.base.kubernetes_keys)
        self.dry_run = self.base.dry_run
        self.requests: list[str] = []
        self.context, client_config = _client_configuration(self.settings, what)
        self.server = str(client_config.host)
        self.settings.guard(self.context, self.server, what)
        self.api = kubernetes.client.ApiClient(client_config)
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.net = kubernetes.client.NetworkingV1Api(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)

    def __enter__(self) -> "Kube":
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.close()

    @property
    def where(self) -> str:
        return f"context {self.context} ({self.server})"

    # ------------------------------------------------------------------ plumbing
    def _send(self, verb: str, group: str, resource: str, path: str, fn: Callable[[], Any], *,
              write: bool, missing_ok: bool = False, also: tuple[str, ...] = ()) -> Any:
        """Send (or on a dry run, for a write, only log) one request; ``also``: further verbs it needs."""
        needed = [Call(v, group, resource) for v in (verb, *also)]
        for call in needed:
            assert call in CALLS, f"{call} missing from CALLS (and from deploy/k8s's Role)"
        for calls in _recorders:
            calls.extend(needed)
        line = f"{_METHOD[verb]} {path}"
        if write and self.dry_run:
            self.requests.append(line)
            logger.info("dry run: would %s on %s", line, self.where)
            return None
        if write:
            self.requests.append(line)
            logger.info("%s: %s on %s", self.what, line, self.where)
        else:
            logger.debug("%s: %s", self.what, line)
        try:
            return fn()
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            raise ActivityFailed(f"{self.what}: {line} on {self.where}: {exc.status} {exc.reason}: "
                                 f"{_message(exc)}") from exc
        except (OSError, ValueError) as exc:  # urllib3 errors are OSErrors
            raise ActivityFailed(f"{self.what}: {line} on {self.where}: {exc}") from exc

    @property
    def _timeout(self) -> float:
        return self.settings.request_timeout

    # ------------------------------------------------------------------ pods
    def list_pods(self, namespace: str, selector: str) -> list[Any]:
        path = f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}"
        result = self._send("list", "", "pods", path, lambda: self.core.list_namespaced_pod(
            namespace, label_selector=selector, _request_timeout=self._timeout), write=False)
        return sorted(result.items, key=lambda p: p.metadata.name)

    def read_pod(self, namespace: str, name: str) -> Any | None:
        return self._send("get", "", "pods", f"/api/v1/namespaces/{namespace}/pods/{name}",
                          lambda: self.core.read_namespaced_pod(name, namespace, _request_timeout=self._timeout),
                          write=False, missing_ok=True)

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None, uid: str | None = None) -> None:
        """Delete a pod (``grace_seconds`` 0: SIGKILL now; ``None``: the pod's own grace period)."""
        body = kubernetes.client.V1DeleteOptions(
            grace_period_seconds=grace_seconds,
            preconditions=kubernetes.client.V1Preconditions(uid=uid) if uid else None)
        query = "" if grace_seconds is None else f"?gracePeriodSeconds={grace_seconds}"
        self._send("delete", "", "pods", f"/api/v1/namespaces/{namespace}/pods/{name}{query}",
                   lambda: self.core.delete_namespaced_pod(name, namespace, body=body,
                                                           _request_timeout=self._timeout),
                   write=True, missing_ok=True)

    def exec(self, namespace: str, pod: str, container: str, command: list[str], *,
             write: bool, timeout: float = 60.0) -> tuple[int, str, str]:
        """Run ``command`` in a container; returns (exit code, stdout, stderr). ``write=False``: runs on a dry run.

        The exec is a websocket upgrade of a GET, and the API server authorizes it as ``get`` *and*
        (since 1.31, AuthorizePodWebsocketUpgradeCreatePermission) ``create`` on ``pods/exec``.
        """
        shown = " ".join(command).replace("\n", " ")
        path = (f"/api/v1/namespaces/{namespace}/pods/{pod}/exec?container={container} "
                f"({shown[:100]}{'...' if len(shown) > 100 else ''})")

        def run() -> tuple[int, str, str]:
            from kubernetes.stream import stream

            ws = stream(self.core.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                        command=command, stderr=True, stdout=True, stdin=False, tty=False,
                        _preload_content=False, _request_timeout=self._timeout)
            try:
                ws.run_forever(timeout=timeout)
                out, err = ws.read_stdout(), ws.read_stderr()
                code = ws.returncode
            finally:
                ws.close()
            return (code if code is not None else -1), out or "", err or ""

        result = self._send("get", "", "pods/exec", path, run, write=write, also=("create",))
        return (0, "", "") if result is None else result

    def wait_pods_ready(self, namespace: str, selector: str, minimum: int, timeout: float | None = None,
                        name: str | None = None) -> list[str]:
        """Poll until at least ``minimum`` pods (or pod ``name``) matching ``selector`` are Ready; their names."""
        limit = timeout or self.settings.ready_timeout
        seen: dict[str, list[str]] = {"pods": [], "ready": []}

        def enough() -> list[str] | None:
            pods = self.list_pods(namespace, selector)
            seen["pods"] = [p.metadata.name for p in pods]
            seen["ready"] = [p.metadata.name for p in pods if is_ready(p) and (name is None or p.metadata.name == name)]
            return seen["ready"] if len(seen["ready"]) >= minimum else None

        return wait_until(enough, limit, 1.0, lambda: f"{self.what}: only {len(seen['ready'])} of {minimum} pods "
                                                      f"ready ({selector!r} in {namespace}, {seen['pods']}) after "
                                                      f"{limit:g} s on {self.where}", error=ActivityFailed)

    # ------------------------------------------------------------------ network policies
    def list_policies(self, namespace: str, selector: str | None = None) -> list[Any]:
        path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies" + (
            f"?labelSelector={selector}" if selector else "")
        result = self._send("list", "networking.k8s.io", "networkpolicies", path,
                            lambda: self.net.list_namespaced_network_policy(
                                namespace, label_selector=selector or "", _request_timeout=self._timeout),
                            write=False)
        return list(result.items)

    def create_policy(self, namespace: str, body: dict[str, Any]) -> None:
        self._send("create", "networking.k8s.io", "networkpolicies",
                   f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies "
                   f"(name {body['metadata']['name']})",
                   lambda: self.net.create_namespaced_network_policy(namespace, cast(Any, body),
                                                                     _request_timeout=self._timeout),
                   write=True)

    def delete_policy(self, namespace: str, name: str) -> None:
        self._send("delete", "networking.k8s.io", "networkpolicies",
                   f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}",
                   lambda: self.net.delete_namespaced_network_policy(name, namespace,
                                                                     _request_timeout=self._timeout),
                   write=True, missing_ok=True)

    # ------------------------------------------------------------------ statefulsets
    def read_statefulset(self, namespace: str, name: str, missing_ok: bool = False) -> Any:
        """StatefulSet ``name``; ``None`` when it does not exist and ``missing_ok`` (else ``ActivityFailed``)."""
        return self._send("get", "apps", "statefulsets", f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}",
                          lambda: self.apps.read_namespaced_stateful_set(name, namespace,
                                                                         _request_timeout=self._timeout),
                          write=False, missing_ok=missing_ok)

    def list_statefulsets(self, namespace: str) -> list[Any]:
        result = self._send("list", "apps", "statefulsets", f"/apis/apps/v1/namespaces/{namespace}/statefulsets",
                            lambda: self.apps.list_namespaced_stateful_set(namespace, _request_timeout=self._timeout),
                            write=False)
        return sorted(result.items, key=lambda s: s.metadata.name)

    def patch_statefulset(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        self._send("patch", "apps", "statefulsets",
                   f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name} {body}",
                   lambda: self.apps.patch_namespaced_stateful_set(name, namespace, body,
                                                                   _request_timeout=self._timeout),
                   write=True)

    def patch_statefulset_scale(self, namespace: str, name: str, replicas: int) -> None:
        """Set ``spec.replicas`` through the StatefulSet's scale subresource (what ``kubectl scale`` and an HPA
        write: the RBAC a scaler needs, nothing of the pod template)."""
        body = {"spec": {"replicas": replicas}}
        self._send("patch", "apps", "statefulsets/scale",
                   f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale {body}",
                   lambda: self.apps.patch_namespaced_stateful_set_scale(name, namespace, body,
                                                                         _request_timeout=self._timeout),
                   write=True)

    def wait_rollout(self, namespace: str, name: str, timeout: float | None = None) -> str:
        """Poll StatefulSet ``name`` until :func:`rollout_status` says complete; its message."""
        limit = timeout or self.settings.rollout_timeout
        seen = {"message": ""}

        def complete() -> str | None:
            done, seen["message"] = rollout_status(self.read_statefulset(namespace, name))
            return (seen["message"] or "complete") if done else None

        return wait_until(complete, limit, 1.0, lambda: f"{self.what}: StatefulSet {namespace}/{name} did not finish "
                                                        f"rolling within {limit:g} s (k8s_rollout_timeout) on "
                                                        f"{self.where}: {seen['message']}", error=ActivityFailed)

    # ------------------------------------------------------------------ configmaps
    def read_configmap(self, namespace: str, name: str) -> Any | None:
        """ConfigMap ``name``, or ``None`` when it does not exist."""
        return self._send("get", "", "configmaps", f"/api/v1/namespaces/{namespace}/configmaps/{name}",
                          lambda: self.core.read_namespaced_config_map(name, namespace,
                                                                      _request_timeout=self._timeout),
                          write=False, missing_ok=True)

    def patch_configmap(self, namespace: str, name: str, body: dict[str, Any], summary: str) -> None:
        """Strategic-merge-patch ConfigMap ``name``; ``summary`` stands for the body in logs (data can be long).

        A ``metadata.resourceVersion`` in ``body`` makes it conditional: 409 if the object changed since.
        """
        self._send("patch", "", "configmaps", f"/api/v1/namespaces/{namespace}/configmaps/{name} ({summary})",
                   lambda: self.core.patch_namespaced_config_map(name, namespace, body,
                                                                 _request_timeout=self._timeout),
                   write=True)

    # ------------------------------------------------------------------ Chaos Mesh
    def has_chaos_mesh(self) -> bool:
        """Whether the API serves ``chaos-mesh.org/v1alpha1`` NetworkChaos (API discovery, open to any user)."""
        try:
            groups = kubernetes.client.ApisApi(self.api).get_api_versions(_request_timeout=self._timeout)
            if not any(g.name == "chaos-mesh.org" for g in groups.groups or []):
                return False
            resources = self.custom.get_api_resources("chaos-mesh.org", "v1alpha1", _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise ActivityFailed(f"{self.what}: GET /apis/chaos-mesh.org/v1alpha1 on {self.where}: "
                                 f"{exc.status} {exc.reason}") from exc
        except OSError as exc:
            raise ActivityFailed(f"{self.what}: GET /apis/chaos-mesh.org/v1alpha1 on {self.where}: {exc}") from exc
        return any(r.kind == "NetworkChaos" for r in (resources.resources or []))

    def list_networkchaos(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        result = self._send("list", "chaos-mesh.org", "networkchaos",
                            f"/apis/chaos-mesh.org/v1alpha1/namespaces/{namespace}/networkchaos?labelSelector={selector}",
                            lambda: self.custom.list_namespaced_custom_object(
                                "chaos-mesh.org", "v1alpha1", namespace, "networkchaos", label_selector=selector,
                                _request_timeout=self._timeout), write=False)
        return list(result.get("items", []))

    def create_networkchaos(self, namespace: str, body: dict[str, Any]) -> None:
        self._send("create", "chaos-mesh.org", "networkchaos",
                   f"/apis/chaos-mesh.org/v1alpha1/namespaces/{namespace}/networkchaos "
                   f"(name {body['metadata']['name']}, spec {body['spec']})",
                   lambda: self.custom.create_namespaced_custom_object(
                       "chaos-mesh.org", "v1alpha1", namespace, "networkchaos", body,
                       _request_timeout=self._timeout), write=True)

    def delete_networkchaos(self, namespace: str, name: str) -> None:
        self._send("delete", "chaos-mesh.org", "networkchaos",
                   f"/apis/chaos-mesh.org/v1alpha1/namespaces/{namespace}/networkchaos/{name}",
                   lambda: self.custom.delete_namespaced_custom_object(
                       "chaos-mesh.org", "v1alpha1", namespace, "networkchaos", name,
                       _request_timeout=self._timeout), write=True, missing_ok=True)


def _client_configuration(settings: KubeSettings, what: str) -> tuple[str, Any]:
    """(context name, ``kubernetes.client.Configuration``) for the configured cluster."""
    client_config = kubernetes.client.Configuration()
    if settings.in_cluster:
        try:
            kubernetes.config.load_incluster_config(client_configuration=client_config)
        except kubernetes.config.ConfigException as exc:
            raise ActivityFailed(f"{what}: k8s_in_cluster is true but {exc}") from exc
        return settings.context or IN_CLUSTER, client_config
    path = kubeconfig_path(settings)
    try:
        contexts, active = kubernetes.config.list_kube_config_contexts(config_file=str(path))
        names = [c["name"] for c in contexts]
        context = settings.context or active["name"]
        if context not in names:
            raise ActivityFailed(f"{what}: context {context!r} is not in kubeconfig {path} (contexts: {names})")
        kubernetes.config.load_kube_config(config_file=str(path), context=context,
                                           client_configuration=client_config, persist_config=False)
    except (kubernetes.config.ConfigException, OSError, KeyError, TypeError) as exc:
        raise ActivityFailed(f"{what}: cannot load kubeconfig {path}: {exc}") from exc
    return context, client_config


def _message(exc: ApiException) -> str:
    import json

    try:
        return str(json.loads(exc.body or "{}").get("message", exc.body))
    except ValueError:
        return str(exc.body)
