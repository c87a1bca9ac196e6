"""What a load run is asked to do, its validation, and its Locust command-line options.

One :class:`LoadSpec` is the single source of truth for both entry points: the
locustfile registers its fields as Locust custom arguments
(:func:`add_locust_arguments`) and the Python API (:mod:`loadtests.locust_process`)
turns a spec into those same arguments (:meth:`LoadSpec.locust_args`).
:func:`check_bootstrap` proves the brokers answer and the topic exists before
any load starts.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from clients.kafka import KafkaAuth, is_auth_failure
from loadtests.formats import DEFAULT_FORMAT, resolve_format
from loadtests.generator import GeneratorConfig
from loadtests.shapes import DEFAULT_DURATIONS, SHAPES, LoadPlan, check_shape_name

logger = logging.getLogger(__name__)

__all__ = ["AUTH_ENV_PREFIX", "DEFAULT_TOPIC", "MIX_KNOBS", "LoadConfigError", "LoadSpec", "add_locust_arguments",
           "check_bootstrap", "check_mix", "parse_bootstrap", "spec_from_options"]

DEFAULT_TOPIC = "sql-audit-events"
AUTH_ENV_PREFIX = "LOADTESTS_"
"""The Locust process reads its Kafka login from ``LOADTESTS_KAFKA_*`` (:meth:`clients.kafka.KafkaAuth.environment`)."""


class LoadConfigError(ValueError):
    """A load run was asked for something impossible; the message names the argument or the address."""


MIX_KNOBS = ("slow_fraction", "impact_fraction", "error_fraction", "failing_app_error_ratio", "burst_fraction")
"""The generator knobs an experiment may set for its load (``mix``): the shares of the events each checker flags."""


def check_mix(mix: Any) -> dict[str, float]:
    """An experiment's load ``mix`` (``{knob: share}``, knobs of :data:`MIX_KNOBS`), checked as the generator would.

    Raises :class:`LoadConfigError` naming the knob: an unknown one, a share that is not a number in [0, 1),
    or shares the generator refuses together (slow + impact + burst must stay under 1)."""
    if mix is None:
        return {}
    if not isinstance(mix, dict):
        raise LoadConfigError(f"mix: must be a mapping of {', '.join(MIX_KNOBS)} to shares, got {mix!r}")
    out: dict[str, float] = {}
    for knob, value in mix.items():
        if knob not in MIX_KNOBS:
            raise LoadConfigError(f"mix.{knob}: unknown knob (known: {', '.join(MIX_KNOBS)})")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LoadConfigError(f"mix.{knob}: must be a share in [0, 1), got {value!r}")
        out[knob] = float(value)
    try:
        GeneratorConfig(**dict[str, Any](out))  # the generator's own range checks
    except ValueError as exc:
        raise LoadConfigError(f"mix: {exc}") from None
    return out


def _positive(name: str, value: Any, kind: type = float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise LoadConfigError(f"{name}: must be a positive number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise LoadConfigError(f"{name}: must be > 0, got {value!r}")
    return number


def parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """``"h1:9092,h2:9092"`` -> ``[("h1", 9092), ("h2", 9092)]``; raises :class:`LoadConfigError`."""
    out: list[tuple[str, int]] = []
    for part in (bootstrap or "").split(","):
        part = part.strip()
        host, sep, port = part.rpartition(":")
        if not part or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise LoadConfigError(f"bootstrap: {part!r} in {bootstrap!r} is not host:port")
        out.append((host.strip("[]"), int(port)))
    return out


@dataclass(frozen=True)
class LoadSpec:
    """One load run.

    Arguments:
        bootstrap: Kafka bootstrap servers, ``host:port[,host:port]`` (the DIRECT listener).
        shape: a load shape of :data:`loadtests.shapes.SHAPES` (steady, ramp, spike, soak).
        rate: base rate in events per second (> 0); the shape scales it over time.
        duration: seconds (> 0); default per shape (steady 60, ramp 120, spike 180, soak 3600).
        seed: seeds the event content (see :mod:`loadtests.generator`).
        ledger_dir: where each process writes its ledger; ``None`` disables the ledger.
        topic: the Kafka topic.
        event_format: how an event is written (:mod:`loadtests.formats`: ``sqlaudit-v1`` or ``module:function``).
        user_rate: most events/s one Locust user (one producer) produces.
        spike_factor: rate multiple during the spike of the ``spike`` shape.
        max_events: stop after this many events in total (``None``: run for ``duration``).
        slow_fraction, impact_fraction, error_fraction, burst_fraction, slow_ms, impact_rows,
        burst_size, failing_app_error_ratio: generator knobs (:class:`GeneratorConfig`).
        linger_ms, batch_size, delivery_timeout_ms: producer knobs.
        api_urls: base URLs of the service's read API, comma separated (the replicas; empty: no API load).
            The HS256 key of its tokens comes from the environment (``LOADTESTS_API_JWT_SECRET``), never
            the command line.
        api_rate: API requests per second (one ``ApiReadUser``, beside the producers).
        api_bad_token_share: share of API requests sent with a bad token (each must get 401).

    Raises :class:`LoadConfigError` naming the argument when a value is invalid.
    """

    bootstrap: str
    shape: str = "steady"
    rate: float = 100.0
    duration: float | None = None
    seed: int = 0
    ledger_dir: str | None = None
    topic: str = DEFAULT_TOPIC
    event_format: str = DEFAULT_FORMAT
    user_rate: float = 100.0
    spike_factor: float = 5.0
    max_events: int | None = None
    slow_fraction: float = GeneratorConfig.slow_fraction
    slow_ms: int = GeneratorConfig.slow_ms
    impact_fraction: float = GeneratorConfig.impact_fraction
    impact_rows: int = GeneratorConfig.impact_rows
    error_fraction: float = GeneratorConfig.error_fraction
    failing_app_error_ratio: float = GeneratorConfig.failing_app_error_ratio
    burst_fraction: float = GeneratorConfig.burst_fraction
    burst_size: int = GeneratorConfig.burst_size
    linger_ms: int = 5
    batch_size: int = 16384
    delivery_timeout_ms: int = 30000
    api_urls: str = ""
    api_rate: float = 10.0
    api_bad_token_share: float = 0.02
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        try:
            check_shape_name(self.shape)
        except ValueError as exc:
            raise LoadConfigError(str(exc)) from None
        parse_bootstrap(self.bootstrap)
        _positive("rate", self.rate)
        _positive("user_rate", self.user_rate)
        if self.duration is not None:
            _positive("duration", self.duration)
        if self.max_events is not None:
            _positive("max_events", self.max_events, int)
        if not self.topic:
            raise LoadConfigError("topic: must not be empty")
        try:
            resolve_format(self.event_format)
        except ValueError as exc:
            raise LoadConfigError(f"event_format: {exc}") from None
        for name in ("linger_ms",):
            if getattr(self, name) < 0:
                raise LoadConfigError(f"{name}: must be >= 0, got {getattr(self, name)!r}")
        _positive("batch_size", self.batch_size, int)
        _positive("delivery_timeout_ms", self.delivery_timeout_ms, int)
        _positive("api_rate", self.api_rate)
        if not 0.0 <= self.api_bad_token_share <= 1.0:
            raise LoadConfigError(f"api_bad_token_share: must be within 0..1, got {self.api_bad_token_share!r}")
        for url in self.api_url_list:
            if not re.fullmatch(r"https?://[^/\s,]+(/\S*)?", url):
                raise LoadConfigError(f"api_urls: {url!r} is not an http(s) base URL")
        try:
            self.generator_config()
            self.plan()
        except ValueError as exc:
            raise LoadConfigError(str(exc)) from None

    @property
    def api_url_list(self) -> list[str]:
        """``api_urls`` split (no trailing slash); empty when there is no API to load."""
        return [u.strip().rstrip("/") for u in self.api_urls.split(",") if u.strip()]

    @property
    def effective_duration(self) -> float:
        """``duration``, or the shape's default duration."""
        return float(self.duration) if self.duration is not None else DEFAULT_DURATIONS[self.shape]

    def plan(self) -> LoadPlan:
        """The rate over time (:class:`loadtests.shapes.LoadPlan`)."""
        return LoadPlan(shape=self.shape, rate=float(self.rate), duration=self.effective_duration,
                        user_rate=float(self.user_rate), spike_factor=float(self.spike_factor))

    def generator_config(self, seed: int | None = None) -> GeneratorConfig:
        """The generator parameters of this spec (with ``seed`` overriding the run seed)."""
        return GeneratorConfig(seed=self.seed if seed is None else seed, slow_fraction=self.slow_fraction,
                               slow_ms=self.slow_ms, impact_fraction=self.impact_fraction,
                               impact_rows=self.impact_rows, error_fraction=self.error_fraction,
                               failing_app_error_ratio=self.failing_app_error_ratio,
                               burst_fraction=self.burst_fraction, burst_size=self.burst_size)

    def locust_args(self) -> list[str]:
        """The spec as locust custom command-line arguments (inverse of :func:`spec_from_options`)."""
        args: list[str] = []
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            args += [_flag(f.name), str(value)]
        return args


