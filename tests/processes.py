"""Long-running commands as the tests start them: a process group with its output in a log file, waited on
for a line of that log (never a fixed sleep), and stopped with everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path


class Process:
    """One command in its own process group, its stdout and stderr in ``log_path``."""

    def __init__(
        self, command: Sequence[str | Path], log_path: Path, *, cwd: Path, env: dict[str, str] | None = None
    ) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(part) for part in command],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, text: str, timeout: float = 60.0) -> Process:
        """Return once ``text`` is in the log; fail with the log's end if the process exits or time is up."""
        wait_until(lambda: text in self.log(), timeout, f"{text!r} never appeared", self)
        return self

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash would."""
        self._signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM the whole group; SIGKILL what is left after 20 s."""
        if self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    def _signal(self, signum: int) -> None:
        with suppress(ProcessLookupError):  # the group has exited already
            os.killpg(self.process.pid, signum)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(
    check: Callable[[], object], timeout: float, failure: str, process: Process | None = None
) -> object:
    """Poll ``check`` every 0.1 s until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if process is not None and process.process.poll() is not None:
            raise AssertionError(f"{failure}: the process exited\n{process.log()[-4000:]}")
        if time.monotonic() > deadline:
            tail = process.log()[-4000:] if process is not None else ""
            raise AssertionError(f"{failure} within {timeout:g} s\n{tail}")
        time.sleep(0.1)
