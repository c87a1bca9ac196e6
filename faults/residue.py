"""Residue audit: is the target back where it started after a run?

A **snapshot** reads the target's state the faults can change (:func:`snapshot`; what each target
reads is in ``faults/<target>/residue.py``: toxics and supervised programs locally, NetworkPolicies
and patched objects on Kubernetes), plus what every target shares: the fault journal's open entries
on that stack and the processes a run leaves on this machine (its load generator, expiry timers,
watchdog). The runner takes one right before the experiment and one after its last rollback and
clean-up; :func:`diff` compares them item by item, and every difference is a :class:`Finding`:

* a **leftover** — the target is not back (a toxic, a stopped program, a changed file, a process
  still running): the ``residue`` verdict fails the run and names it;
* a **note** — a change the run may make and that is not residue (a replica the run killed got a
  new pid; Patroni's leader moved after a failover): reported, never failing.

What "back where it started" means for each item is documented in docs/faults.md ("Residue
audit"); the rules are the ``RULES`` tables here and in the backends.

Without a snapshot from before (``resilience cleanup`` after a run that was killed before it saved
one), :func:`at_rest` builds the reference a stack at rest must match — nothing of this library on
it — and the same :func:`diff` compares against it. The runner keeps its snapshot from before in
the journal (:func:`save_before`) so that a later ``cleanup`` compares with the real one.
"""

from __future__ import annotations

import copy
import functools
import importlib
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from faults import companions, journal
from target.settings import TargetSettings, resolve

logger = logging.getLogger(__name__)

FORMAT = 1
SETTLE_TIMEOUT_S = 45.0
"""How long :func:`settle` waits for the target to come back before the differences count as leftovers."""
SETTLE_POLL_S = 1.0
CLEANUP_SETTLE_S = 10.0
"""How long ``resilience cleanup``'s audit looks again at a difference before it reports it (:func:`audit_stack`)."""

