"""Locust load of SQL-execution events into Kafka, with a ledger of every acknowledged event.

Run it by hand with the web UI::

    locust -f loadtests/locustfile.py --kafka-bootstrap 127.0.0.1:19000 --shape spike --rate 200

or headless (what :mod:`loadtests.locust_process` does for experiments)::

    locust -f loadtests/locustfile.py --headless --kafka-bootstrap 127.0.0.1:19000 \\
        --shape steady --rate 200 --duration 60 --seed 7 --ledger-dir reports/run-1/ledger

Rates are in events per second: the :class:`RateShape` turns the shape's target
rate into ``ceil(rate / user_rate)`` users, each pacing itself at ``rate / users``.
Every produce is reported as a Locust request (type ``kafka``, name = topic),
so statistics, CSV output, the web UI and ``--exit-code-on-error`` work as usual;
a failed produce fails the run unless you pass ``--exit-code-on-error 0``.
Add ``--processes N`` (or ``--master``/``--worker``) for distributed mode: each
worker writes its own ledger files and ``python -m loadtests.ledger DIR --merge``
combines them. The options are listed under "SQL-event load" in ``--help``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gevent
import jwt
import locust.log
import requests
from kafka import KafkaProducer
from kafka.producer.future import RecordMetadata
from locust import LoadTestShape, User, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from clients.kafka import KafkaAuth
from loadtests.config import (
    AUTH_ENV_PREFIX,
    LoadConfigError,
    LoadSpec,
    add_locust_arguments,
    check_bootstrap,
    spec_from_options,
)
from loadtests.formats import EventFormat, resolve_format, sqlaudit_v1
from loadtests.generator import SqlEventGenerator, derive_seed
from loadtests.ledger import LedgerWriter
from loadtests.locust_process import STOP_FILE
from loadtests.pacing import Pacer, RateControl, worker_share
from loadtests.producer import PendingSends, close_producer
from loadtests.shapes import LoadPlan

logger = logging.getLogger(__name__)
# kafka-python logs every connection at INFO; one line per producer and user is noise here.
logging.getLogger("kafka").setLevel(logging.WARNING)

RATE_MESSAGE = "loadtests_rate"
DONE_MESSAGE = "loadtests_done"
REQUEST_TYPE = "kafka"
API_REQUEST_TYPE = "api"
API_SECRET_ENV = "LOADTESTS_API_JWT_SECRET"
API_NEVER_STORED_SHARE = 0.01
"""Share of API reads for an id never produced (404). With the bad tokens' 401s (``api_bad_token_share``,
default 0.02) the healthy load's 4xx ratio stays near 3 %, under High4xxErrorRate's 5 % (docs/alerts.yaml):
at 5 % and 10 % the suite's own load fired that alert in every Spring run, so no run could see it fire."""
API_TIMEOUT = (2.0, 5.0)  # connect, read: a replica that does not answer is tried no longer than a client would
CLOSE_TIMEOUT_S = 15.0
# A send still unresolved this long after the delivery timeout means the producer is wedged
# (kafka-python 3's idempotent producer after a broker outage longer than the delivery timeout):
# it is replaced (loadtests/producer.py, docs/load.md).
WEDGED_AFTER_DELIVERY_TIMEOUT_S = 5.0


@dataclass
class _Process:
    """State of this Locust process for the current test: spec, rate control, ledger."""

    spec: LoadSpec | None = None
    event_format: EventFormat = sqlaudit_v1
    control: RateControl = field(default_factory=RateControl)
    ledger: LedgerWriter | None = None
    worker_index: int = 0
    runs: int = 0
    users: itertools.count[int] = field(default_factory=itertools.count)
    flusher: gevent.Greenlet | None = None
    done_sent: bool = False
    done_workers: set[int] = field(default_factory=set)
    recent_ids: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=1000))
    """Ids of events Kafka acknowledged lately: what the API user asks the service for."""


STATE = _Process()


# ----------------------------------------------------------------- options
@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    add_locust_arguments(parser)


