"""Shared pieces for benchmark scripts: real worker subprocesses, fresh databases, queues, statistics.

Everything runs on loopback and is cleaned up: a worker is stopped with its whole process group, a
database is dropped, a queue deleted. Nothing here knows what is being measured.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import celery
from celery import Celery

ROOT = Path(__file__).resolve().parents[1]

POSTGRES_ADMIN_URL = os.environ.get("JQM_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("JQM_BENCH_REDIS", "redis://127.0.0.1:6379")
RABBITMQ_URL = os.environ.get("JQM_BENCH_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")


def _redis_db(purpose: str, default: int) -> int:
    return int(os.environ.get(f"JQM_BENCH_REDIS_{purpose}_DB", default))


# The Redis database numbers the benchmarks use, one per purpose (JQM_BENCH_REDIS_<PURPOSE>_DB overrides
# each, as JQM_TEST_REDIS_<PURPOSE>_DB does for the tests): no benchmark names a database number of its own.
REDIS_BROKER_DB = _redis_db("BROKER", 0)
REDIS_RESULTS_DB = _redis_db("RESULTS", 1)
#: ``benchmarks.jobs``: its broker, its results, and the counter its tasks increment.
REDIS_JOBS_BROKER_DB = _redis_db("JOBS_BROKER", 4)
REDIS_JOBS_RESULTS_DB = _redis_db("JOBS_RESULTS", 5)
REDIS_COUNTER_DB = _redis_db("COUNTER", 6)
#: ``benchmarks.beat_process --memory``: RedBeat's schedule.
REDIS_REDBEAT_DB = _redis_db("REDBEAT", 2)


def redis_url(db: int) -> str:
    """The URL of one of the benchmark Redis databases above."""
    return f"{REDIS_URL}/{db}"


class Steal:
    """The share of the machine's CPU time its hypervisor took (``steal`` in ``/proc/stat``) since this
    was made: on a shared virtual machine, a run with a few percent of it can be 1.5–2× slower than one
    without, whatever was measured. ``None`` where ``/proc/stat`` has no steal column."""

    def __init__(self) -> None:
        self._start = _cpu_times()

    def percent(self) -> float | None:
        end = _cpu_times()
        if self._start is None or end is None:
            return None
        total = sum(end) - sum(self._start)
        return 100.0 * (end[7] - self._start[7]) / total if total > 0 else 0.0

    def text(self) -> str:
        value = self.percent()
        return "steal n/a" if value is None else f"steal {value:.1f} %"


def _cpu_times() -> list[int] | None:
    """The first line of ``/proc/stat`` (all CPUs), in ticks: user … steal (8 fields at least)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    return [int(value) for value in fields[:8]] if len(fields) >= 8 else None


#: Set to a folder to profile every pool process of every worker with cProfile (one .prof file each).
PROFILE_ENV = "JQM_BENCH_PROFILE_DIR"
#: The worker touches this file once it is ready to consume.
READY_ENV = "JQM_BENCH_READY_FILE"
#: The settings of the app a worker started with a command of its own reads (``Worker.command``).
CONF_ENV = "JQM_BENCH_APP_CONF"

#: Where each server listens: the host and port of its URL above (so an override is what is checked).
_SERVERS = {
    service: (parts.hostname or "127.0.0.1", parts.port or default_port)
    for service, parts, default_port in (
        ("postgresql", urlsplit(POSTGRES_ADMIN_URL), 5432),
        ("redis", urlsplit(REDIS_URL), 6379),
        ("rabbitmq", urlsplit(RABBITMQ_URL), 5672),
    )
}


class ServiceMissing(RuntimeError):
    """Raised when a server a benchmark needs is not listening on loopback."""


def require(service: str) -> None:
    """Raise ``ServiceMissing`` unless the server of ``service``'s URL (``JQM_BENCH_*``) is listening."""
    host, port = _SERVERS[service]
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex((host, port)) != 0:
            raise ServiceMissing(f"{service} is not listening on {host}:{port}; start it first")


@contextmanager
def postgres_database(prefix: str = "jqm_bench") -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    require("postgresql")
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_dir(prefix: str = "jqm-bench-") -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield Path(folder)


def unique_queue(prefix: str = "jqm-bench") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def delete_queues(app: Celery, queues: Sequence[str]) -> None:
    """Delete the queues from the broker (messages left in them go too)."""
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in queues:
            with suppress(Exception):
                channel.queue_delete(queue)


