"""Judge a finished run from what it recorded: the same code live and offline.

Live (right after the experiment), the measurements query Prometheus and the stores
and record every answer in the run directory. Offline (``resilience report <dir>``),
the same function replays those answers, so the verdicts are reproduced exactly with
no stack running.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clients.clickhouse import ClickHouseAuth
from clients.kafka import KafkaAuth
from probes import prom
from probes.dataloss import DataLossReport, StoredEvent, account, loss_span_s, read_stored
from probes.evaluate import (
    Measurement,
    RunWindow,
    evaluate,
    recovery_measurement,
    rto_data_flow,
    rto_postgres_writable,
    rto_replicas_ready,
)
from probes.recovery import Recovery, RecoveryStatus
from probes.slo import Catalogue, MeasureUndefined, MetricView, load_catalogue
from probes.verdict import Outcome, Verdict, overall
from resilience.alerting import alert_verdicts
from resilience.experiments import Effect
from resilience.residue import residue_verdict
from resilience.rundir import RunDirectory, json_safe, read_json
from resilience.safeguards import stop_verdicts
from resilience.score import run_score
from resilience.secrets import Redactor
from target.contract import DataContract

logger = logging.getLogger(__name__)

FORMAT = 1
EXIT_CODES = {Outcome.PASS: 0, Outcome.FAIL: 1, Outcome.INCONCLUSIVE: 2}


@dataclass
class Judgement:
    outcome: Outcome
    verdicts: list[Verdict]
    rto: dict[str, dict[str, Any]]
    data_loss: dict[str, Any]
    load: dict[str, Any]
    errors: list[str] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)
    """SLOs of the scenario over an optional measure this service lacks (its read API): not judged."""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def summary(self, scenario: str) -> dict[str, Any]:
        return json_safe({"format": FORMAT, "scenario": scenario, "outcome": self.outcome.value,
                           "exit_code": self.exit_code, "verdicts": [v.as_dict() for v in self.verdicts],
                           "rto": self.rto, "data_loss": self.data_loss, "load": self.load, "errors": self.errors,
                           "score": run_score(v.as_dict() for v in self.verdicts),
                           "not_applicable": self.not_applicable})


def judge(run_dir: Path, run: dict[str, Any], prometheus_url: str, *, live: bool,
          clickhouse: tuple[str, int] | None = None, drained: dict[str, Any] | None = None,
          catalogue: Catalogue | None = None, postgres: dict[str, Any] | None = None,
          redactor: Redactor | None = None, clickhouse_auth: ClickHouseAuth | None = None,
          kafka_auth: KafkaAuth | None = None) -> Judgement:
    """Verdicts of the run described by ``run`` (the content of run.json).

    Args:
        live: query Prometheus and ClickHouse and record the answers in ``run_dir/recorded``;
            otherwise replay the recording.
        clickhouse: (host, port) for the final store read (live only).
        clickhouse_auth: the login for that read (default: ``default`` without password).
        kafka_auth: the Kafka login for reading the dead-letter topic (live only; default PLAINTEXT).
        postgres: psycopg keywords to cross-check the stateless checkers' violations (live only).
        drained: result of waiting for lag 0 (live: from the runner; offline: from the recording).
        redactor: masks secrets in the recordings written (live only).
    """
    rd = RunDirectory(run_dir, str(run.get("run_id")), redactor or Redactor([]))
    cat = catalogue or load_catalogue(Path(run.get("slo_file") or _default_slo_file()))
    scenario = cat.scenario(run["scenario"])
    view = (MetricView.from_dict(run["metrics"]) if run.get("metrics")
            else cat.view(run.get("target", "local")))  # runs recorded before the metric contract was data
    fault = run.get("fault") or {}
    window = RunWindow(start=float(run["started_at"]), end=float(run["ended_at"]),
                       fault_start=fault.get("start"), fault_end=fault.get("end"))
    rec_dir = run_dir / "recorded"
    contract = DataContract.model_validate(run.get("contract") or {})
    errors: list[str] = []

    # --- data loss (ledger vs ClickHouse) ------------------------------------------------
    from loadtests.ledger import LedgerError, read_ledger

    records: dict[str, Any] = {}
    try:
        ledger = read_ledger(run_dir / "ledger", strict=False)
        records = dict(ledger.acked)
        acked = {r.event_id: r.produced_at for r in ledger.acked.values()}
        failed_produces = ledger.failed_count
    except (LedgerError, OSError) as exc:
        acked, failed_produces = {}, 0
        errors.append(f"ledger: {exc}")
    if live:
        drain = drained or {"drained": False, "reason": "drain not awaited"}
        stored: dict[str, StoredEvent] = {}
        if acked and drain.get("drained") and clickhouse:
            try:
                stored = read_stored(clickhouse[0], clickhouse[1], min(acked.values()), max(acked.values()), contract,
                                     auth=clickhouse_auth)
            except prom.ProbeError as exc:
                errors.append(str(exc))
                drain = {**drain, "store_error": str(exc)}
        violations: dict[str, Any] = {"status": "not checked"}
        if stored and postgres and clickhouse and not _config_changed(run):
            violations = _check_violations(clickhouse, postgres, [k for k in stored if k in acked], contract,
                                           clickhouse_auth)
        rd.write("recorded/store.json", {"drain": drain, "violations": violations,
                                             "stored": {k: [v.copies, v.first_stored_at_ms, v.produced_at_ms]
                                                        for k, v in stored.items() if k in acked}})
    else:
        saved = read_json(rec_dir / "store.json") or {"drain": {"drained": False, "reason": "no store recording"},
                                                        "stored": {}}
        drain = saved["drain"]
        violations = saved.get("violations") or {"status": "not checked"}
        stored = {k: StoredEvent(*v) for k, v in saved["stored"].items()}
    loss: DataLossReport | None = None
    if not acked:
        loss_info: dict[str, Any] = {"status": "inconclusive", "reason": "the ledger holds no acknowledged event"}
    elif not drain.get("drained"):
        loss_info = {"status": "inconclusive", "reason": drain.get("reason") or "pipeline did not drain",
                     "acknowledged": len(acked)}
    elif drain.get("store_error"):
        loss_info = {"status": "inconclusive", "reason": drain["store_error"], "acknowledged": len(acked)}
    else:
        fault_ms = int(window.fault_start * 1000) if window.fault_start else None
        loss = account(acked, stored, fault_ms)
        lost_file = _write_lost(run_dir, loss.lost, records)
        loss_info = {"status": "measured", **loss.as_dict(max_ids=20), "violations": violations,
                     "lost_file": lost_file, "lost_listed": len(loss.lost)}

    # --- Prometheus: recovery and PromQL SLOs --------------------------------------------
    calls = (read_json(rec_dir / "prometheus.json") or []) if not live else []
    ctx = prom.recording() if live else prom.replaying(calls)
    with ctx as recorder:
        rto: dict[str, dict[str, Any]] = {}
        measured: dict[str, Measurement] = {}
        ext = run.get("extension", {})
        stab = float(ext.get("stabilization_s", 10.0))
        # Recovery is what the system does by itself: an RTO is observed up to the first rollback action.
        rollback_at = run.get("rollback_started_at")
        rto_window = window
        if rollback_at and window.fault_start is not None and window.fault_start < float(rollback_at) < window.end:
            rto_window = dataclasses.replace(window, end=float(rollback_at))
        probes: dict[str, Callable[[RunWindow], Recovery]] = {
            "replicas_ready": lambda w: rto_replicas_ready(cat, view, prometheus_url, w,
                                                           int(ext.get("expected_replicas", 3)), stab),
            "data_flow": lambda w: rto_data_flow(cat, view, prometheus_url, w, stab),
        }
        for name, fn in probes.items():
            try:
                m, rto[name] = _rto(fn, window, rto_window)
            except prom.ProbeError as exc:
                m = Measurement(None, str(exc))
                rto[name] = {"status": "inconclusive", "rto_s": None, "reason": str(exc)}
            measured[f"rto_{name}"] = m
        if loss is not None:
            measured["rpo"] = Measurement(loss.rpo_s, details={"lost_before_fault": loss.lost_before_fault})
            measured["data_loss"] = Measurement(float(len(loss.lost)), details={
                "lost_ids": loss.lost[:20], "lost_file": "lost.jsonl",
                "note": f"lost.jsonl lists all {len(loss.lost)} lost events" if loss.lost else ""})
        else:
            for sid in ("rpo", "data_loss"):
                measured[sid] = Measurement(None, loss_info.get("reason", "not measured"))
        if RESTORE_SLOS & set(ext.get("slos") or scenario.slos):
            measured.update(_restore(run_dir, records, stored, loss, loss_info))
        if "poison_dead_lettered" in (ext.get("slos") or scenario.slos):
            measured["poison_dead_lettered"] = _poison(rd, run, contract, live, kafka_auth)
        if "stale_tokens_served" in (ext.get("slos") or scenario.slos):
            measured["stale_tokens_served"] = _stale_tokens(rd)
        if SPLIT_BRAIN_SLOS & set(ext.get("slos") or scenario.slos):
            measured.update(_split_brain(run_dir))
        asked, achieved = _load_ratio(run_dir, run, acked)
        if "patroni_failover" in (ext.get("slos") or scenario.slos):
            try:
                measured["patroni_failover"], _ = _rto(
                    lambda w: rto_postgres_writable(cat, view, prometheus_url, w, stab), window, rto_window)
            except prom.ProbeError as exc:
                measured["patroni_failover"] = Measurement(None, str(exc))
        if "liveness_restart" in (ext.get("slos") or scenario.slos):
            measured["liveness_restart"] = _liveness_restart(cat, view, prometheus_url, rto_window, run_dir)
        verdicts = evaluate(cat, view, prometheus_url, window, scenario=scenario, measured=measured,
                            slo_ids=ext.get("slos"), load=(asked, achieved) if asked else None,
                            min_load_ratio=float(ext.get("min_load_ratio", 0.8)))
        verdicts[1 if asked else 0:1 if asked else 0] = [
            _expected_probe(run_dir, e["name"], e["equals"]) for e in ext.get("expect_probes") or []]
        effects = [_fault_effect(cat, view, prometheus_url, window, Effect.model_validate(e))
                   for e in ext.get("expect_effect") or []]
        verdicts[1 if asked else 0:1 if asked else 0] = effects
        if loss is not None and violations.get("status") == "measured" and any(
                v.slo == "data_loss" for v in verdicts):
            n = sum(len(ids) for ids in violations["missing"].values())
            verdicts.append(Verdict("violations_lost", Outcome.PASS if n == 0 else Outcome.FAIL, float(n), "== 0",
                                    "violations", "" if n == 0 else f"{n} expected violations missing from "
                                    f"PostgreSQL: {violations['missing']}", {"checked": violations["checked"]}))
            measured["rpo_postgres"] = _postgres_rpo(violations["missing"], acked, window.fault_start)
            verdicts += evaluate(cat, view, prometheus_url, window, scenario=scenario, measured=measured,
                                 slo_ids=["rpo_postgres"])
        if run.get("alerts"):  # the expected alerts fired, none in the healthy baseline (resilience/alerting.py)
            verdicts += _unproven_alerts(alert_verdicts(prometheus_url, window, run["alerts"]), effects)
        if live:
            rd.write("recorded/prometheus.json", recorder.calls)
    residue = residue_verdict(run_dir, run)  # is the target back where it started? (resilience/residue.py)
    if residue is not None:
        verdicts.append(residue)
    load_info = {"asked_eps": round(asked, 1), "achieved_eps": round(achieved, 1), "acknowledged": len(acked),
                 "failed": failed_produces, "shape": run.get("load", {}).get("shape")}
    verdicts.extend(stop_verdicts(run_dir))  # aborted by a safeguard, or halted by the kill switch
    if run.get("error"):
        errors.append(run["error"])
    outcome = overall(verdicts)
    if errors and outcome is Outcome.PASS:
        outcome = Outcome.INCONCLUSIVE  # something went wrong: a pass cannot be claimed
    not_applicable = [s for s in (ext.get("slos") or scenario.slos) if not cat.applicable(s, view)]
    return Judgement(outcome, verdicts, rto, loss_info, load_info, errors, not_applicable)


RESTORE_SLOS = {"restore_lost", "rpo_restore", "restore_duration"}
"""SLOs of a restore scenario, measured event by event (probes/restore.py)."""
RESTORE_LOST_FILE = "restore_lost.jsonl"


def _restore(run_dir: Path, records: dict[str, Any], stored: dict[str, StoredEvent], loss: DataLossReport | None,
             loss_info: dict[str, Any]) -> dict[str, Measurement]:
    """The restore's SLOs: every event acknowledged after the backup point and before the loss is back in
    ClickHouse after the restore and the Kafka replay, or named as lost (all of them in restore_lost.jsonl);
    the restore's recovery point and duration. Read from the run's journal, so offline re-judging agrees."""
    from probes import restore

    journal = read_json(run_dir / "journal.json") or {}
    try:
        run = restore.from_journal(journal)
    except restore.RestoreError as exc:
        return {sid: Measurement(None, str(exc)) for sid in RESTORE_SLOS}
    duration = Measurement(run.restore_seconds, "" if run.restore_seconds is not None else
                           f"no restore of backup {run.backup_id} in this run",
                           {"steps": run.restore.get("steps"), "backup_id": run.backup_id, "replay": run.replay})
    if loss is None:
        why = loss_info.get("reason", "the stores were not read")
        return {"restore_lost": Measurement(None, why), "rpo_restore": Measurement(None, why),
                "restore_duration": duration}
    acct = restore.account(records.values(), stored.keys(), run)
    why = restore.guard(run, acct)
    if why:
        return {"restore_lost": Measurement(None, why), "rpo_restore": Measurement(None, why),
                "restore_duration": duration}
    with (run_dir / RESTORE_LOST_FILE).open("w") as fh:
        for eid in acct.lost:
            r = records[eid]
            fh.write(json.dumps({"event_id": eid, "produced_at": r.produced_at, "acked_at": r.acked_at,
                                 "topic": r.topic, "partition": r.partition, "offset": r.offset}) + "\n")
    facts = {"backup_id": run.backup_id, "backup_taken_at_ms": run.backup_taken_at_ms, "lost_at_ms": run.lost_at_ms,
             "gap_s": round(run.gap_s, 3), "at_risk": acct.at_risk, "replay": run.replay,
             "backup_offsets": {str(p): o for p, o in run.backup_offsets.items()}}
    named = ", ".join(acct.lost[:50]) + (f" ... ({len(acct.lost) - 50} more)" if len(acct.lost) > 50 else "")
    lost = Measurement(float(len(acct.lost)), f"{len(acct.lost)} of {acct.at_risk} events acknowledged after the "
                       f"backup point and before the loss are not back (all in {RESTORE_LOST_FILE}): {named}"
                       if acct.lost else "", {**facts, "lost_ids": acct.lost[:1000], "lost_file": RESTORE_LOST_FILE})
    rpo = Measurement(acct.rpo_s, f"earliest event not back produced {acct.rpo_s:.1f} s before the loss "
                      f"(backup point {run.gap_s:.1f} s before it)" if acct.lost else "",
                      {**facts, "earliest_lost_produced_at_ms": acct.earliest_lost_produced_at_ms})
    return {"restore_lost": lost, "rpo_restore": rpo, "restore_duration": duration}


POISON_RECORDING = "recorded/poison.json"


def _poison(rd: RunDirectory, run: dict[str, Any], contract: DataContract, live: bool,
            kafka_auth: KafkaAuth | None) -> Measurement:
    """Every poison record the broker acknowledged (``load/poison.jsonl``) is in the dead-letter topic, by key.

    Inconclusive when none was acknowledged (the fault did not take effect) or the topic could not be read;
    live, the keys found are recorded, so offline re-judging reads the same answer."""
    from faults.poison_records import POISON_FILE, read_poison
    from probes import poison

    acked = read_poison(rd.load_dir / POISON_FILE)
    if not acked:
        return Measurement(None, f"no poison record was acknowledged ({POISON_FILE} is empty or absent): the "
                                 "fault did not take effect")
    sent = {r["key"] for r in acked}
    if live:
        bootstrap = str((run.get("endpoints") or {}).get("kafka_bootstrap") or "")
        try:
            keys = poison.dead_letter_keys(bootstrap, contract.dlq_topic, kafka_auth)
        except prom.ProbeError as exc:
            return Measurement(None, str(exc))
        found = sorted(sent & keys)
        rd.write(POISON_RECORDING, {"dlq_topic": contract.dlq_topic, "dead_lettered": found})
    else:
        saved = read_json(rd.path / POISON_RECORDING)
        if saved is None:
            return Measurement(None, f"no recording of the dead-letter topic ({POISON_RECORDING})")
        found = list(saved.get("dead_lettered") or [])
    acct = poison.account(acked, set(found))
    return Measurement(float(len(acct.missing)), acct.describe(),
                       {"acked": acct.acked, "dead_lettered": len(found), "dlq_topic": contract.dlq_topic,
                        "missing": [r["key"] for r in acct.missing][:1000]})


def _stale_tokens(rd: RunDirectory) -> Measurement:
    """Requests signed with a key the service does not hold (``load/stale_tokens.jsonl``) that it answered with
    anything but 401: a 2xx/3xx served a client without the key, a 5xx broke on it. Inconclusive when none was
    answered (the fault did not take effect); requests no replica answered are counted, not judged."""
    from faults.stale_tokens import STALE_FILE, account_counts, read_answers, tally

    answers = read_answers(rd.load_dir / STALE_FILE)
    by_status = tally(answers)
    answered = len(answers) - by_status.get("0", 0)
    if not answered:
        return Measurement(None, f"no stale-token request was answered ({len(answers)} sent, {STALE_FILE}): the "
                                 "fault did not take effect")
    wrong = [a for a in answers if a.get("status", 0) not in (0, 401)]
    counts = account_counts(by_status)
    reason = "" if not wrong else (f"{len(wrong)} of {answered} answered requests with a stale key were not refused "
                                   f"with 401 ({counts['served']} served, {counts['server_errors']} 5xx): "
                                   + ", ".join(f"#{a['n']} {a['url']} -> {a['status']}" for a in wrong[:5]))
    return Measurement(float(len(wrong)), reason, {"sent": len(answers), "answered": answered,
                                                   "by_status": by_status, **counts})


SPLIT_BRAIN_SLOS = {"split_brain_writes", "split_brain_lost", "split_brain_rpo"}
"""SLOs of the split-brain scenarios, from the canary writer's record (probes/splitbrain.py)."""
SPLIT_BRAIN_FILE = "split_brain.json"