def _fatal(environment: Environment, message: str) -> None:
    """Stop before any load: log one clear line and make Locust exit non-zero.

    Locust treats a failing ``init`` listener as fatal (exit code 1) through this
    flag; setting it ourselves avoids a traceback around a plain usage error.
    """
    logger.error("loadtests: %s", message)
    locust.log.unhandled_greenlet_exception = True


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(DONE_MESSAGE, _on_worker_done)
    elif runner is not None:
        runner.register_message(RATE_MESSAGE, _on_rate)
    if runner is not None and not isinstance(runner, WorkerRunner):
        gevent.spawn(_watch_stop_file, environment)
    options = environment.parsed_options
    if isinstance(runner, WorkerRunner) or options is None:
        return  # workers get the master's options when the test starts
    if not (options.headless or options.autostart):
        return  # the web UI may still change the values; checked at test start
    try:
        spec = spec_from_options(options)
        check_bootstrap(spec.bootstrap, spec.topic, auth=kafka_auth())
        if spec.api_url_list and not os.environ.get(API_SECRET_ENV):
            raise LoadConfigError(f"--api-urls: the read API's token key must be in {API_SECRET_ENV}")
    except LoadConfigError as exc:
        _fatal(environment, str(exc))
        return
    logger.info("loadtests: %s shape, %.1f events/s base, %.0f s, Kafka %s topic %s",
                spec.shape, spec.rate, spec.effective_duration, spec.bootstrap, spec.topic)


def kafka_auth() -> KafkaAuth:
    """The load's Kafka login, from ``LOADTESTS_KAFKA_*`` variables (:func:`loadtests.locust_process.start_load`
    sets them; a secret never goes on Locust's command line, which the run directory keeps)."""
    try:
        return KafkaAuth.from_environment(os.environ, AUTH_ENV_PREFIX)
    except ValueError as exc:
        raise LoadConfigError(str(exc)) from None


# ------------------------------------------------------------ test start/stop
@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    headless = bool(getattr(environment.parsed_options, "headless", False))
    try:
        spec = spec_from_options(environment.parsed_options)
        if not isinstance(runner, WorkerRunner) and not headless:
            check_bootstrap(spec.bootstrap, spec.topic, auth=kafka_auth())  # web UI: values may have changed
    except LoadConfigError as exc:
        logger.error("loadtests: %s; stopping before any load", exc)
        if runner is not None:
            gevent.spawn(runner.quit if headless else runner.stop)
        STATE.spec = None
        return
    STATE.spec = spec
    STATE.event_format = resolve_format(spec.event_format)  # validated with the spec
    STATE.runs += 1
    STATE.done_sent = False
    STATE.done_workers = set()
    if isinstance(runner, MasterRunner):
        return
    workers = 1
    if isinstance(runner, WorkerRunner):
        STATE.worker_index = runner.worker_index
        workers = max(1, int(getattr(environment.parsed_options, "expect_workers", 1) or 1))
    first = spec.plan().users_at(0.0, multiple_of=workers)
    budget = None
    if spec.max_events is not None:
        budget = worker_share(spec.max_events, workers, STATE.worker_index)
    STATE.control = RateControl(per_user_rate=first[1] if first else spec.rate, budget=budget)
    STATE.users = itertools.count()
    if spec.ledger_dir:
        role = f"worker{STATE.worker_index}" if isinstance(runner, WorkerRunner) else "local"
        writer_id = f"{role}-{socket.gethostname()}-{os.getpid()}-r{STATE.runs}"
        STATE.ledger = LedgerWriter(spec.ledger_dir, writer_id, meta={
            "role": role, "worker_index": STATE.worker_index, "workers": workers, "topic": spec.topic,
            "bootstrap": spec.bootstrap, "seed": spec.seed, "shape": spec.shape, "rate": spec.rate,
            "duration": spec.effective_duration, "budget": budget})
    STATE.flusher = gevent.spawn(_housekeeping, environment)


def _housekeeping(environment: Environment) -> None:
    """Write the ledger every 0.2 s, and end the run once the event budget is spent."""
    while True:
        gevent.sleep(0.2)
        if STATE.ledger is not None:
            STATE.ledger.flush_if_due()
        runner = environment.runner
        if STATE.control.exhausted and not STATE.done_sent and runner is not None and runner.user_count == 0:
            STATE.done_sent = True
            logger.info("loadtests: event budget of %s spent", STATE.control.budget)
            if isinstance(runner, WorkerRunner):
                runner.send_message(DONE_MESSAGE, {"worker_index": STATE.worker_index})
            elif isinstance(runner, LocalRunner):
                gevent.spawn(runner.quit)


