"""The Chaos Toolkit ``configuration`` keys every fault understands.

One place reads them, so docs/faults.md and the code cannot disagree:

``target``             ``local`` (default) or ``kubernetes``: which backend runs the fault.
``stack_port_base``    port base of the local stack (default: env ``RESILIENCE_PORT_BASE``, else 19000).
``stack_data_dir``     data directory of the local stack (default: env ``RESILIENCE_DATA_DIR``, else derived
                       from the port base, ``/var/tmp/sql-audit-resilience/stack-<port base>``).
``fault_state_dir``    where the fault journal lives (default: env ``RESILIENCE_STATE_DIR``,
                       else ``/var/tmp/sql-audit-resilience/faults``); outside git on purpose.
``run_id``             groups the faults of one run (default: env ``RESILIENCE_RUN_ID``, else one
                       id per Python process).
``dry_run``            ``true``: every action validates its arguments, reads the system, logs what it
                       would do and changes nothing (no journal entry either).
``heartbeat_timeout``  seconds without a heartbeat after which the watchdog reverts the run's faults
                       (default 15).
``watchdog``           ``false`` disables the detached watchdog (cleanup and expiry timers remain).
``max_replicas_killed`` cap on replicas one ``kill_replicas`` may take down (default: all but one).
``k8s_*``, ``allow_production``  Kubernetes target keys, read by ``faults/kubernetes/settings.py``; kept
                       here only to be journaled with each fault, so cleanup reaches the same cluster.
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

DEFAULT_STATE_DIR = Path("/var/tmp/sql-audit-resilience/faults")
DEFAULT_PORT_BASE = 19000
DEFAULT_HEARTBEAT_TIMEOUT = 15.0
TARGETS = ("local", "kubernetes")

_process_run_id: str | None = None


def process_run_id() -> str:
    """The run id of this process when none is configured: ``adhoc-<start time>-<pid>`` (fixed on first use)."""
    global _process_run_id
    if _process_run_id is None:
        _process_run_id = f"adhoc-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
    return _process_run_id


def parse_bool(value: Any, key: str) -> bool:
    """A configuration boolean (YAML bool or an environment string); ``ActivityFailed`` naming ``key``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ActivityFailed(f"configuration {key}={value!r}: expected true or false")


def _number(value: Any, key: str, kind: type = float) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ActivityFailed(f"configuration {key}={value!r}: expected a {kind.__name__}") from exc


def target_file_configuration() -> dict[str, Any]:
    """Configuration keys from the YAML file named by ``RESILIENCE_TARGET_CONFIG`` (``{}`` without one).

    Chaos Toolkit drops configuration keys an experiment does not declare, so the keys of a
    target (``k8s_*``, endpoints) that every experiment would otherwise have to repeat come from
    this file; the experiment's own configuration wins over it.
    """
    path = os.environ.get("RESILIENCE_TARGET_CONFIG")
    if not path:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ActivityFailed(f"RESILIENCE_TARGET_CONFIG={path}: {exc}") from None
    if not isinstance(data, dict):
        raise ActivityFailed(f"RESILIENCE_TARGET_CONFIG={path}: expected a mapping of configuration keys")
    return data


@dataclass(frozen=True)
class Settings:
    """Validated view of the ``configuration`` keys above."""

    target: str = "local"
    port_base: int = DEFAULT_PORT_BASE
    data_dir: Path | None = None
    state_dir: Path = DEFAULT_STATE_DIR
    run_id: str = "adhoc"
    dry_run: bool = False
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT
    watchdog: bool = True
    max_replicas_killed: int | None = None
    target_keys: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_configuration(cls, configuration: dict[str, Any] | None) -> "Settings":
        """Read and validate the configuration; raises ``ActivityFailed`` naming a bad key."""
        cfg = {**target_file_configuration(), **(configuration or {})}
        target = str(cfg.get("target", "local")).strip().lower()
        if target not in TARGETS:
            raise ActivityFailed(f"configuration target={target!r}: expected one of {', '.join(TARGETS)}")
        port_base = _number(cfg.get("stack_port_base", os.environ.get("RESILIENCE_PORT_BASE", DEFAULT_PORT_BASE)),
                            "stack_port_base", int)
        data_dir = cfg.get("stack_data_dir") or os.environ.get("RESILIENCE_DATA_DIR")
        state_dir = cfg.get("fault_state_dir") or os.environ.get("RESILIENCE_STATE_DIR") or DEFAULT_STATE_DIR
        run_id = str(cfg.get("run_id") or os.environ.get("RESILIENCE_RUN_ID") or process_run_id())
        if not run_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ActivityFailed(f"configuration run_id={run_id!r}: use letters, digits, '-', '_' and '.' only")
        timeout = _number(cfg.get("heartbeat_timeout", DEFAULT_HEARTBEAT_TIMEOUT), "heartbeat_timeout")
        if timeout <= 0:
            raise ActivityFailed(f"configuration heartbeat_timeout={timeout}: must be > 0")
        cap = cfg.get("max_replicas_killed")
        return cls(
            target=target,
            port_base=port_base,
            data_dir=Path(data_dir).expanduser().resolve() if data_dir else None,
            state_dir=Path(state_dir).expanduser().resolve(),
            run_id=run_id,
            dry_run=parse_bool(cfg.get("dry_run", False), "dry_run"),
            heartbeat_timeout=timeout,
            watchdog=parse_bool(cfg.get("watchdog", True), "watchdog"),
            max_replicas_killed=None if cap in (None, "") else _number(cap, "max_replicas_killed", int),
            target_keys={k: v for k, v in cfg.items() if k.startswith("k8s_") or k == "allow_production"},
        )

    def stack_configuration(self) -> dict[str, Any]:
        """The keys a later ``cleanup`` needs to find the same stack and journal again."""
        cfg: dict[str, Any] = {"target": self.target, "stack_port_base": self.port_base,
                               "fault_state_dir": str(self.state_dir), "run_id": self.run_id,
                               "heartbeat_timeout": self.heartbeat_timeout}
        if self.data_dir is not None:
            cfg["stack_data_dir"] = str(self.data_dir)
        cfg.update(self.target_keys)
        return cfg