@dataclass
class Worker:
    """A real Celery worker in a child process, in its own process group, logging to a file.

    ``factory`` is ``"module:function"``: a function of the conf dict that returns the Celery app, so
    the worker runs exactly the app the benchmark process builds.
    """

    factory: str
    conf: dict[str, Any]
    args: list[str] = field(default_factory=list)
    folder: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    #: Instead of ``python -m benchmarks.worker FACTORY CONF …``: a command of its own (``jqm … worker``),
    #: whose app reads ``conf`` from ``CONF_ENV`` and touches the ready file (``benchmarks.cli_app``).
    command: list[str] | None = None

    def start(self, timeout_s: float = 60.0) -> Worker:
        tag = uuid.uuid4().hex[:6]
        self.log_path = self.folder / f"worker-{tag}.log"
        ready = self.folder / f"worker-{tag}.ready"
        env = {**os.environ, READY_ENV: str(ready)}
        if self.command is not None:
            env[CONF_ENV] = json.dumps(self.conf)
        command = self.command or [
            sys.executable,
            "-m",
            "benchmarks.worker",
            self.factory,
            json.dumps(self.conf),
            "-n",
            f"bench{tag}@%h",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            *self.args,
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"worker did not start:\n{self.log()[-4000:]}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, timeout_s: float = 30.0) -> None:
        """Warm shutdown (pool processes exit cleanly, profiles are written), then SIGKILL if stuck."""
        if self.process is None or self.process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the worker's live processes (main and pool).

        Less sensitive than wall time to other load on the machine; pool processes that have exited
        are no longer counted, so compare readings taken while the same pool is up.
        """
        if self.process is None:
            return 0.0
        return process_group_cpu_seconds(self.process.pid)

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _process_stats() -> Iterator[tuple[int, str, list[str]]]:
    """Each live process's pid, name (``comm``) and the fields of ``/proc/PID/stat`` after the name."""
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = path.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        yield int(path.parent.name), head.split("(", 1)[1], tail.split()


def process_group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in a process group (Linux /proc)."""
    ticks = 0
    for _, _, fields in _process_stats():
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


#: The process names (``comm``) of each server a benchmark may use, for ``servers_cpu_seconds``.
SERVER_PROCESSES = {"postgresql": "postgres", "redis": "redis-server", "rabbitmq": "beam.smp"}


def servers_cpu_seconds(services: Sequence[str]) -> float:
    """User + system CPU seconds the servers of ``services`` (keys of ``SERVER_PROCESSES``) have used.

    A server's live processes count, and so do those it has reaped (its ``cutime``/``cstime``: a
    PostgreSQL backend that has exited moves into its postmaster's), so the difference between two
    readings is what the servers spent in between, whoever they served: run the benchmark alone.
    """
    names = {SERVER_PROCESSES[service] for service in services}
    comms: dict[int, str] = {}
    servers: list[list[str]] = []
    for pid, comm, fields in _process_stats():
        comms[pid] = comm
        if comm in names:
            servers.append(fields)
    ticks = 0
    for fields in servers:
        ticks += int(fields[11]) + int(fields[12])
        if comms.get(int(fields[1])) not in names:
            # The server's first process: what its exited children used is kept here.
            ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Spread:
    """Repeated measurements of one quantity."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def range_text(self, fmt: str = "{:.2f}") -> str:
        return f"{fmt.format(self.low)}–{fmt.format(self.high)}"

    def text(self, fmt: str = "{:.2f}") -> str:
        """The median, then the range in parentheses."""
        return f"{fmt.format(self.median)} ({self.range_text(fmt)})"


def wait_until(predicate: Any, timeout_s: float, poll_s: float, what: str) -> None:
    """Poll ``predicate()`` until it is true; TimeoutError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not finish within {timeout_s:g} s")
        time.sleep(poll_s)


def run_per_backend(title: str, settings: str, backends: Sequence[str], run_backend: Any) -> int:
    """Print a heading, then ``run_backend(name)``'s report for each backend; 1 if a backend is missing."""
    print(
        f"jqm-celery {title}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}, "
        f"Celery {celery.__version__}; {settings}",
        flush=True,
    )
    status = 0
    for name in backends:
        print(flush=True)
        try:
            print(run_backend(name), flush=True)
        except ServiceMissing as exc:
            print(f"backend {name}: skipped: {exc}", flush=True)
            status = 1
    return status
