"""Kubernetes backend of :mod:`faults.network_partition`: a NetworkPolicy that cuts one edge.

chaosk8s only has a deny-all policy; a partition of one edge needs more, because
NetworkPolicies only *allow*: once a policy selects the audit-service pods for Egress, the
pods may reach only what some policy allows. The policy created here (name
``chaos-partition-<edge>``, in ``k8s_namespace``) selects the service's pods and allows egress
to everything *except* the dependency:

* every pod in every other namespace than the dependency's;
* every pod in the dependency's namespace that lacks one of its labels (one ``NotIn`` peer per
  label of ``k8s_<edge>_selector``, so only pods with *all* of them are cut);
* every IP address except the dependency pods' IPs at inject time and ``k8s_<edge>_cidrs``
  (for a managed service outside the cluster, and for CNIs that match ipBlocks on pod IPs).

It carries labels ``app.kubernetes.io/managed-by``, ``sql-audit-resilience/fault``,
``.../edge`` and ``.../run-id``, and an annotation ``sql-audit-resilience/expires-at`` (the
fault's ``duration``, else ``k8s_policy_max_age``). ``remove_partition`` deletes the edge's
policies and every expired policy of this library (:func:`sweep_expired`), so a
``resilience cleanup`` also removes what a dead runner left. Only ``mode: blackhole`` exists
here (packets are dropped). Caveats: policies are additive, so another policy that already
allows the dependency defeats the partition (the inject reports such policies); whether
established connections are cut depends on the CNI; the cluster's CNI must enforce
NetworkPolicies at all (kindnet before 0.3 and flannel do not).

**Established connections.** Most CNIs (kube-router, Calico, Cilium's iptables mode) accept packets of
an established connection before any policy rule: a policy cuts *new* connections only. A service
holding its store connections open keeps writing through a "partition" (on the local cluster,
processed_rate stayed at 170 and then 2 events/s through one; the effect check made the run
inconclusive, 2026-12-02). Where the runner can reach the node's network namespace
(``k8s_conntrack_netns``: the local cluster's target file sets it), the inject then deletes the
connection-tracking entries of every flow whose reply comes from a blocked pod, so the next packet
of such a flow is new to the firewall and meets the policy: the partition cuts what a real one would.
On a cluster whose nodes the runner cannot reach, use Chaos Mesh's NetworkChaos, which drops packets
inside the pod's own namespace (docs/faults.md).
"""

import ipaddress
import logging
import re
import subprocess
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.kubernetes import LABEL_PREFIX, MANAGED_BY
from faults.kubernetes.client import Kube, is_ready
from faults.kubernetes.expiry import EXPIRES, expired, stamp
from faults.kubernetes.selectors import equality_labels, label_selector, label_value
from target.kubernetes import Edge, KubeSettings

logger = logging.getLogger(__name__)

FAULT = "network-partition"
NS_LABEL = "kubernetes.io/metadata.name"


def managed_selector(edge: str | None = None) -> str:
    """Label selector of this library's partition policies (of one edge, or all)."""
    sel = f"app.kubernetes.io/managed-by={MANAGED_BY},{LABEL_PREFIX}/fault={FAULT}"
    return sel + (f",{LABEL_PREFIX}/edge={edge}" if edge else "")


def egress_peers(settings: KubeSettings, edge: Edge, pod_ips: list[str]) -> list[dict[str, Any]]:
    """The ``to`` peers that allow everything but ``edge`` (see the module doc)."""
    peers: list[dict[str, Any]] = []
    if edge.selector:
        labels = equality_labels(edge.selector, f"k8s_{edge.name}_selector")
        peers.append({"namespaceSelector": {"matchExpressions": [
            {"key": NS_LABEL, "operator": "NotIn", "values": [edge.namespace]}]}})
        for key, value in sorted(labels.items()):
            peers.append({"namespaceSelector": {"matchLabels": {NS_LABEL: edge.namespace}},
                          "podSelector": {"matchExpressions": [{"key": key, "operator": "NotIn", "values": [value]}]}})
    else:
        peers.append({"namespaceSelector": {}})
    blocked = [ipaddress.ip_network(ip if "/" in ip else f"{ip}/{32 if ':' not in ip else 128}", strict=False)
               for ip in [*pod_ips, *edge.cidrs]]
    for everything in (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")):
        except_ = sorted({str(n) for n in blocked if n.version == everything.version})
        block: dict[str, Any] = {"cidr": str(everything)}
        if except_:
            block["except"] = except_
        peers.append({"ipBlock": block})
    return peers


def policy_body(settings: KubeSettings, edge: Edge, run_id: str, expires_at: float,
                pod_ips: list[str]) -> dict[str, Any]:
    """The NetworkPolicy manifest that partitions the audit service from ``edge``."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": f"chaos-partition-{edge.name}",
            "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY, f"{LABEL_PREFIX}/fault": FAULT,
                       f"{LABEL_PREFIX}/edge": edge.name, f"{LABEL_PREFIX}/run-id": label_value(run_id)},
            "annotations": {EXPIRES: stamp(expires_at), f"{LABEL_PREFIX}/run-id": run_id,
                            f"{LABEL_PREFIX}/description": f"chaos: partition audit-service -> {edge.name}; "
                                                           "delete me if I outlived my expiry"},
        },
        "spec": {"podSelector": label_selector(settings.service_selector), "policyTypes": ["Egress"],
                 "egress": [{"to": egress_peers(settings, edge, pod_ips)}]},
    }


def expired_policies(kube: Kube, now: float) -> list[Any]:
    """The partition policies of this library in the service's namespace whose expiry has passed at ``now`` (an
    unreadable expiry counts as passed: :func:`faults.kubernetes.expiry.expired`)."""
    ns = kube.settings.namespace
    return [p for p in kube.list_policies(ns, managed_selector()) if expired(p.metadata.annotations, now)]


def sweep_expired(kube: Kube) -> list[str]:
    """Delete every partition policy of this library in the service's namespace whose expiry has passed."""
    ns = kube.settings.namespace
    gone = []
    for policy in expired_policies(kube, time.time()):
        kube.delete_policy(ns, policy.metadata.name)
        gone.append(policy.metadata.name)
    if gone:
        logger.info("deleted expired partition policies in %s: %s", ns, ", ".join(gone))
    return gone


