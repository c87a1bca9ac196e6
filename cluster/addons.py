"""Objects ``up`` applies once the API server answers: kube-router's RBAC and CoreDNS.

CoreDNS runs as a Deployment in ``kube-system`` behind the ``kube-dns`` Service (the tenth
ClusterIP, which the kubelet gives pods as their resolver), so headless-Service names
(``kafka-0.kafka.<ns>.svc.cluster.local``) resolve as in any cluster. Its Corefile has no
``forward``: names outside the cluster are not resolved, and no query leaves the machine.
"""

from __future__ import annotations

from typing import Any

import yaml

from cluster import proc
from cluster.install import Manifest
from cluster.settings import ClusterSettings

COREFILE = """\
.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        ttl 30
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


def objects(settings: ClusterSettings, manifest: Manifest) -> list[dict[str, Any]]:
    """Every addon object, in apply order."""
    read = ["get", "list", "watch"]
    kube_router_rules = [
        {"apiGroups": [""], "resources": ["namespaces", "pods", "services", "nodes", "endpoints"], "verbs": read},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": read},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
        {"apiGroups": [""], "resources": ["services/status"], "verbs": ["update"]},
    ]
    coredns_rules = [
        {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
    ]
    labels = {"k8s-app": "kube-dns"}
    container = {
        "name": "coredns", "image": manifest.images["coredns"].ref, "imagePullPolicy": "Never",
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10, "failureThreshold": 5},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
    }
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "sql-audit:kube-router"}, "rules": kube_router_rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "sql-audit:kube-router"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "sql-audit:kube-router"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:kube-router"}]},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": "kube-system"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "sql-audit:coredns"}, "rules": coredns_rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "sql-audit:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "sql-audit:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
         "data": {"Corefile": COREFILE}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"serviceAccountName": "coredns", "dnsPolicy": "Default",
                                        "priorityClassName": "system-cluster-critical",
                                        "containers": [container],
                                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
         "spec": {"selector": labels, "clusterIP": settings.dns_service_ip,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}},
    ]


def apply(settings: ClusterSettings, manifest: Manifest) -> None:
    """Server-side apply of every addon object (idempotent) with the pinned kubectl."""
    docs = yaml.safe_dump_all(objects(settings, manifest), sort_keys=False)
    proc.run([manifest.binary("kubectl"), "--kubeconfig", str(settings.admin_kubeconfig), "apply", "--server-side",
              "--force-conflicts", "--field-manager", "sql-audit-cluster", "-f", "-"], input=docs, timeout=60)
