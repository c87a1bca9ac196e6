"""Kubernetes backend of :mod:`faults.checker_config`: patch the checkers ConfigMap, then roll the StatefulSet.

The audit service reads its checker thresholds from key ``k8s_checkers_key`` (``checkers.yaml``) of
ConfigMap ``k8s_checkers_configmap`` (``sql-audit-service-checkers``), mounted into the pods of
StatefulSet ``k8s_service_statefulset`` (``sql-audit-service``) in ``k8s_namespace``, as
deploy/k8s/example-service does. A ConfigMap change alone does not take effect (the service reads
the file at start): ``change_checker_threshold``

1. edits the one line of ``<checker>.<field>`` (the rest of the file, comments included, stays) and
   checks the result with the service's own validation (``sqlaudit.config.load_checkers_config``);
2. patches the ConfigMap in **one** request, conditional on the ``resourceVersion`` it read: the
   new data, plus annotation ``sql-audit-resilience/checkers-before`` holding the previous value of
   the key (and a digest of the new one) and ``sql-audit-resilience/restart-pending``;
3. restarts the StatefulSet as ``kubectl rollout restart`` does (pod template annotation
   ``kubectl.kubernetes.io/restartedAt``), drops ``restart-pending``, and waits (bounded by
   ``k8s_rollout_timeout``) until the rolling update is complete as ``kubectl rollout status``
   judges it.

The previous value is in the plan journaled *before* the change and in the entry's ``details``
(``previous``); the revert reads it from the annotation, which is written in the same request as
the change, so it exists exactly when the change does, whoever reverts (timer, watchdog, a
``cleanup`` from another journal). ``restore_checker_config`` puts the value back byte for byte,
removes the annotation, restarts and waits again; with no annotation there is nothing to restore.
``restart-pending`` makes a revert that died between its data patch and its restart finish the
restart on the next call.

Blast radius: the change is refused unless the StatefulSet is settled (every replica Ready, no
rollout in progress), has at least two replicas (the roll takes one pod at a time: one always
serves), rolls by itself (``RollingUpdate``) and has no partition (pods below it would keep the old
config). Only ``group: audit-service`` exists here.
"""

import hashlib
import json
import logging
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.checker_edit import edit_threshold
from faults.kubernetes import LABEL_PREFIX
from faults.kubernetes.client import Kube, rollout_status

logger = logging.getLogger(__name__)

BEFORE = f"{LABEL_PREFIX}/checkers-before"
PENDING = f"{LABEL_PREFIX}/restart-pending"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def _group(group: str, what: str) -> None:
    if group != "audit-service":
        raise ActivityFailed(f"{what}: unknown group {group!r} on kubernetes: only audit-service (the StatefulSet "
                             "k8s_service_statefulset and ConfigMap k8s_checkers_configmap)")


def _check_rollable(sts: Any, what: str) -> None:
    """Refuse a StatefulSet a rolling restart would not (or not safely) roll; see the module doc."""
    name = f"{sts.metadata.namespace}/{sts.metadata.name}"
    strategy = sts.spec.update_strategy
    kind = (strategy.type if strategy else None) or "RollingUpdate"
    if kind != "RollingUpdate":
        raise ActivityFailed(f"{what}: StatefulSet {name} has updateStrategy {kind}: a restart would roll no pod, "
                             "so the change would not take effect")
    partition = ((strategy.rolling_update.partition if strategy and strategy.rolling_update else None) or 0)
    if partition:
        raise ActivityFailed(f"{what}: StatefulSet {name} has a rolling-update partition {partition}: pods below "
                             "it would keep the old config")
    replicas = sts.spec.replicas if sts.spec.replicas is not None else 1
    if replicas < 2:
        raise ActivityFailed(f"{what}: blast radius: StatefulSet {name} has {replicas} replica(s); a rolling "
                             "restart would leave none serving")
    done, message = rollout_status(sts)
    if not done:
        raise ActivityFailed(f"{what}: StatefulSet {name} is not settled ({message}); refusing to roll it")


def _restart(kube: Kube, ns: str, sts_name: str, cm_name: str) -> str:
    """``kubectl rollout restart`` of the StatefulSet, then drop the ConfigMap's ``restart-pending``; the stamp."""
    sts = kube.read_statefulset(ns, sts_name)
    current = ((sts.spec.template.metadata.annotations if sts.spec.template.metadata else None) or {}).get(RESTARTED_AT)
    stamp = _now()
    while stamp == current and not kube.dry_run:  # same second as the last restart: it would roll nothing
        time.sleep(0.2)
        stamp = _now()
    kube.patch_statefulset(ns, sts_name, {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}})
    kube.patch_configmap(ns, cm_name, {"metadata": {"annotations": {PENDING: None}}}, f"drop {PENDING}")
    return stamp