def partition_network(edge: str, mode: str = "blackhole", duration: float | None = None,
                      configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_partition.partition_network`."""
    what = f"partition audit-service<->{edge}"
    with Kube(configuration, what) as kube:
        dep = kube.settings.edge(edge, what)
        if mode != "blackhole":
            raise ActivityFailed(f"{what}: mode {mode!r} is not available on kubernetes (a NetworkPolicy drops "
                                 "packets): use mode blackhole")
        ns = kube.settings.namespace
        ours = [p.metadata.name for p in kube.list_policies(ns, managed_selector(edge))]
        if ours:
            raise ActivityFailed(f"{what}: already partitioned (NetworkPolicy {ours} in {ns} on {kube.where}); "
                                 "remove_partition first")
        pod_ips = []
        pods: list[Any] = []
        if dep.selector:
            pods = kube.list_pods(dep.namespace, dep.selector)
            pod_ips = sorted({ip.ip for p in pods for ip in (p.status.pod_ips or []) if ip.ip})
            if not pods and not dep.cidrs:
                raise ActivityFailed(f"{what}: no pod matches k8s_{edge}_selector {dep.selector!r} in "
                                     f"{dep.namespace} and k8s_{edge}_cidrs is empty: nothing to cut")
        others = [p.metadata.name for p in kube.list_policies(ns)
                  if "Egress" in (p.spec.policy_types or []) and p.metadata.name not in ours
                  and (p.metadata.labels or {}).get("app.kubernetes.io/managed-by") != MANAGED_BY]
        expires = time.time() + (duration or kube.settings.policy_max_age)
        body = policy_body(kube.settings, dep, kube.base.run_id, expires, pod_ips)
        if not kube.dry_run:
            sweep_expired(kube)
        kube.create_policy(ns, body)
        warning = (f"other egress policies in {ns} ({others}) may still allow {edge}: policies are additive"
                   if others else None)
        if warning:
            logger.warning("%s: %s", what, warning)
        if kube.dry_run:
            return {"would": f"create NetworkPolicy {body['metadata']['name']} in {ns}", "policy": body,
                    "requests": kube.requests, "edge": edge, "mode": mode, "warning": warning}
        cut = None
        if kube.settings.partition_check:
            try:
                cut = check_cut(kube, [(p.status.pod_ip, port) for p in pods if p.status.pod_ip
                                       for port in container_ports(p)], what)
            except ActivityFailed:
                kube.delete_policy(ns, body["metadata"]["name"])
                raise
        established = cut_established(kube.settings.conntrack_netns, pod_ips, what)
        return {"edge": edge, "mode": mode, "namespace": ns, "policy": body["metadata"]["name"], "cut": cut,
                "established_cut": established,
                "blocked_ips": pod_ips + list(dep.cidrs), "expires_at": body["metadata"]["annotations"][EXPIRES],
                "requests": kube.requests, "warning": warning,
                "changed": f"created NetworkPolicy {body['metadata']['name']} in {ns}"}


# Run in a service pod by the pre-check: every address must refuse or time out, twice in a row, before the
# deadline; prints the seconds it took, or exits 1 naming what still connects.
CUT_CHECK = """\
import socket, sys, time
targets = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in sys.argv[2:]]
deadline, t0, cut_in_a_row = time.monotonic() + float(sys.argv[1]), time.monotonic(), 0
while True:
    still = []
    for host, port in targets:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            still.append(f"{host}:{port}")
        except OSError:
            pass
    cut_in_a_row = 0 if still else cut_in_a_row + 1
    if cut_in_a_row >= 2:
        print(f"{time.monotonic() - t0:.2f}")
        sys.exit(0)
    if time.monotonic() > deadline:
        print("still connecting: " + ", ".join(still))
        sys.exit(1)
    time.sleep(0.2)
"""
CUT_DEADLINE = 15.0


def container_ports(pod: Any) -> list[int]:
    """The TCP ports the pod's containers declare (what the service would connect to)."""
    return sorted({p.container_port for c in pod.spec.containers for p in (c.ports or [])
                   if (p.protocol or "TCP") == "TCP"})


def check_cut(kube: Kube, targets: list[tuple[str, int]], what: str) -> dict[str, Any]:
    """Prove the policy cuts the edge: new TCP connections from a Ready service pod to every declared port of
    the dependency's pods fail (``k8s_partition_check``). Raises ``ActivityFailed`` ("did not take effect")
    when they still connect after :data:`CUT_DEADLINE` s: a CNI that does not enforce NetworkPolicies, or
    another policy that allows the edge, would otherwise leave a partition that cuts nothing and an RTO of 0.
    Needs ``python3`` in the service's first container (the reference service's image has it).
    """
    if not targets:
        raise ActivityFailed(f"{what}: k8s_partition_check: the dependency's pods declare no TCP port to check")
    settings = kube.settings
    pods = [p for p in kube.list_pods(settings.namespace, settings.service_selector) if is_ready(p)]
    if not pods:
        raise ActivityFailed(f"{what}: k8s_partition_check: no Ready pod of the service to check from")
    pod = pods[0]
    container = pod.spec.containers[0].name
    code, out, err = kube.exec(settings.namespace, pod.metadata.name, container,
                               ["python3", "-c", CUT_CHECK, str(CUT_DEADLINE), *(f"{h}:{p}" for h, p in targets)],
                               write=False, timeout=CUT_DEADLINE + 15)
    if code != 0:
        detail = (out or err).strip()[-300:]
        raise ActivityFailed(f"{what}: fault did not take effect: from {pod.metadata.name}, {detail} "
                             f"{CUT_DEADLINE:g} s after the NetworkPolicy was created (does the CNI enforce "
                             "NetworkPolicies? does another policy allow the edge?); the policy was deleted")
    seconds = float(out.strip().splitlines()[-1])
    logger.info("%s: new connections from %s cut after %.2f s", what, pod.metadata.name, seconds)
    return {"from_pod": pod.metadata.name, "targets": [f"{h}:{p}" for h, p in targets], "cut_after_s": seconds}


def cut_established(netns: str | None, pod_ips: list[str], what: str) -> dict[str, Any] | None:
    """Delete the conntrack entries of the flows answered by ``pod_ips`` in the node's network namespace
    (``k8s_conntrack_netns``), so established connections meet the policy too; ``None`` when not configured.

    Raises ``ActivityFailed`` when ``conntrack`` fails for another reason than finding no flow."""
    if not netns or not pod_ips:
        return None
    deleted = 0
    for ip in pod_ips:
        cmd = ["nsenter", f"--net={netns}", "conntrack", "-D", "--reply-src", ip]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ActivityFailed(f"{what}: {' '.join(cmd)}: {exc}") from None
        found = re.search(r"(\d+) flow entries have been deleted", res.stderr + res.stdout)
        if res.returncode != 0 and not (found and found.group(1) == "0"):
            detail = (res.stderr or res.stdout).strip()
            raise ActivityFailed(f"{what}: {' '.join(cmd)} exited {res.returncode}: {detail}")
        deleted += int(found.group(1)) if found else 0
    logger.info("%s: %d tracked flow(s) answered by %s deleted in %s: established connections meet the policy",
                what, deleted, ", ".join(pod_ips), netns)
    return {"netns": netns, "flows_deleted": deleted}


def remove_partition(edge: str, configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_partition.remove_partition`; also sweeps expired policies."""
    what = f"heal partition audit-service<->{edge}"
    with Kube(configuration, what) as kube:
        kube.settings.edge(edge, what)
        ns = kube.settings.namespace
        names = [p.metadata.name for p in kube.list_policies(ns, managed_selector(edge))]
        for name in names:
            kube.delete_policy(ns, name)
        expired = [] if kube.dry_run else sweep_expired(kube)
        if kube.dry_run:
            return {"would": f"delete NetworkPolicies {names} in {ns} and any expired one", "edge": edge,
                    "requests": kube.requests}
        return {"edge": edge, "namespace": ns, "deleted": names, "expired_deleted": expired,
                "changed": f"deleted NetworkPolicy {', '.join(names)}" if names else "already healed"}