def _watch_stop_file(environment: Environment) -> None:
    """Quit gracefully once ``STOP`` appears in the working directory (``loadtests.locust_process.stop_load``).

    A file, not a signal: a signal lands as an exception inside whatever greenlet runs (often the
    Kafka client's selector) and can leave the producers unflushed.
    """
    path = Path.cwd() / STOP_FILE
    while not path.exists():
        gevent.sleep(0.2)
    logger.info("loadtests: %s found: stopping users, flushing producers and ledgers", path)
    if environment.runner is not None:
        environment.runner.quit()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    # Users are stopped (producers closed, every callback run) before test_stop fires.
    if STATE.flusher is not None:
        STATE.flusher.kill(block=False)
        STATE.flusher = None
    if STATE.ledger is not None:
        STATE.ledger.close()
        STATE.ledger = None


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    if STATE.ledger is not None:
        STATE.ledger.close()
        STATE.ledger = None


def _on_rate(environment: Environment, msg: Any, **_kwargs: Any) -> None:
    STATE.control.per_user_rate = float(msg.data["per_user_rate"])


def _on_worker_done(environment: Environment, msg: Any, **_kwargs: Any) -> None:
    STATE.done_workers.add(int(msg.data["worker_index"]))
    expected = int(getattr(environment.parsed_options, "expect_workers", 1) or 1)
    logger.info("loadtests: worker %s spent its budget (%d/%d)", msg.data["worker_index"],
                len(STATE.done_workers), expected)
    if len(STATE.done_workers) >= expected and environment.runner is not None:
        gevent.spawn(environment.runner.quit)


