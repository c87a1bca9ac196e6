"""Configuration keys of the Kubernetes backends, and the safety guard that checks them.

Every key starts with ``k8s_`` (plus ``allow_production``), so :mod:`target.settings`
journals them with each fault and ``resilience cleanup`` reaches the same cluster.
docs/faults.md ("Kubernetes target") is the user-facing table; keep the two in step.

The guard (:meth:`KubeSettings.guard`) runs before any API request, for injects *and*
removes: the context and the namespace must each be in an explicit allow-list, and a
context, namespace or API server whose name looks like production (a ``prod``, ``prd``
or ``production`` word) is refused unless ``allow_production: true``.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from target.settings import parse_bool
from target.topology import EDGES, is_member

PRODUCTION_WORDS = frozenset({"prod", "prd", "production"})
IN_CLUSTER = "in-cluster"
DEFAULT_SELECTORS = {"kafka": "app=kafka", "postgres": "app=postgres", "clickhouse": "app=clickhouse"}


def _list(value: Any) -> tuple[str, ...]:
    """A YAML list or a comma-separated string (from an environment variable) as a tuple."""
    if value in (None, ""):
        return ()
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(str(i).strip() for i in items if str(i).strip())


def _urls(value: Any, key: str) -> tuple[str, ...]:
    urls = _list(value)
    for url in urls:
        if not re.fullmatch(r"https?://[^/\s]+/?", url):
            raise ActivityFailed(f"configuration {key}: {url!r} is not a base URL (http://host:port)")
    return tuple(u.rstrip("/") for u in urls)


def _positive(value: Any, key: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ActivityFailed(f"configuration {key}={value!r}: expected a number") from exc
    if number <= 0:
        raise ActivityFailed(f"configuration {key}={value!r}: must be > 0")
    return number


def _name(value: Any, key: str) -> str:
    text = str(value or "").strip()
    if not text:
        raise ActivityFailed(f"configuration {key} is empty")
    return text


def looks_like_production(name: str) -> bool:
    """Whether ``name`` has a word ``prod``, ``prd`` or ``production`` (split on anything not a letter or digit)."""
    return any(word in PRODUCTION_WORDS for word in re.split(r"[^a-z0-9]+", name.lower()))


@dataclass(frozen=True)
class Edge:
    """Where one dependency of the audit service runs: pods (selector, namespace) and/or IP ranges."""

    name: str
    selector: str
    namespace: str
    cidrs: tuple[str, ...]


@dataclass(frozen=True)
class KubeSettings:
    """Validated Kubernetes keys of a Chaos Toolkit ``configuration``."""

    kubeconfig: str | None
    in_cluster: bool
    context: str | None
    namespace: str
    allowed_contexts: tuple[str, ...]
    allowed_namespaces: tuple[str, ...]
    allow_production: bool
    service_selector: str
    service_container: str
    edges: dict[str, Edge]
    postgres_leader_selector: str
    postgres_container: str
    patronictl: tuple[str, ...]
    clickhouse_statefulset: str
    clickhouse_container: str
    expected_replicas: int
    kafka_brokers: int | None
    service_statefulset: str
    checkers_configmap: str
    checkers_key: str
    policy_max_age: float
    partition_check: bool
    conntrack_netns: str | None
    toxiproxy_urls: tuple[str, ...]
    ready_timeout: float
    rollout_timeout: float
    request_timeout: float

    @classmethod
    def from_configuration(cls, configuration: dict[str, Any] | None) -> "KubeSettings":
        """Read the ``k8s_*`` keys; raises ``ActivityFailed`` naming a missing or bad key."""
        cfg = dict(configuration or {})
        namespace = str(cfg.get("k8s_namespace") or "").strip()
        if not namespace:
            raise ActivityFailed("configuration k8s_namespace is required for target kubernetes "
                                 "(the namespace of the audit service)")
        in_cluster_default = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not (
            cfg.get("k8s_kubeconfig") or os.environ.get("KUBECONFIG"))
        in_cluster = parse_bool(cfg.get("k8s_in_cluster", in_cluster_default), "k8s_in_cluster")
        edges = {}
        for edge in EDGES:
            edges[edge] = Edge(name=edge,
                               selector=str(cfg.get(f"k8s_{edge}_selector", DEFAULT_SELECTORS[edge])).strip(),
                               namespace=str(cfg.get(f"k8s_{edge}_namespace") or namespace).strip(),
                               cidrs=_list(cfg.get(f"k8s_{edge}_cidrs")))
            if not edges[edge].selector and not edges[edge].cidrs:
                raise ActivityFailed(f"configuration k8s_{edge}_selector and k8s_{edge}_cidrs are both empty: "
                                     f"nothing says where {edge} runs")
        try:
            expected = int(cfg.get("k8s_expected_replicas", 3))
        except (TypeError, ValueError) as exc:
            raise ActivityFailed(f"configuration k8s_expected_replicas={cfg.get('k8s_expected_replicas')!r}: "
                                 "expected an integer") from exc
        brokers = cfg.get("k8s_kafka_brokers")
        if brokers in (None, ""):
            kafka_brokers = None
        else:
            try:
                kafka_brokers = int(brokers)
            except (TypeError, ValueError) as exc:
                raise ActivityFailed(f"configuration k8s_kafka_brokers={brokers!r}: expected an integer") from exc
            if kafka_brokers < 1 or isinstance(brokers, bool):
                raise ActivityFailed(f"configuration k8s_kafka_brokers={brokers!r}: must be an integer >= 1")
        patronictl = cfg.get("k8s_patronictl", "patronictl")
        conntrack_netns = str(cfg.get("k8s_conntrack_netns") or "").strip() or None
        if conntrack_netns and not os.path.exists(conntrack_netns):
            raise ActivityFailed(f"configuration k8s_conntrack_netns={conntrack_netns!r}: no such network namespace "
                                 "file on this machine (the node's, e.g. <cluster state>/ns/net; leave it unset "
                                 "where the runner has no access to the nodes)")
        return cls(
            kubeconfig=str(cfg.get("k8s_kubeconfig") or os.environ.get("KUBECONFIG") or "") or None,
            in_cluster=in_cluster,
            context=str(cfg.get("k8s_context") or "") or None,
            namespace=namespace,
            allowed_contexts=_list(cfg.get("k8s_allowed_contexts")),
            allowed_namespaces=_list(cfg.get("k8s_allowed_namespaces")),
            allow_production=parse_bool(cfg.get("allow_production", False), "allow_production"),
            service_selector=str(cfg.get("k8s_service_selector", "app=sql-audit-service")).strip(),
            service_container=str(cfg.get("k8s_service_container") or "").strip(),
            edges=edges,
            postgres_leader_selector=str(cfg.get("k8s_postgres_leader_selector",
                                                 "app=postgres,role in (primary,master)")),
            postgres_container=str(cfg.get("k8s_postgres_container", "postgres")),
            patronictl=tuple(patronictl) if isinstance(patronictl, list) else tuple(str(patronictl).split()),
            clickhouse_statefulset=str(cfg.get("k8s_clickhouse_statefulset", "clickhouse")),
            clickhouse_container=str(cfg.get("k8s_clickhouse_container", "clickhouse")),
            expected_replicas=expected,
            kafka_brokers=kafka_brokers,
            service_statefulset=_name(cfg.get("k8s_service_statefulset", "sql-audit-service"),
                                      "k8s_service_statefulset"),
            checkers_configmap=_name(cfg.get("k8s_checkers_configmap", "sql-audit-service-checkers"),
                                     "k8s_checkers_configmap"),
            checkers_key=_name(cfg.get("k8s_checkers_key", "checkers.yaml"), "k8s_checkers_key"),
            policy_max_age=_positive(cfg.get("k8s_policy_max_age", 3600), "k8s_policy_max_age"),
            partition_check=parse_bool(cfg.get("k8s_partition_check", False), "k8s_partition_check"),
            conntrack_netns=conntrack_netns,
            toxiproxy_urls=_urls(cfg.get("k8s_toxiproxy_urls"), "k8s_toxiproxy_urls"),
            ready_timeout=_positive(cfg.get("k8s_ready_timeout", 120), "k8s_ready_timeout"),
            rollout_timeout=_positive(cfg.get("k8s_rollout_timeout", 600), "k8s_rollout_timeout"),
            request_timeout=_positive(cfg.get("k8s_request_timeout", 10), "k8s_request_timeout"),
        )

    def guard(self, context: str, server: str, what: str) -> None:
        """Refuse a cluster or namespace that is not allow-listed, or that looks like production.

        ``context`` is the kubeconfig context in use (``in-cluster`` inside a pod), ``server`` the
        API server URL. Raises ``ActivityFailed`` saying which check failed and which key lifts it.
        """
        if not self.allowed_contexts:
            raise ActivityFailed(f"{what}: configuration k8s_allowed_contexts is empty: list the contexts "
                                 f"this suite may break (context in use: {context!r})")
        if not self.allowed_namespaces:
            raise ActivityFailed(f"{what}: configuration k8s_allowed_namespaces is empty: list the namespaces "
                                 f"this suite may break (namespace in use: {self.namespace!r})")
        if context not in self.allowed_contexts:
            raise ActivityFailed(f"{what}: context {context!r} is not in k8s_allowed_contexts "
                                 f"{list(self.allowed_contexts)}")
        namespaces = {self.namespace} | {e.namespace for e in self.edges.values()}
        for ns in sorted(namespaces):
            if ns not in self.allowed_namespaces:
                raise ActivityFailed(f"{what}: namespace {ns!r} is not in k8s_allowed_namespaces "
                                     f"{list(self.allowed_namespaces)}")
        if not self.allow_production:
            for kind, name in [("context", context), ("API server", server),
                               *(("namespace", ns) for ns in sorted(namespaces))]:
                if looks_like_production(name):
                    raise ActivityFailed(f"{what}: {kind} {name!r} looks like production; refused "
                                         "(set allow_production: true if you really mean it)")

    def edge(self, edge: str, what: str) -> Edge:
        """The dependency ``edge`` (checked against :mod:`target.topology` by the public activity).

        ``ActivityFailed`` for one member's proxy (``postgres_2``): that is a proxy of the local
        ``ha`` stack; here an edge is every pod its ``k8s_<edge>_selector`` matches."""
        if edge not in self.edges:
            try:
                why = "is one member's proxy of the local ha stack" if is_member(edge) else "is unknown"
            except ValueError:
                why = "is unknown"
            raise ActivityFailed(f"{what}: edge {edge!r} {why}: on kubernetes an edge is a whole dependency "
                                 f"({', '.join(EDGES)}): the pods of its k8s_<edge>_selector")
        return self.edges[edge]


def kubeconfig_path(settings: KubeSettings) -> Path:
    """The kubeconfig file to read (``k8s_kubeconfig``, env ``KUBECONFIG``, else ``~/.kube/config``)."""
    first = (settings.kubeconfig or "").split(os.pathsep)[0]
    return Path(first).expanduser() if first else Path.home() / ".kube" / "config"


def context_in_use(settings: KubeSettings) -> str | None:
    """The context a client made from ``settings`` talks to, without connecting (as :mod:`.client` picks it).

    ``k8s_context`` when set, else ``in-cluster`` inside a pod, else the kubeconfig's current context;
    ``None`` when that kubeconfig cannot be read or names none.
    """
    if settings.context:
        return settings.context
    if settings.in_cluster:
        return IN_CLUSTER
    import yaml

    try:
        data = yaml.safe_load(kubeconfig_path(settings).read_text())
    except (OSError, yaml.YAMLError):
        return None
    current = data.get("current-context") if isinstance(data, dict) else None
    return str(current) if current else None
