"""Keep a set of worker processes up: restart one that exits unexpectedly, with a bounded backoff.

``jqm worker`` runs one Celery worker per queue as child processes and supervises them here. A child that
exits while nobody asked it to stop (a crash, a kill, an unrecoverable broker error) is logged with its
exit code or signal and started again after a delay that doubles with each consecutive early exit, from
``RestartPolicy.first_delay`` up to ``RestartPolicy.max_delay``; a child that stayed up for
``RestartPolicy.healthy_after`` counts as healthy again, and its next exit waits the first delay.

SIGTERM and SIGINT are forwarded to every child (a Celery worker's warm shutdown: it finishes its running
tasks), nothing is restarted from then on, and the supervisor exits once all children have exited.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType

from jqm_celery.errors import ConfigError

log = logging.getLogger("jqm_celery.supervise")

_POLL_S = 0.2
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class RestartPolicy:
    """How soon an exited worker is started again."""

    first_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(seconds=60)
    #: A worker up for this long is healthy again: its next exit waits ``first_delay``.
    healthy_after: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.first_delay <= self.max_delay:
            raise ConfigError(
                f"RestartPolicy: first_delay must be > 0 and <= max_delay, got {self.first_delay} and "
                f"{self.max_delay}; for example RestartPolicy(first_delay=timedelta(seconds=1))"
            )

    def delay(self, early_exits: int) -> timedelta:
        """The wait before the restart that follows ``early_exits`` consecutive early exits (>= 1)."""
        doubled: timedelta = self.first_delay * 2 ** min(max(early_exits - 1, 0), 32)
        return min(doubled, self.max_delay)


def describe_exit(returncode: int) -> str:
    """'exited with code 1' or 'was killed by signal SIGKILL' (Popen's negative return code)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"was killed by signal {name}"
    return f"exited with code {returncode}"


@dataclass
class Child:
    """One supervised command and its current process."""

    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    early_exits: int = 0
    restart_at: float | None = None
    restarts: int = 0
    running: bool = False


class Supervisor:
    """Start the commands, restart the ones that exit, stop them all on SIGTERM/SIGINT."""

    def __init__(
        self,
        commands: dict[str, Sequence[str]],
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self.children = [Child(name, list(command)) for name, command in commands.items()]
        self._clock = clock
        self._stop_signal: int | None = None

    def run(self) -> int:
        """Supervise until stopped; return the highest exit code of the children's last processes."""
        previous = {
            signum: signal.signal(signum, self._on_signal) for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for child in self.children:
                self._start(child)
            while True:
                self.tick()
                if self._all_stopped():
                    break
                time.sleep(_POLL_S)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return max((_code(child) for child in self.children), default=0)

    def tick(self) -> None:
        """One look at every child: note exits, start the ones whose delay is over."""
        now = self._clock()
        for child in self.children:
            process = child.process
            if process is not None and child.running and process.poll() is not None:
                child.running = False
                self._exited(child, now)
            if self._stop_signal is None and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                log.warning("worker %s: restart %d", child.name, child.restarts)
                self._start(child)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Forward ``signum`` to every running child and restart none from now on."""
        self._stop_signal = signum
        for child in self.children:
            child.restart_at = None
            if child.process is not None and child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signum)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping the workers", signal.Signals(signum).name)
        self.stop(signum)

    def _start(self, child: Child) -> None:
        # Each child leads its own process group, so a terminal's Ctrl-C reaches it once (forwarded
        # here), not twice (a second SIGINT is a Celery worker's cold shutdown); on Linux it also gets
        # SIGTERM if this supervisor dies, so no worker outlives it unsupervised.
        child.process = subprocess.Popen(child.command, process_group=0, preexec_fn=_die_with_parent)
        child.started_at = self._clock()
        child.running = True
        child.restart_at = None
        log.info("worker %s: started (pid %d)", child.name, child.process.pid)

    def _exited(self, child: Child, now: float) -> None:
        assert child.process is not None
        code = child.process.returncode
        # What the exited worker left behind (pool processes still running a task) goes with it: its
        # messages are redelivered to the restarted worker or another one.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        if self._stop_signal is not None:
            log.info("worker %s: stopped (%s)", child.name, describe_exit(code))
            return
        healthy = now - child.started_at >= self.policy.healthy_after.total_seconds()
        child.early_exits = 1 if healthy else child.early_exits + 1
        delay = self.policy.delay(child.early_exits)
        child.restart_at = now + delay.total_seconds()
        log.error(
            "worker %s (pid %d) %s after %.0f s; restarting in %g s",
            child.name,
            child.process.pid,
            describe_exit(code),
            now - child.started_at,
            delay.total_seconds(),
        )

    def _all_stopped(self) -> bool:
        return self._stop_signal is not None and all(
            child.process is None or child.process.poll() is not None for child in self.children
        )


def _code(child: Child) -> int:
    if child.process is None or child.process.returncode is None:
        return 0
    code = child.process.returncode
    return 128 - code if code < 0 else code


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
