"""A PostgreSQL server of the test's own, to stop, crash and start again: never the shared one.

``PostgresServer(port)`` runs ``initdb`` into a temporary folder and ``pg_ctl`` on ``port`` (as the
``postgres`` user when the tests run as root, which PostgreSQL refuses to run as). The fault tests use
ports 16400-16409 unless ``JQM_FAULT_POSTGRES_PORTS`` says otherwise (``first-last``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

PORTS_ENV = "JQM_FAULT_POSTGRES_PORTS"
DEFAULT_PORTS = "16400-16409"


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    """A port of the fault tests' range that nothing listens on."""
    first, last = (int(p) for p in os.environ.get(PORTS_ENV, DEFAULT_PORTS).split("-"))
    for port in range(first, last + 1):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {first}-{last}; set {PORTS_ENV}")


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, on ``port``, trusted for local connections."""

    def __init__(self, port: int | None = None) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            if os.environ.get("CI"):
                raise RuntimeError("the fault tests need PostgreSQL's initdb and pg_ctl on PATH")
            pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="jqm-fault-pg-"))
        self.data = self.folder / "data"
        self.log_path = self.folder / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout_s: float = 30.0) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=on"
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w")
        deadline = time.monotonic() + timeout_s
        while not self.accepts_connections():
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on {self.port} did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown; ``immediate``: a crash (no checkpoint, recovery at the next start)."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w")

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.admin_url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def remove(self) -> None:
        """Stop the server if it runs, and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