def _split_brain(run_dir: Path) -> dict[str, Measurement]:
    """The split-brain SLOs: writes the isolated old leader took after it lost its leader key (client's
    acknowledgements and its own table), canary writes it acknowledged that the new leader lacks, and their
    span. Read from the run's journal (the probe's output, the fault's details), so offline re-judging agrees;
    the whole account goes to split_brain.json."""
    from probes import splitbrain

    writes, isolation = splitbrain.from_journal(read_json(run_dir / "journal.json") or {})
    if writes is None:
        why = f"probe {splitbrain.PROBE} did not succeed in this run"
        return {sid: Measurement(None, why) for sid in SPLIT_BRAIN_SLOS}
    acct = splitbrain.account(writes, isolation)
    facts = acct.as_dict()
    (run_dir / SPLIT_BRAIN_FILE).write_text(json.dumps({**facts, "reasons": acct.reasons,
                                                        "errors": writes.get("errors")}, indent=2))
    why = splitbrain.guard(acct)
    if why:
        return {sid: Measurement(None, why, facts) for sid in SPLIT_BRAIN_SLOS}
    after = acct.writes_after
    writes_m = Measurement(float(len(after)), f"the old leader took writes after it lost its leader key: "
                           f"{len(acct.acked_after)} acknowledged to the client, {len(acct.stored_after)} in its own "
                           f"table (seq {after[:20]})" if after else "", facts)
    lost = Measurement(float(len(acct.lost)), f"{len(acct.lost)} writes the old leader acknowledged are not on the "
                       f"new leader: seq {acct.lost[:20]}" if acct.lost else "", facts)
    rpo = Measurement(acct.rpo_s, "", facts)
    return {"split_brain_writes": writes_m, "split_brain_lost": lost, "split_brain_rpo": rpo}