Snapshot = dict[str, Any]
Item = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One difference between two snapshots: ``subject`` (``proxy kafka``) and ``what`` changed."""

    item: str
    subject: str
    what: str
    leftover: bool = True

    def __str__(self) -> str:
        return f"{self.subject}: {self.what}"


@dataclass
class Audit:
    """The findings of one :func:`diff`: ``leftovers`` (residue) and ``notes`` (allowed changes)."""

    reference: str
    leftovers: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.leftovers

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "clean": self.clean,
                "leftovers": [{**asdict(f), "text": str(f)} for f in self.leftovers],
                "notes": [{**asdict(f), "text": str(f)} for f in self.notes]}

    def describe(self) -> str:
        """The leftovers in one line (``nothing left`` when clean)."""
        return "; ".join(map(str, self.leftovers)) or "nothing left"


Rule = Callable[[Item, Item, str], list[Finding]]
"""``rule(reference_item, now_item, reference_label)``: the findings of one item."""


# ---------------------------------------------------------------------- taking snapshots
def _backend(target: str) -> Any:
    return importlib.import_module(f"faults.{target}.residue")


def snapshot(settings: TargetSettings) -> Snapshot:
    """The target's state now: the backend's items, the journal's open entries on this stack, the processes.

    An item that cannot be read holds ``{"error": ...}``; nothing raises for an unreachable part of
    the target (the diff says what could not be read).
    """
    t0 = time.monotonic()
    items: dict[str, Item | None] = {}
    backend = _backend(settings.target)
    for name, read in backend.READERS.items():
        items[name] = _read(name, functools.partial(read, settings))
    items["journal"] = _read("journal", lambda: read_journal(settings))
    items["processes"] = _read("processes", lambda: read_processes(settings))
    return {"format": FORMAT, "target": settings.target, "stack": journal.settings_stack(settings),
            "instance": _read_instance(backend, settings), "taken_at": time.time(),
            "took_s": round(time.monotonic() - t0, 2), "items": items}


def _read(name: str, fn: Callable[[], Item | None]) -> Item | None:
    try:
        return fn()
    except Exception as exc:  # an unreadable part is a finding of the diff, not a crash of the audit
        logger.info("residue audit: reading %s: %s", name, exc)
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def _read_instance(backend: Any, settings: TargetSettings) -> str | None:
    try:
        return backend.instance(settings)
    except Exception as exc:
        logger.info("residue audit: identifying the target: %s", exc)
        return None


def read_journal(settings: TargetSettings) -> Item:
    """Open journal entries on this stack (any run): ``{entry id: {fault, run_id, status}}``."""
    return {str(e["id"]): {"fault": e.get("fault"), "run_id": e.get("run_id"), "status": e.get("status"),
                           "action": e.get("action")}
            for _, e in journal.open_entries(settings.fault_state_dir) if journal.same_stack(e, settings)}


_RUN_ARG = re.compile(r"--run\s+(\S+)")


def read_processes(settings: TargetSettings) -> Item:
    """This library's processes on this machine that belong to this stack's runs.

    ``helpers``: expiry timers and watchdogs working on this journal (``python -m faults.cli``);
    ``load``: Locust processes producing into this target's Kafka. Each: ``{"pid", "started", "cmd",
    "run_id", "orphaned"}``; ``orphaned``: its run is dead (helpers) or the process that started it is
    gone (load).
    """
    state = str(settings.fault_state_dir)
    bootstrap = settings.kafka_bootstrap or ""
    helpers: dict[str, Any] = {}
    load: dict[str, Any] = {}
    for proc in psutil.process_iter(["pid", "cmdline", "create_time", "status", "ppid"]):
        info = proc.info
        if info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmd = info["cmdline"] or []
        text = " ".join(cmd)
        record = {"pid": info["pid"], "started": info["create_time"], "cmd": text[:300]}
        if _helper_command(cmd) and state and state in text:
            run_id = _helper_run(cmd, state)
            if not _this_target(settings, run_id):
                continue
            alive = run_id is None or companions.why_dead(settings.fault_state_dir, run_id, _timeout(settings,
                                                                                                    run_id)) is None
            helpers[str(info["pid"])] = {**record, "run_id": run_id, "orphaned": not alive}
        elif "locust" in text and bootstrap and _flag(cmd, "--kafka-bootstrap") == bootstrap:
            parent_gone = info["ppid"] in (0, 1) or not _pid_exists(info["ppid"])
            load[str(info["pid"])] = {**record, "run_id": None, "orphaned": parent_gone}
    return {"helpers": helpers, "load": load}


HELPER_COMMANDS = ("watchdog", "expire")
"""The ``faults.cli`` commands :mod:`faults.watchdog` starts on its own (``spawn_detached``): a run's helpers."""


def _helper_command(cmd: list[str]) -> bool:
    """Whether ``cmd`` is ``... faults.cli watchdog|expire ...``. Not any ``faults.cli``: a ``cleanup`` names the
    journal too, and in a pod of its own (the runner Job's cleanup container, deploy/k8s/base) it is pid 1, as the
    dead run's helpers were in theirs; counted, it named itself a leftover of that run and failed."""
    return any(a == "faults.cli" and b in HELPER_COMMANDS for a, b in itertools.pairwise(cmd))


def _helper_run(cmd: list[str], state: str) -> str | None:
    """The run a ``faults.cli`` helper works for: ``watchdog --run ID`` or ``expire <state>/<run>/faults/x.json``."""
    match = _RUN_ARG.search(" ".join(cmd))
    if match:
        return match.group(1)
    for arg in cmd:
        if arg.startswith(state) and arg.endswith(".json"):
            return Path(arg).parent.parent.name
    return None


def _this_target(settings: TargetSettings, run_id: str | None) -> bool:
    """Whether a helper's run acts on this target. Stacks side by side share the journal directory; a
    run without a recorded target (journals written before the key existed) counts, to stay on the safe side."""
    if run_id is None:
        return True
    recorded = journal.run_meta(settings.fault_state_dir, run_id).get("target")
    return recorded is None or recorded == settings.target_key


