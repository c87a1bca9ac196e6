"""What the residue audit (:mod:`faults.residue`) reads on the embedded stack, and when each item is back.

The local faults change toxiproxy's proxies, supervised programs (stopped, SIGKILLed, SIGSTOPped,
restarted), the replicas' checker file, and memory cgroups; none changes a ClickHouse or Kafka
setting (they stop, freeze or cut those processes), so for ClickHouse, Kafka and Patroni the audit
reads the state such faults can leave: brokers registered and partitions with their full ISR,
Patroni's leader, members and synchronous mode, and every component's own health check.

Items (``READERS``) and their rules (``RULES``; docs/faults.md, "Residue audit"):

``toxiproxy``       per proxy: ``enabled`` and its toxics — must be equal.
``programs``        per supervised program: state, main pid and start time, frozen (SIGSTOPped), heap held by a hog
                    pids; and ``strays``: processes working in the stack's data directory outside
                    every program (what a restart left behind). State equal, nothing frozen, no new
                    stray. A new pid is a note (supervisord restarted what the run killed).
``health``          every component's health check (``resilience status``): healthy stays healthy.
``patroni``         (ha) leader, synchronous mode, members: synchronous mode equal, a leader, every
                    member that ran or streamed does again; another leader is a note (failover).
``kafka``           live brokers, and per partition leader, replicas and ISR: no broker missing, no
                    partition offline, no ISR smaller; another leader is a note.
``checker_config``  sha256 of ``conf/checkers.yaml``, and whether the fault's backup or candidate
                    file is there: equal hash, no backup, no candidate.
``cgroups``         the OOM fault's cgroups of this stack: none new.
``replicas``        the replica count in ``stack.json`` and a scale's ``scaled_from`` mark, the audit-service
                    targets Prometheus scrapes and the pods the pod-state exporter reports: all equal (a
                    scale not undone leaves programs, targets and pods behind; :mod:`stack.scale`).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import psutil
import requests

from faults.local import local_stack
from faults.local.heap import read_markers, status_dir
from faults.local.memory import V1_ROOT, V2_ROOT
from faults.residue import Finding, Item
from faults.toxiproxy import CHAOS_PREFIX, ToxiproxyAPI
from stack.components import kafka as kafka_component
from stack.components import patroni
from stack.components import prometheus as prometheus_component
from stack.components.audit_service import GROUP, checkers_file, replica_name
from stack.core import LocalStack
from target.settings import TargetSettings

logger = logging.getLogger(__name__)

TIMEOUT = (2.0, 5.0)
BACKUP_SUFFIXES = (".before-chaos", ".candidate")
"""Files the checker-config fault leaves next to ``checkers.yaml`` while a change is applied."""
ALIVE_STATES = ("running", "streaming")


def instance(settings: TargetSettings) -> str | None:
    """Which incarnation of the stack this is (supervisord's pid and start time): a snapshot of an earlier
    incarnation is no reference for this one."""
    pid = local_stack(settings).supervisor.pid()
    if pid is None:
        return None
    return f"supervisord pid {pid} started {psutil.Process(pid).create_time():.2f}"


def _stack(settings: TargetSettings) -> LocalStack:
    return local_stack(settings)


# ------------------------------------------------------------------------------ readers
def read_toxiproxy(settings: TargetSettings) -> Item:
    return ToxiproxyAPI(_stack(settings).endpoints.toxiproxy_url).snapshot("residue audit")


def _family(pids: list[int]) -> list[psutil.Process]:
    procs: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in (root, *root.children(recursive=True)):
                procs[proc.pid] = proc
        except psutil.Error:
            continue
    return list(procs.values())


def read_programs(settings: TargetSettings) -> Item:
    stack = _stack(settings)
    infos = stack.supervisor.process_info()
    extra: dict[str, list[int]] = {}
    for comp in stack.components():
        if comp.pids is not None:
            try:
                extra[comp.name] = list(comp.pids(stack.ctx))
            except Exception as exc:
                logger.info("residue audit: pids of %s: %s", comp.name, exc)
    hogs = {m["program"]: m["pid"] for m in read_markers(status_dir(stack.data_dir)).values() if m["alive"]}
    programs: dict[str, Any] = {}
    known: set[int] = set()
    sup = stack.supervisor.pid()
    if sup:
        known.add(sup)
    for name, info in sorted(infos.items()):
        pid = int(info["pid"]) if info.get("pid") else None
        family = _family(([pid] if pid else []) + extra.get(name, []))
        known.update(p.pid for p in family)
        frozen, started = [], None
        for proc in family:
            try:
                if proc.status() == psutil.STATUS_STOPPED:
                    frozen.append(proc.pid)
                if proc.pid == pid:
                    started = proc.create_time()
            except psutil.Error:
                continue
        programs[name] = {"state": str(info["statename"]), "pid": pid, "started": started, "frozen": sorted(frozen),
                          "heap_hog": hogs.get(name) == pid}
    return {"programs": programs, "strays": _strays(stack.data_dir, known)}


def _owned(proc: psutil.Process, known: set[int]) -> bool:
    """Whether a supervised program's process is among ``proc``'s ancestors (or ``proc`` is gone): a child forked
    after the programs' families were listed (PostgreSQL's backend for a new connection) is theirs, not a stray."""
    try:
        return any(parent.pid in known for parent in proc.parents())
    except psutil.Error:
        return True


def _strays(data_dir: Path, known: set[int]) -> dict[str, Any]:
    """Processes working in the stack's data directory (their cwd) that no supervised program owns."""
    root = str(data_dir.resolve())
    found: dict[str, Any] = {}
    for proc in psutil.process_iter(["pid", "cwd", "cmdline", "create_time", "status"]):
        info = proc.info
        cwd = info.get("cwd") or ""
        if info["pid"] in known or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if (cwd == root or cwd.startswith(root + "/")) and not _owned(proc, known):
            found[str(info["pid"])] = {"pid": info["pid"], "started": info["create_time"],
                                       "cmd": " ".join(info["cmdline"] or [])[:200], "cwd": cwd}
    return found


