"""Local backend of :mod:`faults.kafka_broker`: stop / start a broker program.

Minimal profile: the single broker is the program ``kafka`` (broker 0). HA
profile: three brokers, index 0, 1, 2 are the programs ``kafka``, ``kafka-2``,
``kafka-3`` (KRaft node ids 1, 2, 3); :func:`_program` maps the index.
``graceful=false`` SIGKILLs the broker and keeps it down (no controlled shutdown:
partition leadership moves only when the controller notices the lost session).
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.local import _ha, local_stack
from faults.local.processes import Programs, start_again, stop_for
from stack.components import kafka
from target.settings import TargetSettings, resolve


def _program(settings: TargetSettings, broker: int | None, what: str) -> str:
    profile = local_stack(settings).ctx.profile
    if profile == "ha":
        return kafka.BROKERS[_ha.pick(broker, len(kafka.BROKERS), "broker", what)].program
    if broker not in (None, 0):
        raise ActivityFailed(f"{what}: broker={broker!r}: the {profile} profile has one broker (0)")
    return "kafka"


def stop_kafka_broker(broker: int | None = None, duration: float | None = None, graceful: bool = True,
                      configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.kafka_broker.stop_kafka_broker`."""
    settings = resolve(configuration)
    what = f"{'stop' if graceful else 'kill'} Kafka broker {broker if broker is not None else '(any)'}"
    program = _program(settings, broker, what)
    if graceful:
        return stop_for(settings, program, what)
    programs = Programs(settings)
    info = programs.running_info(program, what)
    if settings.dry_run:
        return {"would": f"SIGKILL {program} (pid {info['pid']}) and keep it down via {programs.where}",
                "program": program}
    pid = _ha.kill_and_hold(programs, program, what)
    return {"program": program, "pid": pid, "changed": f"SIGKILL {program} (pid {pid}), held down"}


def start_kafka_broker(broker: int | None = None, configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.kafka_broker.start_kafka_broker`."""
    settings = resolve(configuration)
    what = f"start Kafka broker {broker if broker is not None else '(all)'}"
    return start_again(settings, _program(settings, broker, what), what)