def _liveness_restart(cat: Catalogue, view: MetricView, url: str, rto_window: RunWindow, run_dir: Path) -> Measurement:
    """Seconds from the hang to the restart of every hung replica by its liveness probe (probes/liveness.py),
    observed up to the first rollback action (``rto_window``): a replica the rollback had to resume was never
    restarted. The hung replicas and what the rollback resumed come from the run's journal."""
    from probes import liveness

    hung, resumed = liveness.from_journal(read_json(run_dir / "journal.json") or {})
    try:
        return liveness.restart_seconds(cat, view, url, rto_window, hung, resumed)
    except (prom.ProbeError, MeasureUndefined) as exc:
        return Measurement(None, str(exc))


def _config_changed(run: dict[str, Any]) -> bool:
    """A run that changed checker thresholds cannot have its violations predicted from one config."""
    return any("change_checker_threshold" in str(f) for f in (run.get("fault") or {}).get("faults", []))


def _check_violations(clickhouse: tuple[str, int], postgres: dict[str, Any], ids: list[str],
                      contract: DataContract, clickhouse_auth: ClickHouseAuth | None = None) -> dict[str, Any]:
    """Stateless checkers' violations expected from the stored events vs those in PostgreSQL."""
    from probes.dataloss import missing_violations
    from sqlaudit.config import load_checkers_config

    path = Path(postgres.pop("checkers_file", "") or "/nonexistent")
    cfg = load_checkers_config(path if path.is_file() else None, env={})
    try:
        missing = missing_violations(clickhouse, postgres, ids, cfg.slow_query.threshold_ms,
                                     cfg.actual_impact.threshold_rows, contract, auth=clickhouse_auth)
    except prom.ProbeError as exc:
        return {"status": "error", "reason": str(exc)}
    return {"status": "measured", "checked": len(ids), "missing": missing}