def read_health(settings: TargetSettings) -> Item:
    status = _stack(settings).status()
    if not status.running:
        raise RuntimeError(f"stack at port base {settings.stack_port_base} is not running")
    return {c.name: {"healthy": c.healthy, "detail": c.detail} for c in status.components}


def read_patroni(settings: TargetSettings) -> Item | None:
    ctx = _stack(settings).ctx
    if ctx.profile != "ha":
        return None
    cluster = patroni.patroni_cluster(ctx)
    members = {str(m["name"]): {"role": m.get("role"), "state": m.get("state")} for m in cluster.get("members", [])}
    leader = next((n for n, m in members.items() if m["role"] in ("leader", "master", "primary")
                   and m["state"] == "running"), None)
    sync = None
    for member in patroni.PG_MEMBERS:
        try:
            url = f"http://127.0.0.1:{ctx.endpoints.port(member.api_port)}/config"
            sync = bool(requests.get(url, timeout=TIMEOUT).json().get("synchronous_mode"))
            break
        except (requests.RequestException, ValueError):
            continue
    return {"leader": leader, "synchronous_mode": sync, "members": members}


def read_kafka(settings: TargetSettings) -> Item:
    from kafka import KafkaAdminClient

    ctx = _stack(settings).ctx
    bootstrap = kafka_component.kafka_bootstrap_direct(ctx) if ctx.profile == "ha" else ctx.endpoints.kafka_bootstrap
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="resilience-residue", request_timeout_ms=5000,
                             bootstrap_timeout_ms=3000, **settings.kafka_auth().client_kwargs())
    try:
        cluster = admin.describe_cluster()
        topics = admin.describe_topics([ctx.topic])
    finally:
        admin.close()
    brokers = sorted(int(b.get("broker_id", b.get("node_id", -1))) for b in cluster.get("brokers", [])
                     if not b.get("is_fenced"))
    partitions = {str(p.get("partition_index")): {"leader": p.get("leader_id"),
                                                  "replicas": sorted(p.get("replica_nodes") or []),
                                                  "isr": sorted(p.get("isr_nodes") or [])}
                  for p in topics[0].get("partitions", [])}
    return {"topic": ctx.topic, "brokers": brokers, "partitions": partitions}