# --------------------------------------------------------------------- users
class KafkaProducerUser(User):
    """Abstract Locust user owning one kafka-python producer (acks=all, idempotent).

    Subclasses call :meth:`produce`; it sends asynchronously and reports the
    outcome to Locust from the future's callback or errback, timed from the
    ``send`` call with ``time.perf_counter()``. ``producer_config`` overrides the
    defaults; the producer is created in ``on_start`` and closed (flushing what
    is in flight, then failing what could not be flushed) in ``on_stop``.

    A producer whose oldest unresolved send is older than its delivery timeout plus
    ``WEDGED_AFTER_DELIVERY_TIMEOUT_S`` is wedged (kafka-python 3 after a broker outage longer
    than the delivery timeout, docs/load.md): :meth:`produce` force-closes it, which fails its
    unresolved sends (errbacks: Locust failures, ledger ``failed``), and carries on with a new one.
    """

    abstract = True
    producer_config: ClassVar[dict[str, Any]] = {}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.producer: KafkaProducer | None = None
        self.pending = PendingSends()  # unresolved sends of the current producer
        self.wedged_after_s = 30.0 + WEDGED_AFTER_DELIVERY_TIMEOUT_S
        self.producers_replaced = 0

    def make_producer_config(self) -> dict[str, Any]:
        """The producer configuration: safe defaults for loss accounting, then ``producer_config``."""
        spec = STATE.spec
        config: dict[str, Any] = {
            "bootstrap_servers": spec.bootstrap.split(",") if spec else self.host,
            "client_id": f"loadtests-{os.getpid()}",
            "acks": "all",  # counted as delivered only once every in-sync replica has it
            "enable_idempotence": True,  # retries cannot duplicate or reorder
            "retries": 2**31 - 1,  # bounded by delivery_timeout_ms, as in the Java client
            "max_in_flight_requests_per_connection": 5,  # the most idempotence allows
            "delivery_timeout_ms": spec.delivery_timeout_ms if spec else 30000,
            "request_timeout_ms": 10000,
            "linger_ms": spec.linger_ms if spec else 5,
            "batch_size": spec.batch_size if spec else 16384,
            "max_block_ms": 10000,  # send() blocks at most this long on a full buffer or no metadata
            # A broker stopped by a fault comes back within seconds: reconnect within 1 s of its return,
            # not after kafka-python's default backoff of up to 30 s. (This was not what stopped the load
            # after a 30 s outage: the idempotent producer wedged itself, see _replace_wedged_producer.)
            "reconnect_backoff_max_ms": 1000,
            "allow_auto_create_topics": False,
            **kafka_auth().client_kwargs(),  # SASL/TLS from LOADTESTS_KAFKA_* (never the command line)
        }
        config.update(self.producer_config)
        return config

    def on_start(self) -> None:
        self.producer = self._new_producer()

    def on_stop(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None and not close_producer(producer, CLOSE_TIMEOUT_S):
            logger.warning("loadtests: producer did not flush within %.0f s; its unresolved sends were failed",
                           CLOSE_TIMEOUT_S)

    def _new_producer(self, api_version: Any = None) -> KafkaProducer:
        config = self.make_producer_config()
        if api_version is not None:
            # Known from the previous producer: the constructor then does not bootstrap, which would
            # block this user for up to 30 s and raise if the broker is still down.
            config.setdefault("api_version", api_version)
        self.pending = PendingSends()
        self.wedged_after_s = config["delivery_timeout_ms"] / 1000.0 + WEDGED_AFTER_DELIVERY_TIMEOUT_S
        return KafkaProducer(**config)

    def _replace_wedged_producer(self, oldest_s: float) -> None:
        """Fail every unresolved send of the current producer and carry on with a new one.

        Why a producer wedges: kafka-python 3.0's idempotent producer, when a batch it had already
        sent expires (an outage of the broker longer than ``delivery_timeout_ms``), resets its
        producer id but leaves its transaction state at READY, so it never asks for a new id and
        its sender waits for one forever: no acknowledgement, no failure, no expiry, ever.
        """
        old = self.producer
        if old is None:
            return
        self.producer = None
        self.producers_replaced += 1
        logger.warning("loadtests: producer wedged: %d sends unresolved, the oldest for %.0f s (delivery timeout "
                       "+ %.0f s); failing them and starting producer #%d", len(self.pending), oldest_s,
                       WEDGED_AFTER_DELIVERY_TIMEOUT_S, self.producers_replaced + 1)
        close_producer(old, 0.0)  # errbacks: every unresolved send becomes a Locust failure and a ledger failure
        self.producer = self._new_producer(api_version=old.config.get("api_version"))

    def produce(self, topic: str, value: bytes, key: bytes | None = None, name: str | None = None,
                context: dict[str, Any] | None = None) -> None:
        """Send ``value`` asynchronously; the outcome reaches Locust (and :meth:`on_ack` /
        :meth:`on_error`) when the broker answers."""
        if self.producer is None:
            raise StopUser()
        oldest_s = self.pending.oldest_age(time.monotonic())
        if oldest_s > self.wedged_after_s:
            self._replace_wedged_producer(oldest_s)
        start = time.perf_counter()
        name = name or topic
        try:
            future = self.producer.send(topic, value=value, key=key)
        except Exception as exc:  # full buffer past max_block_ms, no metadata, closed producer
            self._report(name, start, len(value), exc, context)
            self.on_error(exc, context)
            return
        future.add_both(self.pending.done, self.pending.add(time.monotonic()))
        future.add_callback(self._acked, name, start, len(value), context)
        future.add_errback(self._failed, name, start, len(value), context)

    def _report(self, name: str, start: float, length: int, exc: BaseException | None,
                context: dict[str, Any] | None) -> None:
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE, name=name, response_time=(time.perf_counter() - start) * 1000.0,
            response_length=length, exception=exc, context=context or {})

    def _acked(self, name: str, start: float, length: int, context: dict[str, Any] | None,
               metadata: RecordMetadata) -> None:
        self._report(name, start, length, None, context)
        self.on_ack(metadata, context)

    def _failed(self, name: str, start: float, length: int, context: dict[str, Any] | None,
                exc: BaseException) -> None:
        self._report(name, start, length, exc, context)
        self.on_error(exc, context)

    def on_ack(self, metadata: RecordMetadata, context: dict[str, Any] | None) -> None:
        """Called once per acknowledged record (from the producer's I/O thread)."""

    def on_error(self, exc: BaseException, context: dict[str, Any] | None) -> None:
        """Called once per failed produce (from the producer's I/O thread, or from ``send``)."""