def _flag(name: str) -> str:
    return "--" + ("kafka-" if name in ("bootstrap", "topic", "linger_ms", "batch_size",
                                        "delivery_timeout_ms") else "") + name.replace("_", "-")


def _dest(name: str) -> str:
    return _flag(name)[2:].replace("-", "_")


def _arg_type(name: str, kind: type) -> Any:
    """An argparse ``type`` that names the argument in its error (argparse adds ``argument --x:``)."""

    def convert(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__}: {text!r}") from None

    convert.__name__ = kind.__name__
    return convert


_KINDS: dict[str, type] = {
    **dict.fromkeys(("duration", "rate", "user_rate", "spike_factor", "slow_fraction", "impact_fraction",
                     "error_fraction", "failing_app_error_ratio", "burst_fraction", "api_rate",
                     "api_bad_token_share"), float),
    **dict.fromkeys(("seed", "max_events", "slow_ms", "impact_rows", "burst_size", "linger_ms", "batch_size",
                     "delivery_timeout_ms"), int),
}


def add_locust_arguments(parser: Any) -> None:
    """Register every :class:`LoadSpec` field as a Locust custom argument (shown in the web UI).

    Values are validated when the test starts (:func:`spec_from_options`), so a bad
    one stops the run before any load with a message naming the argument.
    """
    defaults = LoadSpec(bootstrap="127.0.0.1:9092")
    helps = {
        "bootstrap": "Kafka bootstrap servers host:port[,host:port] (the stack's DIRECT listener)",
        "shape": f"load shape: {', '.join(SHAPES)}",
        "rate": "base rate in events per second (> 0); the shape scales it over time",
        "duration": "run length in seconds (default per shape: "
                    + ", ".join(f"{k} {v:.0f}" for k, v in DEFAULT_DURATIONS.items()) + ")",
        "seed": "seed of the event content (reproducible runs)",
        "ledger_dir": "directory of the acked-event ledger (empty: no ledger)",
        "topic": "Kafka topic",
        "event_format": "how an event is written: sqlaudit-v1 (docs/events.md) or module:function",
        "user_rate": "most events/s per Locust user (one producer per user)",
        "spike_factor": "rate multiple during the spike of the spike shape",
        "max_events": "stop after this many events in total (default: run for the duration)",
        "api_urls": "read API base URLs, comma separated (empty: no API load; token key in LOADTESTS_API_JWT_SECRET)",
        "api_rate": "API requests per second",
        "api_bad_token_share": "share of API requests with a bad token (must get 401)",
    }
    for f in fields(LoadSpec):
        if f.name == "extra":
            continue
        default = getattr(defaults, f.name)
        kind = _KINDS.get(f.name, str)
        kwargs: dict[str, Any] = {"dest": _dest(f.name), "type": _arg_type(f.name, kind),
                                  "default": default if f.name != "bootstrap" else None,
                                  "help": helps.get(f.name, f"generator/producer knob (default {default})")}
        if f.name == "shape":
            kwargs["choices"] = list(SHAPES)
            kwargs["type"] = str
        if f.name == "bootstrap":
            kwargs["env_var"] = "LOADTESTS_BOOTSTRAP"
        if f.name not in helps:
            kwargs["include_in_web_ui"] = False
        parser.add_argument(_flag(f.name), **kwargs)