def _timeout(settings: TargetSettings, run_id: str) -> float:
    meta = journal.run_meta(settings.fault_state_dir, run_id)
    return float(meta.get("heartbeat_timeout") or settings.heartbeat_timeout)


def _flag(cmd: list[str], name: str) -> str | None:
    for i, arg in enumerate(cmd[:-1]):
        if arg == name:
            return cmd[i + 1]
    return None


def _pid_exists(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# ---------------------------------------------------------------------- comparing them
def _journal_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    return [Finding("journal", f"fault {entry.get('fault')} ({entry_id})",
                    f"still {entry.get('status')} in the journal (run {entry.get('run_id')}; not open {label})")
            for entry_id, entry in sorted(now.items()) if entry_id not in ref]


def _processes_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    found = []
    for kind, what in (("load", "load generator"), ("helpers", "fault helper")):
        before = {(p["pid"], p["started"]) for p in (ref.get(kind) or {}).values()}
        for p in sorted((now.get(kind) or {}).values(), key=lambda p: p["pid"]):
            if (p["pid"], p["started"]) not in before:
                run = f" of run {p['run_id']}" if p.get("run_id") else ""
                found.append(Finding("processes", f"{what} pid {p['pid']}{run}",
                                     f"still running, not there {label} ({p['cmd'][:120]})"))
    return found


def _journal_at_rest(item: Item) -> Item:
    return {}


def _processes_at_rest(item: Item) -> Item:
    return {kind: {pid: p for pid, p in (item.get(kind) or {}).items() if not p.get("orphaned")}
            for kind in ("helpers", "load")}


COMMON_RULES: dict[str, Rule] = {"journal": _journal_rule, "processes": _processes_rule}
COMMON_AT_REST: dict[str, Callable[[Item], Item]] = {"journal": _journal_at_rest, "processes": _processes_at_rest}
LIBRARY_ITEMS = ("journal", "processes")
"""Items that only this library changes: a leftover there before a run is refused (see :func:`library_leftovers`)."""


def _tables(target: str) -> tuple[dict[str, Rule], dict[str, Callable[[Item], Item]], tuple[str, ...]]:
    backend = _backend(target)
    return ({**backend.RULES, **COMMON_RULES}, {**backend.AT_REST, **COMMON_AT_REST},
            (*backend.LIBRARY_ITEMS, *LIBRARY_ITEMS))


def library_items(target: str) -> tuple[str, ...]:
    """The items of ``target`` whose leftovers only this library makes (see :func:`library_leftovers`)."""
    return _tables(target)[2]


def diff(reference: Snapshot, now: Snapshot, label: str = "before the run") -> Audit:
    """Compare ``now`` with ``reference`` item by item; ``label`` says what the reference is in the messages.

    An item that could be read in the reference and cannot be read now is a leftover (it is not
    provably back); one that could not be read in the reference is a note (nothing to compare with).
    """
    audit = Audit(reference=label)
    if not same_stack(reference.get("stack") or {}, now.get("stack") or {}):
        audit.leftovers.append(Finding("stack", "target", f"snapshots of different stacks: {reference.get('stack')} "
                                                          f"{label}, {now.get('stack')} now"))
        return audit
    rules, _, _ = _tables(str(now.get("target")))
    ref_items, now_items = reference.get("items") or {}, now.get("items") or {}
    for name, rule in rules.items():
        ref, cur = ref_items.get(name), now_items.get(name)
        if ref is None and cur is None:
            continue
        if isinstance(cur, dict) and "error" in cur:
            if isinstance(ref, dict) and "error" not in ref:
                audit.leftovers.append(Finding(name, name, f"cannot be read now ({cur['error']}); it could {label}"))
            else:
                audit.notes.append(Finding(name, name, f"cannot be read ({cur['error']})", leftover=False))
            continue
        if ref is None or cur is None or (isinstance(ref, dict) and "error" in ref):
            audit.notes.append(Finding(name, name, f"not read {label}: nothing to compare with", leftover=False))
            continue
        for finding in rule(ref, cur, label):
            (audit.leftovers if finding.leftover else audit.notes).append(finding)
    return audit


def same_stack(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two :func:`faults.journal.stack_identity` name one stack (a ``data_dir`` left unset on one side
    is the default of the port base, as the other may spell it out)."""
    if a.get("data_dir") is None or b.get("data_dir") is None:
        a, b = {**a, "data_dir": None}, {**b, "data_dir": None}
    return a == b


def at_rest(now: Snapshot) -> Snapshot:
    """The snapshot a stack at rest would give where ``now`` was read: nothing of this library on it
    (no toxic named ``chaos-*``, every proxy enabled, every program RUNNING and not frozen, no changed
    config, no cgroup of the OOM fault, no open fault, no process of a dead run...), the rest as read."""
    _, at_rest_fns, _ = _tables(str(now.get("target")))
    ref = copy.deepcopy(now)
    for name, fn in at_rest_fns.items():
        item = ref["items"].get(name)
        if isinstance(item, dict) and "error" not in item:
            ref["items"][name] = fn(item)
    return ref


def library_leftovers(now: Snapshot) -> list[Finding]:
    """What of this library's own making is on the target now (toxics, policies, annotations, open faults,
    processes of dead runs): a run must not start on it — its verdict could not be trusted."""
    _, _, library = _tables(str(now.get("target")))
    return [f for f in diff(at_rest(now), now, "at rest").leftovers if f.item in library]


def settle(settings: TargetSettings, reference: Snapshot, timeout: float = SETTLE_TIMEOUT_S,
           poll: float = SETTLE_POLL_S, label: str = "before the run") -> tuple[Snapshot, Audit, float]:
    """Take snapshots until one matches ``reference`` (or ``timeout`` s pass): ``(snapshot, audit, waited)``.

    A rollback has just returned: a restarted replica may still be rejoining, the watchdog leaving.
    What is still different at the deadline is residue.
    """
    t0 = time.monotonic()
    while True:
        now = snapshot(settings)
        audit = diff(reference, now, label)
        waited = time.monotonic() - t0
        if audit.clean or waited >= timeout:
            return now, audit, waited
        logger.debug("residue audit: not back yet after %.1f s: %s", waited, audit.describe())
        time.sleep(poll)


# ---------------------------------------------------------------------- the run's snapshot on disk
def _before_path(state_dir: Path, run_id: str) -> Path:
    return journal.run_dir(state_dir, run_id) / "residue-before.json"


def save_before(settings: TargetSettings, snap: Snapshot) -> Path:
    """Keep the run's snapshot from before the experiment in its journal directory (for ``cleanup``)."""
    journal.ensure_run(settings)
    path = _before_path(settings.fault_state_dir, settings.run_id)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"configuration": settings.journal_configuration(), "snapshot": snap}, default=str))
    tmp.replace(path)
    return path