class SqlEventUser(KafkaProducerUser):
    """Produces contract-v1 SQL events at the shape's per-user rate and records them in the ledger."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.pacer = Pacer(STATE.control)
        self.generator: SqlEventGenerator | None = None

    def wait_time(self) -> float:
        return self.pacer.delay()

    def on_start(self) -> None:
        spec = STATE.spec
        if spec is None or STATE.control.exhausted:
            return  # no producer: the first task stops this user
        self.pacer = Pacer(STATE.control)
        seed = derive_seed(spec.seed, STATE.worker_index, next(STATE.users))
        self.generator = SqlEventGenerator(spec.generator_config(seed=seed))
        super().on_start()

    @task
    def produce_event(self) -> None:
        spec = STATE.spec
        if spec is None or self.generator is None or not STATE.control.take():
            raise StopUser()
        event = self.generator.next().event
        key, value = STATE.event_format(event)
        self.produce(spec.topic, value, key=key,
                     context={"event_id": str(event.event_id), "produced_at": event.produced_at,
                              "app": event.app})

    def on_ack(self, metadata: RecordMetadata, context: dict[str, Any] | None) -> None:
        if context is not None:
            STATE.recent_ids.append(context["event_id"])
        if STATE.ledger is not None and context is not None:
            STATE.ledger.ack(context["event_id"], metadata.topic, metadata.partition, metadata.offset,
                             context["produced_at"], app=context["app"])

    def on_error(self, exc: BaseException, context: dict[str, Any] | None) -> None:
        if STATE.ledger is not None and context is not None and STATE.spec is not None:
            STATE.ledger.fail(context["event_id"], STATE.spec.topic, context["produced_at"],
                              f"{type(exc).__name__}: {exc}".splitlines()[0][:300])


class ApiReadUser(User):
    """Reads the service's JWT-protected API beside the producers, as its users would (``--api-urls``).

    One user (``fixed_count``) paced at ``--api-rate`` requests per second. Each request asks for a
    recently acknowledged event (``GET /api/v1/events/{id}``: 200, or 404 while it is not stored yet) or
    the latest violations (``GET /api/v1/violations``); ``--api-bad-token-share`` of them carry a bad token
    (wrong key, expired, malformed, or unsigned ``alg: none``) and must get 401. Reported to Locust as
    request type ``api``: a 5xx, a 401 for a good token, or anything but 401 for a bad one is a failure.

    Like a Kubernetes Service in front of the replicas, a replica that refuses or drops the connection
    (killed, restarting) is skipped for the next one; a request fails only when none answers. The
    server-side view of the same requests (``http.server.requests``) is what the api_availability and
    api_latency_p95 SLOs judge.
    """

    fixed_count = 1

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.session = requests.Session()
        self.urls: list[str] = []
        self.next_url = 0
        self.secret = os.environ.get(API_SECRET_ENV, "")
        self.token = ""
        self.token_made = 0.0
        self.rng = random.Random()

    def wait_time(self) -> float:
        spec = STATE.spec
        return 1.0 / spec.api_rate if spec is not None else 1.0

    def on_start(self) -> None:
        spec = STATE.spec
        self.urls = spec.api_url_list if spec is not None else []
        self.rng = random.Random(derive_seed(spec.seed, STATE.worker_index, 10**6) if spec else 0)

    def on_stop(self) -> None:
        self.session.close()

    def _good_token(self) -> str:
        now = time.time()
        if not self.token or now - self.token_made > 60:
            self.token = jwt.encode({"sub": "loadtests", "iat": int(now), "exp": int(now) + 300}, self.secret,
                                    algorithm="HS256")
            self.token_made = now
        return self.token

    def _bad_token(self) -> tuple[str, str]:
        """A token the service must refuse, and which kind it is."""
        now = int(time.time())
        kind = self.rng.choice(["wrong-key", "expired", "malformed", "unsigned"])
        if kind == "wrong-key":
            return kind, jwt.encode({"sub": "intruder", "exp": now + 300}, "not-the-key-" + "x" * 32,
                                    algorithm="HS256")
        if kind == "expired":  # past Spring Security's 60 s clock skew
            return kind, jwt.encode({"sub": "loadtests", "iat": now - 900, "exp": now - 600}, self.secret,
                                    algorithm="HS256")
        if kind == "malformed":
            return kind, "not.a.jwt"
        return kind, jwt.encode({"sub": "loadtests", "exp": now + 300}, "", algorithm="none")

    @task
    def read(self) -> None:
        if not self.urls or not self.secret:
            raise StopUser()
        draw = self.rng.random()
        if draw < API_NEVER_STORED_SHARE:
            path, name = f"/api/v1/events/{uuid.uuid4()}", "/api/v1/events/{id}"  # never stored: 404
        elif STATE.recent_ids and draw < 0.5:
            path, name = f"/api/v1/events/{self.rng.choice(STATE.recent_ids)}", "/api/v1/events/{id}"
        else:
            path, name = "/api/v1/violations?limit=20", "/api/v1/violations"
        bad = self.rng.random() < STATE.spec.api_bad_token_share if STATE.spec else False
        kind, token = self._bad_token() if bad else ("good", self._good_token())
        start = time.perf_counter()
        status, length, error = self._get(path, token)
        exc: Exception | None = error
        if exc is None:
            if status >= 500:
                exc = RuntimeError(f"HTTP {status} (server error)")
            elif bad and status != 401:
                exc = RuntimeError(f"HTTP {status} for a bad token ({kind}); expected 401")
            elif not bad and status not in (200, 404):
                exc = RuntimeError(f"HTTP {status} for a good token")
        self.environment.events.request.fire(
            request_type=API_REQUEST_TYPE, name=f"{name} ({'bad' if bad else 'good'} token)",
            response_time=(time.perf_counter() - start) * 1000.0, response_length=length, exception=exc,
            context={"status": status, "token": kind})

    def _get(self, path: str, token: str) -> tuple[int, int, Exception | None]:
        """``(status, length, None)`` from the first replica that answers, else ``(0, 0, error)``."""
        error: Exception | None = None
        for _ in range(len(self.urls)):
            url = self.urls[self.next_url % len(self.urls)]
            self.next_url += 1
            try:
                resp = self.session.get(url + path, headers={"Authorization": f"Bearer {token}"},
                                        timeout=API_TIMEOUT)
            except requests.RequestException as exc:  # refused, reset, timed out: the next replica
                error = exc
                continue
            return resp.status_code, len(resp.content), None
        return 0, 0, RuntimeError(f"no replica answered: {type(error).__name__}: {error}")


# --------------------------------------------------------------------- shape
class RateShape(LoadTestShape):
    """The load shape of ``--shape``/``--rate``/``--duration`` in users and a per-user rate.

    Every second: ``users = ceil(rate(t) / user_rate)``, each paced at
    ``rate(t) / users`` (sent to every worker). Stops the test when the duration is over.
    """

    use_common_options = False

    def __init__(self) -> None:
        super().__init__()
        self._plan: LoadPlan | None = None
        self._last_rate: float | None = None
        self._api = False

    def reset_time(self) -> None:
        super().reset_time()
        self._plan = None
        self._last_rate = None

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        if self._plan is None:
            # The first tick comes before test_start: read the options here too.
            options = self.runner.environment.parsed_options if self.runner is not None else None
            try:
                spec = spec_from_options(options)
                self._plan = spec.plan()
                self._api = bool(spec.api_url_list)
            except LoadConfigError as exc:
                logger.error("loadtests: %s; not starting", exc)
                return None
        workers = 1
        if isinstance(self.runner, MasterRunner):
            workers = int(getattr(self.runner.environment.parsed_options, "expect_workers", 1) or 1)
        target = self._plan.users_at(self.get_run_time(), multiple_of=workers)
        if target is None:
            return None
        users, per_user = target
        if per_user != self._last_rate and self.runner is not None:
            self._last_rate = per_user
            self.runner.send_message(RATE_MESSAGE, {"per_user_rate": per_user})
        if self._api:  # one ApiReadUser (fixed_count) beside the producers
            return users + 1, float(max(users, 10)), [SqlEventUser, ApiReadUser]
        return users, float(max(users, 10)), [SqlEventUser]