def _expected_probe(run_dir: Path, name: str, equals: Any) -> Verdict:
    """A method probe's recorded output (journal.json) must equal ``equals``."""
    journal = read_json(run_dir / "journal.json") or {}
    runs = [r for r in journal.get("run", []) if r.get("activity", {}).get("name") == name]
    slo = f"probe:{name}"
    if not runs:
        return Verdict(slo, Outcome.INCONCLUSIVE, None, f"== {equals}", "value", f"probe {name!r} did not run")
    r = runs[-1]
    if r.get("status") != "succeeded":
        return Verdict(slo, Outcome.INCONCLUSIVE, None, f"== {equals}", "value",
                       f"probe {name!r} {r.get('status')}: {str(r.get('exception') or '')[-200:]}")
    out = r.get("output")
    ok = out == equals
    return Verdict(slo, Outcome.PASS if ok else Outcome.FAIL, None, f"== {equals}", "value",
                   "" if ok else f"probe {name!r} returned {out!r}", {"output": out})


def _postgres_rpo(missing: dict[str, list[str]], acked: dict[str, int], fault_start: float | None) -> Measurement:
    """The PostgreSQL recovery point: the span of time whose violations were acknowledged and are missing
    from PostgreSQL, from the earliest lost one (or the fault's start, if later) to the latest (or the fault's
    start, if earlier: :func:`probes.dataloss.loss_span_s`, as the events' RPO); 0 when none is missing. Writes
    the old leader of a split brain acknowledged after the fault count as well as those lost from before it (an
    asynchronous failover lost 31 produced after the cut, 2026-12-01, and this read 0 s). Each one is named."""
    if fault_start is None:
        return Measurement(None, "no fault start recorded")
    fault_ms = fault_start * 1000
    lost = sorted((acked[e], checker, e) for checker, ids in missing.items() for e in ids if e in acked)
    if not lost:
        return Measurement(0.0, "", {"lost": []})
    named = [f"{checker} {e}" for _, checker, e in lost]
    before = sum(1 for t, _, _ in lost if t < fault_ms)
    return Measurement(loss_span_s([t for t, _, _ in lost], fault_ms),
                       f"violations acknowledged and missing from PostgreSQL ({before} produced before the fault, "
                       f"{len(lost) - before} during or after it): {', '.join(named)}", {"lost": named})