def spec_from_options(options: Any) -> LoadSpec:
    """Build (and so validate) a :class:`LoadSpec` from Locust's parsed options.

    Raises :class:`LoadConfigError` naming the command-line flag of a bad value.
    """
    values: dict[str, Any] = {}
    for f in fields(LoadSpec):
        if f.name == "extra":
            continue
        value = getattr(options, _dest(f.name), None)
        if value is None or value == "":
            continue
        kind = _KINDS.get(f.name, str)
        try:  # the web UI's form hands values over as strings
            values[f.name] = kind(value)
        except (TypeError, ValueError):
            raise LoadConfigError(f"{_flag(f.name)}: not a {kind.__name__}: {value!r}") from None
    if "bootstrap" not in values:
        raise LoadConfigError("--kafka-bootstrap: required (or LOADTESTS_BOOTSTRAP), e.g. 127.0.0.1:19000")
    try:
        return LoadSpec(**values)
    except LoadConfigError as exc:
        name = str(exc).split(":", 1)[0]
        if name in values or name in {f.name for f in fields(LoadSpec)}:
            raise LoadConfigError(f"{_flag(name)}{str(exc)[len(name):]}") from None
        raise


def check_bootstrap(bootstrap: str, topic: str | None = None, timeout: float = 5.0,
                    auth: KafkaAuth | None = None) -> dict[int, Any]:
    """Prove Kafka at ``bootstrap`` answers and (if given) ``topic`` exists; return its partitions.

    Connects a TCP socket to every address (each with ``timeout``), then fetches
    metadata with a short-lived producer. Raises :class:`LoadConfigError` naming
    the address or the topic (or the user, when ``auth``'s login is refused).
    Returns ``{partition: None}`` for ``topic`` (or ``{}`` without one).
    """
    addresses = parse_bootstrap(bootstrap)
    reachable = []
    errors = []
    for host, port in addresses:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                reachable.append(f"{host}:{port}")
        except OSError as exc:
            errors.append(f"{host}:{port} ({exc.strerror or exc})")
    if not reachable:
        raise LoadConfigError(f"bootstrap: Kafka unreachable at {', '.join(errors)}")
    if errors:
        logger.warning("bootstrap: some servers unreachable: %s", ", ".join(errors))
    if topic is None:
        return {}
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    timeout_ms = int(timeout * 1000)
    login = auth or KafkaAuth()
    try:
        producer = KafkaProducer(bootstrap_servers=reachable, bootstrap_timeout_ms=timeout_ms,
                                 max_block_ms=timeout_ms, request_timeout_ms=timeout_ms,
                                 allow_auto_create_topics=False, client_id="loadtests-check", **login.client_kwargs())
    except KafkaError as exc:
        if is_auth_failure(exc):
            raise LoadConfigError(f"bootstrap: Kafka at {bootstrap} refused the login ({login.describe()}): "
                                  f"{type(exc).__name__}: {exc}") from None
        raise LoadConfigError(f"bootstrap: no Kafka broker answers at {bootstrap}: {exc}") from None
    try:
        partitions = producer.partitions_for(topic)
    except KafkaError as exc:
        raise LoadConfigError(f"topic: {topic!r} not found on {bootstrap} within {timeout:.0f} s "
                              f"({type(exc).__name__}); create it first") from None
    finally:
        producer.close(timeout=timeout)
    if not partitions:
        raise LoadConfigError(f"topic: {topic!r} has no partitions on {bootstrap}")
    return dict.fromkeys(sorted(partitions))


def default_ledger_dir(base: str | Path) -> Path:
    """``<base>/ledger``: where the runner puts the ledger of a run directory."""
    return Path(base) / "ledger"