def change_checker_threshold(checker: str, field: str, value: float, group: str = "audit-service",
                             configuration: Configuration | None = None,
                             secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.checker_config.change_checker_threshold`."""
    what = f"change {checker}.{field}"
    _group(group, what)
    with Kube(configuration, what) as kube:
        ns, s = kube.settings.namespace, kube.settings
        cm_name, key, sts_name = s.checkers_configmap, s.checkers_key, s.service_statefulset
        cm = kube.read_configmap(ns, cm_name)
        if cm is None:
            raise ActivityFailed(f"{what}: no ConfigMap {ns}/{cm_name} (k8s_checkers_configmap) on {kube.where}")
        notes = cm.metadata.annotations or {}
        if BEFORE in notes or PENDING in notes:
            raise ActivityFailed(f"{what}: ConfigMap {ns}/{cm_name} already carries a change of this library "
                                 f"({BEFORE if BEFORE in notes else PENDING}); restore_checker_config first")
        data = dict(cm.data or {})
        if key not in data:
            raise ActivityFailed(f"{what}: ConfigMap {ns}/{cm_name} has no key {key!r} (k8s_checkers_key; keys: "
                                 f"{sorted(data)})")
        where = f"ConfigMap {ns}/{cm_name} key {key}"
        previous = data[key]
        text, old, new = edit_threshold(previous, checker, field, value, what, where)
        sts = kube.read_statefulset(ns, sts_name)
        _check_rollable(sts, what)
        record = json.dumps({"key": key, "value": previous, "sha256_after": _sha(text), "run_id": kube.base.run_id,
                             "changed": f"{checker}.{field} {old} -> {new}", "at": _now()}, sort_keys=True)
        kube.patch_configmap(ns, cm_name, {"metadata": {"resourceVersion": cm.metadata.resource_version,
                                                        "annotations": {BEFORE: record, PENDING: _now()}},
                                           "data": {key: text}},
                             f"{key}: {checker}.{field} {old} -> {new}; annotations {BEFORE}, {PENDING}")
        stamp = _restart(kube, ns, sts_name, cm_name)
        plan = f"set {checker}.{field} {old} -> {new} in {where}, then roll StatefulSet {ns}/{sts_name}"
        if kube.dry_run:
            return {"would": plan, "requests": kube.requests, "previous": previous, "old": old}
        rollout = kube.wait_rollout(ns, sts_name)
        return {"checker": checker, "field": field, "old": old, "new": new, "configmap": f"{ns}/{cm_name}",
                "key": key, "previous": previous, "previous_sha256": _sha(previous), "new_sha256": _sha(text),
                "statefulset": f"{ns}/{sts_name}", "restarted_at": stamp, "rollout": rollout,
                "requests": kube.requests, "changed": f"{checker}.{field} {old} -> {new}, rolled {sts_name}"}


def restore_checker_config(group: str = "audit-service", configuration: Configuration | None = None,
                           secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.checker_config.restore_checker_config`; idempotent."""
    what = "restore checker config"
    _group(group, what)
    with Kube(configuration, what) as kube:
        ns, s = kube.settings.namespace, kube.settings
        cm_name, sts_name = s.checkers_configmap, s.service_statefulset
        cm = kube.read_configmap(ns, cm_name)
        if cm is None:
            return {"changed": f"nothing to restore (no ConfigMap {ns}/{cm_name})", "would": "nothing"}
        notes = cm.metadata.annotations or {}
        if BEFORE not in notes and PENDING not in notes:
            return {"changed": f"nothing to restore (no change recorded on ConfigMap {ns}/{cm_name})",
                    "would": "nothing"}
        warning = None
        if BEFORE in notes:
            try:
                record = json.loads(notes[BEFORE])
                key, value = str(record["key"]), record["value"]
                if not isinstance(value, str):
                    raise TypeError(f"value is {type(value).__name__}")
            except (ValueError, KeyError, TypeError) as exc:
                raise ActivityFailed(f"{what}: annotation {BEFORE} on ConfigMap {ns}/{cm_name} is unreadable ({exc}); "
                                     "restore the data by hand from the journal entry's details.previous, then "
                                     f"`kubectl -n {ns} annotate configmap {cm_name} {BEFORE}-`") from None
            current = (cm.data or {}).get(key)
            if _sha(current) != record.get("sha256_after"):
                warning = (f"{key} of ConfigMap {ns}/{cm_name} was changed by someone else after the fault; "
                           "the value from before the fault is put back over it")
                logger.warning("%s: %s", what, warning)
            kube.patch_configmap(ns, cm_name, {"metadata": {"resourceVersion": cm.metadata.resource_version,
                                                            "annotations": {BEFORE: None, PENDING: _now()}},
                                               "data": {key: value}},
                                 f"{key}: the value from before the fault; drop {BEFORE}, set {PENDING}")
            would = f"restore {key} of ConfigMap {ns}/{cm_name} to its value before the fault"
            changed = f"restored {key} of ConfigMap {ns}/{cm_name}, rolled StatefulSet {sts_name}"
        else:
            would = f"finish a restore whose restart is pending on ConfigMap {ns}/{cm_name}"
            changed = f"rolled StatefulSet {sts_name} (a restart was pending after an earlier restore)"
        stamp = _restart(kube, ns, sts_name, cm_name)
        if kube.dry_run:
            return {"would": f"{would}, then roll StatefulSet {ns}/{sts_name}", "requests": kube.requests,
                    "warning": warning}
        rollout = kube.wait_rollout(ns, sts_name)
        return {"configmap": f"{ns}/{cm_name}", "statefulset": f"{ns}/{sts_name}", "restarted_at": stamp,
                "rollout": rollout, "warning": warning, "requests": kube.requests, "changed": changed}