def read_checker_config(settings: TargetSettings) -> Item:
    path = checkers_file(_stack(settings).ctx)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
    return {"file": str(path), "sha256": digest,
            "pending": sorted(s for s in BACKUP_SUFFIXES if path.with_name(path.name + s).exists())}


def read_cgroups(settings: TargetSettings) -> Item:
    roots = [r for r in (V1_ROOT, V2_ROOT) if r.is_dir()]
    pattern = f"sqlaudit-{settings.stack_port_base}-oom-*"
    found = sorted({str(p) for root in roots for p in root.rglob(pattern) if p.is_dir()})
    return {"paths": found}


def read_replicas(settings: TargetSettings) -> Item:
    from prometheus_client.parser import text_string_to_metric_families

    stack = _stack(settings)
    ctx = stack.ctx
    state = stack._read_state() or {}
    targets = sorted(str(t.get("component")) for t in prometheus_component.active_targets(ctx, GROUP))
    text = requests.get(f"http://127.0.0.1:{ctx.endpoints.port('pod_state_exporter')}/metrics", timeout=TIMEOUT).text
    pods: set[str] = set()
    desired = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "kube_pod_status_ready":
                pods.add(sample.labels["pod"])
            elif sample.name == "kube_statefulset_replicas":
                desired = int(sample.value)
    return {"replicas": state.get("replicas"), "scaled_from": state.get("scaled_from"), "scrape_targets": targets,
            "exporter_pods": sorted(pods), "exporter_replicas": desired}


READERS = {"toxiproxy": read_toxiproxy, "programs": read_programs, "health": read_health, "patroni": read_patroni,
           "kafka": read_kafka, "checker_config": read_checker_config, "cgroups": read_cgroups,
           "replicas": read_replicas}


# ------------------------------------------------------------------------------ rules
def _toxic(t: dict[str, Any]) -> str:
    return f"{t['name']} ({t['type']} {t['stream']}, toxicity {t.get('toxicity')}, {t.get('attributes')})"


def toxiproxy_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    found = []
    for name in sorted(set(ref) | set(now)):
        subject = f"toxiproxy proxy {name}"
        if name not in now:
            found.append(Finding("toxiproxy", subject, f"gone (there {label})"))
            continue
        if name not in ref:
            found.append(Finding("toxiproxy", subject, f"added (not there {label})"))
            continue
        if ref[name]["enabled"] != now[name]["enabled"]:
            state = "enabled" if now[name]["enabled"] else "DISABLED"
            was = "enabled" if ref[name]["enabled"] else "disabled"
            found.append(Finding("toxiproxy", subject, f"{state} (was {was} {label})"))
        before = {_toxic(t) for t in ref[name]["toxics"]}
        after = {_toxic(t) for t in now[name]["toxics"]}
        found += [Finding("toxiproxy", subject, f"toxic {t} left (not there {label})") for t in sorted(after - before)]
        found += [Finding("toxiproxy", subject, f"toxic {t} gone (there {label})") for t in sorted(before - after)]
    return found


