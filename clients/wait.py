"""Poll until something holds, within a deadline: the one wait loop of the suite.

Every "start it, then wait until it answers" in the stack and the fault library (a program
RUNNING, a port accepting, a pod Ready, a Patroni leader elected) is :func:`wait_until`::

    pid = wait_until(supervisord_pid, 15, 0.1, f"supervisord did not answer on {socket} within 15 s")

The condition is called at once, then every ``interval_s`` seconds, and once more at the
deadline, so a wait never gives up before ``timeout_s`` has passed and never sleeps past it.
"""

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["WaitTimeout", "wait_until"]

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A condition did not hold within its deadline; the message says what was awaited."""


def wait_until(condition: Callable[[], T | None], timeout_s: float, interval_s: float,
               describe: str | Callable[[], str], *, retry_on: tuple[type[Exception], ...] = (),
               error: Callable[[str], Exception] = WaitTimeout) -> T:
    """Call ``condition`` until it returns a truthy value, and return that value.

    Args:
        condition: what to poll; a falsy result (``None``, ``False``, ``0``, empty) means "not yet".
        timeout_s: how long to keep trying (monotonic clock).
        interval_s: pause between two calls.
        describe: the error message when time is up: a string, or a function called once at that
            moment (so it can say what was seen last).
        retry_on: exceptions of ``condition`` that mean "not yet" (a refused connection); the last
            one is added to the error message. Any other exception propagates at once.
        error: the exception type raised on timeout (default :class:`WaitTimeout`); a caller's own
            error class (``StackError``, ``ActivityFailed``) keeps its layer's contract.

    Raises ``error(message)`` when ``condition`` has not held after ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
        except retry_on as exc:
            last_error = exc
        else:
            if value:
                return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            message = describe if isinstance(describe, str) else describe()
            if last_error is not None:
                message += f" (last error: {type(last_error).__name__}: {last_error})"
            raise error(message) from last_error
        time.sleep(min(interval_s, remaining))