def _write_lost(run_dir: Path, lost: list[str], records: dict[str, Any]) -> str:
    """``lost.jsonl``: every lost event (id, produced_at ms, topic, partition, offset), one per line, in
    produced order; an engineer replaying the disaster needs all of them, not a sample."""
    path = run_dir / "lost.jsonl"
    with path.open("w") as fh:
        for eid in lost:
            r = records.get(eid)
            row = {"event_id": eid, "produced_at": getattr(r, "produced_at", None), "topic": getattr(r, "topic", None),
                   "partition": getattr(r, "partition", None), "offset": getattr(r, "offset", None)}
            fh.write(json.dumps(row) + "\n")
    return path.name


def _rto(fn: Callable[[RunWindow], Recovery], window: RunWindow, rto_window: RunWindow
         ) -> tuple[Measurement, dict[str, Any]]:
    """An RTO observed in ``rto_window`` (the run up to the first rollback action).

    A condition that had not recovered when the rollback started but did after it recovered *by
    the rollback*, not by itself: the measurement is "never recovered" (it fails an objective the
    observation covered, and is inconclusive when the rollback came before the objective elapsed),
    with the reason saying so.
    """
    full = fn(window)  # asked first, so the recording covers every shorter window (offline what-ifs)
    rec = fn(rto_window) if rto_window.end < window.end else full
    m = recovery_measurement(rec)
    info: dict[str, Any] = {"status": rec.status.value, "rto_s": rec.rto_s, "reason": rec.reason}
    if rto_window.fault_start is not None:
        m.details["observed_s"] = round(rto_window.end - rto_window.fault_start, 1)
    if (rec.status is not RecoveryStatus.RECOVERED and rto_window.end < window.end
            and full.status is RecoveryStatus.RECOVERED and full.rto_s is not None):
        reason = (f"not recovered by itself before the first rollback action at "
                  f"+{rto_window.end - float(rto_window.fault_start or 0):.1f} s; it came back at "
                  f"+{full.rto_s:.1f} s, after the rollback: recovered by rollback")
        m = Measurement(math.inf, reason, {**m.details, "recovered_by_rollback": True,
                                           "rto_with_rollback_s": full.rto_s})
        info = {"status": "recovered_by_rollback", "rto_s": None, "reason": reason}
    return m, info


