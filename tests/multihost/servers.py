"""Redis and PostgreSQL servers of a test's own, on an address and port it picks: never the shared ones.

A test that breaks a server (kills it, restarts it empty, cuts its link) starts its own here, so the
servers other tests use are never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_listening(host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on {host}:{port} exited with code {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout_s:g} s")


class RedisServer:
    """A redis-server without persistence: a restart comes back empty, as many deployments run it."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed")
        self.host = host
        self.port = port or free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    def start(self) -> RedisServer:
        command = ["redis-server", "--bind", self.host, "--port", str(self.port), "--save", ""]
        command += ["--appendonly", "no", "--protected-mode", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_listening(self.host, self.port, 20, self.process)
        return self

    def kill(self) -> None:
        """SIGKILL: the broker is gone at once, with every message it held."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder (initdb as the ``postgres`` user when run as root)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
            raise RuntimeError("PostgreSQL's initdb and pg_ctl are not on PATH")
        self.host = host
        self.port = port or free_port(host)
        self.folder = Path(tempfile.mkdtemp(prefix="jqm-pg-"))
        self.data = self.folder / "data"
        self.started = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def _as_postgres(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(
            self._as_postgres(
                ["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        with (self.data / "pg_hba.conf").open("a") as hba:  # it listens on the given address only
            hba.write("host all all 0.0.0.0/0 trust\n")
        options = f"-c listen_addresses={self.host} -c port={self.port} -c fsync=off"
        options += f" -c unix_socket_directories={self.folder} -c max_connections=200"
        command = ["pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.folder / "log")]
        subprocess.run(self._as_postgres([*command, "-o", options]), check=True, stdout=subprocess.DEVNULL)
        self.started = True
        return self

    def create_database(self, name: str) -> str:
        import psycopg

        admin = f"postgresql://postgres@{self.host}:{self.port}/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                return self.url(name)
            except psycopg.OperationalError:  # still starting up
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.started:
            command = ["pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data)]
            subprocess.run(self._as_postgres(command), check=False, stdout=subprocess.DEVNULL)
            self.started = False
        with suppress(OSError):
            shutil.rmtree(self.folder)