def programs_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    found = []
    rp, np_ = ref.get("programs") or {}, now.get("programs") or {}
    for name in sorted(set(rp) | set(np_)):
        subject = f"program {name}"
        if name not in np_:
            found.append(Finding("programs", subject, f"no longer supervised (it was {label})"))
            continue
        if name not in rp:
            found.append(Finding("programs", subject, f"supervised now, not {label}"))
            continue
        r, n = rp[name], np_[name]
        if r["state"] != n["state"]:
            found.append(Finding("programs", subject, f"{n['state']} (was {r['state']} {label})"))
        if n.get("frozen"):
            found.append(Finding("programs", subject, f"pid(s) {n['frozen']} frozen (SIGSTOP), not answering"))
        if n.get("heap_hog"):
            found.append(Finding("programs", subject, f"pid {n['pid']}: a heap hog still holds its heap "
                                 "(release_heap)"))
        if r.get("pid") and n.get("pid") and (r["pid"], r.get("started")) != (n["pid"], n.get("started")):
            found.append(Finding("programs", subject, f"restarted during the run: pid {r['pid']} -> {n['pid']}",
                                 leftover=False))
    ref_strays = {(s["pid"], s["started"]) for s in (ref.get("strays") or {}).values()}
    for stray in sorted((now.get("strays") or {}).values(), key=lambda s: s["pid"]):
        if (stray["pid"], stray["started"]) not in ref_strays:
            found.append(Finding("programs", f"process pid {stray['pid']}",
                                 f"left in the stack's directory outside every supervised program, not there "
                                 f"{label} ({stray['cmd'][:120]})"))
    return found


def health_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    found = []
    for name in sorted(set(ref) | set(now)):
        r, n = ref.get(name), now.get(name)
        if r and r["healthy"] and (not n or not n["healthy"]):
            found.append(Finding("health", f"component {name}",
                                 f"unhealthy ({(n or {}).get('detail', 'absent')}), healthy {label}"))
    return found


def patroni_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    found = []
    if ref.get("synchronous_mode") != now.get("synchronous_mode"):
        found.append(Finding("patroni", "Patroni synchronous_mode", f"{now.get('synchronous_mode')} "
                                                                   f"(was {ref.get('synchronous_mode')} {label})"))
    if now.get("leader") is None:
        found.append(Finding("patroni", "Patroni leader", f"none running (was {ref.get('leader')} {label})"))
    elif ref.get("leader") and ref["leader"] != now["leader"]:
        found.append(Finding("patroni", "Patroni leader", f"{ref['leader']} -> {now['leader']} (a failover may move "
                                                          "it)", leftover=False))
    for name, member in sorted((ref.get("members") or {}).items()):
        current = (now.get("members") or {}).get(name)
        if member.get("state") in ALIVE_STATES and (not current or current.get("state") not in ALIVE_STATES):
            found.append(Finding("patroni", f"Patroni member {name}",
                                 f"{(current or {}).get('state', 'absent')} (was {member.get('state')} {label})"))
    return found


def kafka_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    found = []
    missing = sorted(set(ref.get("brokers") or []) - set(now.get("brokers") or []))
    if missing:
        found.append(Finding("kafka", "Kafka brokers", f"{missing} not registered (they were {label})"))
    rparts, nparts = ref.get("partitions") or {}, now.get("partitions") or {}
    if set(rparts) != set(nparts):
        found.append(Finding("kafka", f"Kafka topic {now.get('topic')}",
                             f"partitions {sorted(nparts, key=int)} (were {sorted(rparts, key=int)} {label})"))
    for index in sorted(set(rparts) & set(nparts), key=int):
        r, n = rparts[index], nparts[index]
        subject = f"Kafka partition {now.get('topic')}-{index}"
        if n.get("leader") in (None, -1):
            found.append(Finding("kafka", subject, "offline (no leader)"))
        elif r.get("leader") != n.get("leader"):
            found.append(Finding("kafka", subject, f"leader {r.get('leader')} -> {n.get('leader')}", leftover=False))
        short = sorted(set(r.get("isr") or []) - set(n.get("isr") or []))
        if short:
            found.append(Finding("kafka", subject, f"ISR {n.get('isr')} lacks {short} (was {r.get('isr')} {label})"))
    return found


def checker_config_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    found = []
    if ref.get("sha256") != now.get("sha256"):
        found.append(Finding("checker_config", f"checker config {now.get('file')}",
                             f"content changed (sha256 {str(now.get('sha256'))[:12]}, was "
                             f"{str(ref.get('sha256'))[:12]} {label})"))
    for suffix in sorted(set(now.get("pending") or []) - set(ref.get("pending") or [])):
        found.append(Finding("checker_config", f"checker config {now.get('file')}",
                             f"{Path(str(now.get('file'))).name}{suffix} left (a change not restored)"))
    return found


