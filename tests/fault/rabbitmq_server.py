"""A RabbitMQ node of the test's own, which the test may kill and restart empty, pause and resume.

The node is ``jqmfault-<random>@localhost``, with its AMQP listener on loopback on a free port (from
``JQM_FAULT_PORTS`` when set, see ``redis_server.free_port``) and its distribution port 20000 away; its
database, logs, Erlang cookie, configuration and (empty) plugin list live in the test's folder. The shared
RabbitMQ node the other tests use is never touched. It starts in a few seconds (about 8 on a busy
2-core machine).
"""

from __future__ import annotations

import os
import shutil
import signal
import uuid
from contextlib import suppress
from pathlib import Path

import pytest

from tests.fault.redis_server import free_port
from tests.processes import Process

#: Where Debian puts the server's own script; ``/usr/sbin``'s wrapper would switch to the rabbitmq user.
_LIBEXEC = "/usr/lib/rabbitmq/bin"
_READY = "Starting broker... completed"


class RabbitMQServer:
    """``rabbitmq-server`` in a process group of its own: ``start``, ``kill`` (SIGKILL, its database deleted:
    the next ``start`` is empty), ``pause`` (SIGSTOP), ``resume``, ``stop``."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("rabbitmq-server", path=f"{_LIBEXEC}{os.pathsep}{os.environ.get('PATH', '')}")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("rabbitmq-server is not installed; CI must install it (.ci/run)")
            pytest.skip("rabbitmq-server is not installed")
        self.binary = binary
        self.workdir = workdir / f"rabbitmq-{uuid.uuid4().hex[:6]}"
        self.workdir.mkdir()
        self.port = port or free_port()
        self.node = f"jqmfault-{uuid.uuid4().hex[:8]}@localhost"
        self.process: Process | None = None
        self.starts = 0

    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _environment(self) -> dict[str, str]:
        plugins = self.workdir / "enabled_plugins"
        plugins.write_text("[].\n")
        (self.workdir / "rabbitmq.conf").write_text("loopback_users = none\n")
        (self.workdir / "rabbitmq-env.conf").write_text("")
        dist_port = self.port + 20000 if self.port < 45000 else self.port - 20000
        return {
            **os.environ,
            "HOME": str(self.workdir),  # the Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.workdir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_CONFIG_FILE": str(self.workdir / "rabbitmq"),
            "RABBITMQ_CONF_ENV_FILE": str(self.workdir / "rabbitmq-env.conf"),
        }

    def start(self, timeout: float = 120.0) -> RabbitMQServer:
        self.starts += 1
        log = self.workdir / f"rabbitmq-{self.port}-{self.starts}.log"
        self.process = Process([self.binary], log, cwd=self.workdir, env=self._environment())
        self.process.wait_for(_READY, timeout)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would, and its database deleted: every queue and message is gone."""
        assert self.process is not None
        self.process.kill()
        shutil.rmtree(self.workdir / "mnesia", ignore_errors=True)

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.killpg(self.process.process.pid, signum)

    def stop(self) -> None:
        if self.process is None:
            return
        self._signal(signal.SIGCONT)
        self.process.stop()

    def __enter__(self) -> RabbitMQServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
