"""The restart backoff of ``jqm worker``'s supervisor, and how it names an exit."""

from __future__ import annotations

import signal
import sys
from datetime import timedelta

import pytest

from jqm_celery.errors import ConfigError
from jqm_celery.supervise import RestartPolicy, Supervisor, describe_exit


def test_the_delay_doubles_with_each_early_exit_up_to_the_maximum() -> None:
    policy = RestartPolicy(first_delay=timedelta(seconds=1), max_delay=timedelta(seconds=10))
    assert [policy.delay(n).total_seconds() for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_a_huge_number_of_early_exits_still_waits_the_maximum() -> None:
    assert RestartPolicy().delay(10**6) == timedelta(seconds=60)


def test_a_first_delay_longer_than_the_maximum_is_refused() -> None:
    with pytest.raises(ConfigError, match="first_delay must be > 0 and <= max_delay"):
        RestartPolicy(first_delay=timedelta(seconds=5), max_delay=timedelta(seconds=1))


def test_an_exit_is_named_by_its_code_or_its_signal() -> None:
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-signal.SIGKILL) == "was killed by signal SIGKILL"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _exit_now(supervisor: Supervisor, clock: Clock, after_s: float) -> None:
    """Let the one child run ``after_s`` on the clock, end it, and have the supervisor notice."""
    child = supervisor.children[0]
    assert child.process is not None
    clock.now += after_s
    child.process.kill()
    child.process.wait()
    supervisor.tick()


def test_early_exits_back_off_and_a_healthy_period_resets_the_delay() -> None:
    clock = Clock()
    policy = RestartPolicy(timedelta(seconds=1), timedelta(seconds=60), healthy_after=timedelta(seconds=30))
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    supervisor = Supervisor({"q": sleeper}, policy, clock=clock)
    child = supervisor.children[0]
    supervisor._start(child)
    try:
        delays = []
        for up_s in (1, 1, 1, 40):
            _exit_now(supervisor, clock, up_s)
            assert child.restart_at is not None
            delays.append(child.restart_at - clock.now)
            clock.now = child.restart_at
            supervisor.tick()  # the restart
        assert delays == [1, 2, 4, 1]
        assert child.restarts == 4
    finally:
        supervisor.stop(signal.SIGKILL)
        assert child.process is not None
        child.process.wait()