def cgroups_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    return [Finding("cgroups", f"memory cgroup {path}", f"left by the OOM fault (not there {label})")
            for path in sorted(set(now.get("paths") or []) - set(ref.get("paths") or []))]


def replicas_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    found = []
    if now.get("scaled_from") is not None and ref.get("scaled_from") is None:
        found.append(Finding("replicas", "audit-service replicas",
                             f"scaled from {now['scaled_from']} and not scaled back (stack.json)"))
    for key, what in (("replicas", "replica count (stack.json)"), ("scrape_targets", "Prometheus scrape targets"),
                      ("exporter_pods", "pods of the pod-state exporter"),
                      ("exporter_replicas", "kube_statefulset_replicas of the pod-state exporter")):
        if ref.get(key) != now.get(key):
            found.append(Finding("replicas", f"audit-service {what}", f"{now.get(key)} (was {ref.get(key)} {label})"))
    return found


RULES = {"toxiproxy": toxiproxy_rule, "programs": programs_rule, "health": health_rule, "patroni": patroni_rule,
         "kafka": kafka_rule, "checker_config": checker_config_rule, "cgroups": cgroups_rule,
         "replicas": replicas_rule}


# ------------------------------------------------------------------------------ at rest
def _toxiproxy_at_rest(item: Item) -> Item:
    return {name: {"enabled": True, "toxics": [t for t in p["toxics"] if not str(t["name"]).startswith(CHAOS_PREFIX)]}
            for name, p in item.items()}


def _programs_at_rest(item: Item) -> Item:
    return {"programs": {name: {**p, "state": "RUNNING", "frozen": [], "heap_hog": False}
                         for name, p in item["programs"].items()},
            "strays": {}}


def _health_at_rest(item: Item) -> Item:
    return {name: {"healthy": True, "detail": "healthy at rest"} for name in item}


def _patroni_at_rest(item: Item) -> Item:
    return {**item, "members": {name: {**m, "state": "running" if m.get("role") in ("leader", "master", "primary")
                                       else "streaming"} for name, m in (item.get("members") or {}).items()}}


def _kafka_at_rest(item: Item) -> Item:
    return {**item, "partitions": {i: {**p, "isr": sorted(p.get("replicas") or [])}
                                   for i, p in (item.get("partitions") or {}).items()}}


def _checker_config_at_rest(item: Item) -> Item:
    from sqlaudit.config import DEFAULT_CHECKERS_FILE

    return {**item, "sha256": hashlib.sha256(DEFAULT_CHECKERS_FILE.read_bytes()).hexdigest(), "pending": []}


def _cgroups_at_rest(item: Item) -> Item:
    return {"paths": []}


def _replicas_at_rest(item: Item) -> Item:
    count = int(item.get("scaled_from") or item.get("replicas") or 0)
    names = [replica_name(i) for i in range(count)]
    return {"replicas": count, "scaled_from": None, "scrape_targets": names, "exporter_pods": names,
            "exporter_replicas": count}


AT_REST = {"toxiproxy": _toxiproxy_at_rest, "programs": _programs_at_rest, "health": _health_at_rest,
           "patroni": _patroni_at_rest, "kafka": _kafka_at_rest, "checker_config": _checker_config_at_rest,
           "cgroups": _cgroups_at_rest, "replicas": _replicas_at_rest}
LIBRARY_ITEMS = ("toxiproxy", "checker_config", "cgroups", "replicas")
"""Items whose leftovers only this library makes (a run refuses to start on them)."""


def not_auditable(settings: TargetSettings) -> str | None:
    """A local stack whose supervisord does not answer has nothing to audit (``resilience up`` starts it clean)."""
    stack = _stack(settings)
    if stack.supervisor.is_running():
        return None
    return f"not running (data dir {stack.data_dir})"