def saved_before(state_dir: Path, run_id: str | None = None) -> list[tuple[str, dict[str, Any], Snapshot]]:
    """Saved snapshots from before a run: ``(run_id, configuration, snapshot)``, newest first."""
    if run_id:
        runs = [run_id]
    else:
        runs = sorted(p.name for p in state_dir.iterdir() if p.is_dir()) if state_dir.is_dir() else []
    found = []
    for run in runs:
        try:
            data = json.loads(_before_path(state_dir, run).read_text())
        except (OSError, ValueError):
            continue
        found.append((run, dict(data.get("configuration") or {}), dict(data.get("snapshot") or {})))
    found.sort(key=lambda r: float(r[2].get("taken_at") or 0), reverse=True)
    return found


def saved_reference(settings: TargetSettings, now: Snapshot, run_id: str | None = None
                    ) -> tuple[Snapshot, str] | None:
    """The newest saved snapshot from before a run (of ``run_id`` if given) on this very stack instance
    (same stack, same incarnation: a stack started again since is compared at rest), with its label."""
    for run, _, snap in saved_before(settings.fault_state_dir, run_id):
        if same_stack(snap.get("stack") or {}, now.get("stack") or {}) \
                and snap.get("instance") == now.get("instance") and snap.get("instance") is not None:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(snap.get("taken_at") or 0)))
            return snap, f"before run {run} ({when})"
    return None