def _unproven_alerts(alerts: list[Verdict], effects: list[Verdict]) -> list[Verdict]:
    """An expected alert that never fired fails only when the fault did what the experiment needs of it: without
    that effect the disaster the alert exists for did not happen, and the alert's silence is right (on the
    Spring service 0.8 s of ClickHouse latency raised the processing p95 to 0.89 s, not the 2 s that
    CriticalProcessingLatency pages for: a false fail). Such a fail becomes inconclusive, naming the effect."""
    missed = [e for e in effects if e.outcome is not Outcome.PASS]
    if not missed:
        return alerts
    why = "; ".join(f"{e.slo} {e.outcome.value}" for e in missed)
    return [dataclasses.replace(v, outcome=Outcome.INCONCLUSIVE,
                                reason=f"the fault did not take the effect this alert is about ({why}): its silence "
                                       f"proves nothing. {v.reason}")
            if v.slo.startswith("alert:") and v.outcome is Outcome.FAIL else v for v in alerts]


def _fault_effect(cat: Catalogue, view: MetricView, url: str, window: RunWindow, effect: Effect) -> Verdict:
    """Did the fault do what the experiment says it must? If not, the run proves nothing about recovering
    from it: inconclusive ("fault did not take effect"), never pass."""
    slo, text = f"fault_effect:{effect.measure}", effect.describe()
    unit = "value"
    if window.fault_start is None:
        return Verdict(slo, Outcome.INCONCLUSIVE, None, text, unit, "no fault recorded in the journal")
    until = min(window.end, float(window.fault_end or window.fault_start) + effect.within_s)
    try:
        query = cat.query(effect.measure, view, window=effect.window)
        series = prom.range_query(url, query, window.fault_start, max(until, window.fault_start + 1), step_s=0.5)
        values = [v for s in series for _, v in s.points]
    except (prom.ProbeError, MeasureUndefined) as exc:
        return Verdict(slo, Outcome.INCONCLUSIVE, None, text, unit, str(exc))
    if not values:
        return Verdict(slo, Outcome.INCONCLUSIVE, None, text, unit, f"no samples of {effect.measure} during the fault")
    if effect.at_least is not None:
        seen, bit = max(values), max(values) >= effect.at_least
    else:
        seen, bit = min(values), min(values) <= float(effect.at_most or 0)
    if bit:
        return Verdict(slo, Outcome.PASS, seen, text, unit, "", {"query": query})
    span = f"between the fault's start and +{until - window.fault_start:.0f} s"
    return Verdict(slo, Outcome.INCONCLUSIVE, seen, text, unit,
                   f"fault did not take effect: {effect.measure} was {seen:g} at its "
                   f"{'highest' if effect.at_least is not None else 'lowest'} {span} (needs {text})",
                   {"query": query})


def _load_ratio(run_dir: Path, run: dict[str, Any], acked: dict[str, int]) -> tuple[float, float]:
    """(asked, achieved) mean events/s over the time the load actually ran.

    The plan (shape, base rate) says how many events were asked for up to the moment the load
    stopped (the experiment may stop it early); the ledger says how many were acknowledged.
    """
    from loadtests.shapes import LoadPlan

    spec = run.get("load", {})
    if not acked or not spec.get("rate_eps"):
        return float(spec.get("rate_eps") or 0), 0.0
    load = read_json(run_dir / "load" / "load.json") or {}
    started = float(load.get("started_at") or min(acked.values()) / 1000)
    ran = max(1.0, max(acked.values()) / 1000 - started)
    plan = LoadPlan(shape=spec["shape"], rate=float(spec["rate_eps"]), duration=float(spec["duration_s"]))
    steps = max(1, int(ran * 10))
    asked_events = sum((plan.rate_at((i + 0.5) * ran / steps) or 0.0) * ran / steps for i in range(steps))
    return asked_events / ran, len(acked) / ran


def _default_slo_file() -> Path:
    from probes.slo import DEFAULT_SLO_FILE

    return DEFAULT_SLO_FILE
