"""A Redis server of the test's own, which the test may kill, restart empty, pause and resume.

It listens on loopback on a free port: one of ``JQM_FAULT_PORTS`` (``first-last``, e.g. ``16391-16399``)
when that is set, else one the system hands out. The shared Redis the other tests use is never touched.
It keeps nothing on disk (no RDB, no AOF), as many deployments run it: a restart starts empty.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.processes import wait_until

PORTS_VARIABLE = "JQM_FAULT_PORTS"


def free_port() -> int:
    """A port nothing listens on: from ``JQM_FAULT_PORTS`` if set, else from the system."""
    span = os.environ.get(PORTS_VARIABLE)
    if not span:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    first, _, last = span.partition("-")
    for port in range(int(first), int(last or first) + 1):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS_VARIABLE}={span}")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """``redis-server`` in a child process: ``start``, ``kill`` (SIGKILL), ``pause`` (SIGSTOP), ``resume``."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is not installed; CI must install it (.ci/run)")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        self.starts += 1
        log = (self.workdir / f"redis-{self.port}-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: _listening(self.port), 10.0, f"redis-server on port {self.port} did not start")
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would: everything it held is gone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