def audit_stack(configuration: dict[str, Any], run_id: str | None = None) -> Audit:
    """``resilience cleanup``'s audit of one stack: now against the newest saved snapshot from before a run
    on it (:func:`saved_reference`), else against :func:`at_rest`."""
    settings = resolve({**configuration, "dry_run": False})
    now = snapshot(settings)
    saved = saved_reference(settings, now, run_id)
    reference, label = (at_rest(now), "at rest") if saved is None else saved
    audit = diff(reference, now, label)
    if audit.clean:
        return audit
    # One snapshot can catch a moment (a Prometheus scrape that failed once, a process forking): what is still
    # different some seconds later is residue.
    return settle(settings, reference, timeout=CLEANUP_SETTLE_S, label=label)[1]


# ---------------------------------------------------------------------- what `resilience cleanup` audits
def not_auditable(settings: TargetSettings) -> str | None:
    """Why the stack ``settings`` point at cannot be audited now (a local stack that is not running), or ``None``."""
    reason: str | None = getattr(_backend(settings.target), "not_auditable", lambda s: None)(settings)
    return reason


def _configurations(state_dir: Path, run_id: str | None) -> list[dict[str, Any]]:
    """Every recorded configuration (saved snapshots first, newest first; then journal entries)."""
    found = [cfg for _, cfg, _ in saved_before(state_dir, run_id)]
    found += [dict(e.get("configuration") or {}) for _, e in reversed(journal.entries(state_dir, run_id))]
    return [c for c in found if c]


def scoped_stacks(state_dir: Path, run_id: str | None, port_base: int | None) -> list[dict[str, Any]]:
    """The configurations of the stacks a ``cleanup`` scope covers, one per stack (see :mod:`faults.cli`).

    ``port_base``: the local stack there (its data dir as the journal recorded it, else the default);
    otherwise every stack recorded for ``run_id`` (or in the whole journal).
    """
    recorded = _configurations(state_dir, run_id)
    if port_base is not None:
        same = [c for c in recorded if c.get("target", "local") == "local" and int(c.get("stack_port_base") or 0)
                == port_base]
        base = same[0] if same else {"target": "local", "stack_port_base": port_base}
        return [{**base, "fault_state_dir": str(state_dir)}]
    stacks: dict[str, dict[str, Any]] = {}
    for cfg in recorded:
        try:
            key = json.dumps(journal.settings_stack(resolve({**cfg, "fault_state_dir": str(state_dir)})),
                             sort_keys=True)
        except Exception as exc:  # a configuration this version cannot resolve: nothing to audit there
            logger.info("residue audit: recorded configuration %s: %s", cfg, exc)
            continue
        stacks.setdefault(key, {**cfg, "fault_state_dir": str(state_dir)})
    return list(stacks.values())


def scoped_runs(state_dir: Path, run_id: str | None, port_base: int | None) -> list[str]:
    """The runs a ``cleanup`` scope covers: ``run_id``, or every run with a record on the stack (or anywhere)."""
    if run_id is not None:
        return [run_id]
    if not state_dir.is_dir():
        return []
    runs = []
    for run_dir in sorted(p for p in state_dir.iterdir() if p.is_dir()):
        cfgs = _configurations(state_dir, run_dir.name)
        if port_base is None or any(c.get("target", "local") == "local"
                                    and int(c.get("stack_port_base") or 0) == port_base for c in cfgs):
            runs.append(run_dir.name)
    return runs
