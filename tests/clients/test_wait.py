"""clients.wait.wait_until on a fake clock: it returns the first truthy value, retries only what it is told to,
checks once more at the deadline and never sleeps past it, and says what it waited for."""

from collections.abc import Iterator

import pytest

from clients import wait
from clients.wait import WaitTimeout, wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(wait.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(wait.time, "sleep", fake.sleep)
    yield fake


def test_returns_the_first_truthy_value(clock: Clock) -> None:
    answers = iter([None, 0, "", "RUNNING"])
    assert wait_until(lambda: next(answers), 10, 0.5, "never") == "RUNNING"
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_checks_at_the_deadline_and_does_not_sleep_past_it(clock: Clock) -> None:
    calls: list[float] = []

    def never() -> bool:
        calls.append(round(clock.now - 1000.0, 6))
        return False

    with pytest.raises(WaitTimeout, match=r"^still down$"):
        wait_until(never, 1.0, 0.4, "still down")
    assert calls == [0.0, 0.4, 0.8, 1.0]
    assert clock.sleeps == [0.4, 0.4, 0.2]


def test_describe_is_called_once_at_the_timeout_and_the_error_class_is_the_callers(clock: Clock) -> None:
    seen = {"state": "STARTING", "asked": 0}

    def describe() -> str:
        seen["asked"] += 1
        return f"still {seen['state']}"

    def poll() -> bool:
        seen["state"] = "BACKOFF"
        return False

    with pytest.raises(LookupError, match=r"^still BACKOFF$"):
        wait_until(poll, 2, 1, describe, error=LookupError)
    assert seen["asked"] == 1


def test_listed_errors_mean_not_yet_and_the_last_one_is_reported(clock: Clock) -> None:
    errors = iter([ConnectionRefusedError("refused"), TimeoutError("slow")])

    def connect() -> bool:
        raise next(errors, ConnectionResetError("reset"))

    with pytest.raises(WaitTimeout, match=r"^port closed \(last error: ConnectionResetError: reset\)$") as err:
        wait_until(connect, 1, 0.5, "port closed", retry_on=(OSError,))
    assert isinstance(err.value.__cause__, ConnectionResetError)


def test_any_other_error_propagates_at_once(clock: Clock) -> None:
    def broken() -> bool:
        raise ValueError("bad answer")

    with pytest.raises(ValueError, match="bad answer"):
        wait_until(broken, 10, 1, "never", retry_on=(OSError,))
    assert clock.sleeps == []


def test_a_zero_timeout_still_checks_once(clock: Clock) -> None:
    assert wait_until(lambda: 42, 0, 1, "never") == 42
    with pytest.raises(WaitTimeout):
        wait_until(lambda: None, 0, 1, "no")
