"""Real ``celery beat`` processes for ``benchmarks.beat_scale``: lateness and memory, three schedulers.

For one number N of schedules not due, each repetition starts, one after the other in an order that
alternates between repetitions, a real beat with jqm's ``PackageScheduler``, with RedBeat's
``RedBeatScheduler`` and with django-celery-beat's ``DatabaseScheduler``; each gets COUNT schedules due in
the same second while one real worker (prefork, 2 processes) consumes on the same machine. The figure is
the time from the due instant to the message in Redis:

- PackageScheduler: ``jqm_fire.sent_at``, the time beat's publish batch holding the run had reached Redis
  (recorded after the batch's round trip, so a little late rather than early);
- RedBeat: the time Celery's ``after_task_publish`` signal fired in the beat process, after the message was
  written to Redis (RedBeat sends each due task at once);
- django-celery-beat: the time its ``jqm.run_package`` ran on the worker and started the run (its tasks go
  through the worker before jqm's run exists; see ``beat_scale``'s docstring).

Each beat's resident memory (VmRSS, and the peak VmHWM) is read from /proc once it has fired.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import ROOT, Spread, wait_until

if TYPE_CHECKING:
    from benchmarks.beat_scale import Rows

NOOP = "bench.noop"
#: Set in a beat process's environment: the file to which it appends the time of each message it publishes.
PUBLISHED_ENV = "JQM_BENCH_PUBLISHED_FILE"
LABELS = {"jqm": "PackageScheduler", "redbeat": "RedBeat", "django": "django-celery-beat"}


def make_plain_app(conf: dict[str, Any]) -> Any:
    """RedBeat's beat process: the same broker and task, without jqm (its RSS is RedBeat's own)."""
    from celery import Celery

    app = Celery("jqm-beat-bench")
    app.conf.update(conf)
    app.task(name=NOOP, shared=False)(_noop)
    record_publishes(app)
    return app


def _noop() -> None:
    return None


def record_publishes(app: Any) -> None:
    """In a beat process with ``PUBLISHED_ENV`` set: append the wall time of every message it publishes."""
    path = os.environ.get(PUBLISHED_ENV)
    if not path:
        return
    from celery.signals import after_task_publish

    out = Path(path).open("a", buffering=1)  # noqa: SIM115 - open for the life of the process

    def published(sender: str | None = None, **_: Any) -> None:
        if sender == NOOP:
            out.write(f"{time.time():.6f}\n")

    after_task_publish.connect(published, weak=False)


# -- one beat process -------------------------------------------------------------------------------


class BeatProcess:
    """``celery beat`` with one of the schedulers, in its own process group; RSS from /proc."""

    def __init__(self, conf: dict[str, Any], scheduler: str, folder: Path) -> None:
        self.log_path = folder / f"beat-{scheduler}-{time.monotonic_ns()}.log"
        self.published = folder / f"published-{scheduler}-{time.monotonic_ns()}.txt"
        self.started = time.monotonic()
        env = {**os.environ, PUBLISHED_ENV: str(self.published)}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.beat_process", json.dumps(conf), scheduler],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_loaded(self, timeout_s: float) -> float:
        """Wait until beat has started and its CPU time stops growing (it has read its schedule); seconds."""
        wait_until(lambda: "beat: Starting" in self.log() or self.process.poll() is not None, 60, 0.1, "beat")
        if self.process.poll() is not None:
            raise RuntimeError(f"beat exited:\n{self.log()[-3000:]}")
        deadline = time.monotonic() + timeout_s
        last, idle_since = self.cpu_s(), time.monotonic()
        while time.monotonic() - idle_since < 1.5:
            if time.monotonic() > deadline:
                raise TimeoutError(f"beat did not settle within {timeout_s:g} s")
            time.sleep(0.25)
            now = self.cpu_s()
            if now - last > 0.05:
                idle_since = time.monotonic()
            last = now
        return idle_since - self.started

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def publish_times(self) -> list[float]:
        if not self.published.exists():
            return []
        return [float(line) for line in self.published.read_text().split()]

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MiB: resident now, and the peak."""
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        )
        return tuple(int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))  # type: ignore[return-value]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(10)


@dataclass
class Lateness:
    """One repetition of one scheduler: ms after the due instant, RSS, how long beat took to load."""

    scheduler: str
    run_started_ms: list[float]
    first_job_ms: list[float]
    rss_mb: tuple[float, float]
    load_s: float
    machine_load: float

    @property
    def label(self) -> str:
        return LABELS[self.scheduler]


# -- jqm and django-celery-beat: runs in the store ---------------------------------------------------

# A run PackageScheduler started is RUNNING from its tick, but counts as started once it was sent to the
# broker (jqm_fire.sent_at); a run django-celery-beat started exists once jqm.run_package ran on the worker.
_LATE_RUNS = """
SELECT extract(epoch FROM greatest(r.started_at, min(f.sent_at))), extract(epoch FROM min(j.started_at))
FROM jqm_run r JOIN jqm_job j ON j.run_id = r.id LEFT JOIN jqm_fire f ON f.run_id = r.id
WHERE r.package_name LIKE %(pattern)s
GROUP BY r.id
"""


def _late_runs(rows: Rows, prefix: str) -> list[tuple[float | None, float | None]]:
    found = rows.execute(_LATE_RUNS, {"pattern": f"{prefix}%"})
    return [(None if a is None else float(a), None if b is None else float(b)) for a, b in found]


def _wait_late(rows: Rows, prefix: str, count: int, timeout_s: float) -> list[tuple[float, float]]:
    def started() -> bool:
        runs = _late_runs(rows, prefix)
        return len(runs) >= count and all(first is not None for _, first in runs)

    wait_until(started, timeout_s, 0.5, f"{count} runs of '{prefix}…' packages")
    return [(float(run), float(first)) for run, first in _late_runs(rows, prefix)]  # type: ignore[arg-type]


def late_jqm(rows: Rows, conf: dict[str, Any], folder: Path, count: int, prefix: str) -> Lateness:
    beat = BeatProcess(conf, "jqm", folder)
    try:
        load_s = beat.wait_loaded(timeout_s=120)
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
        rows.add_packages(prefix, 1, count, due=due, spread_s=1)
        found = _wait_late(rows, prefix, count, timeout_s=300)
        rss = beat.rss_mb()
    finally:
        beat.stop()
    return _lateness("jqm", [run for run, _ in found], [first for _, first in found], due, rss, load_s)


def late_django(rows: Rows, conf: dict[str, Any], folder: Path, count: int, prefix: str) -> Lateness:
    rows.add_packages(prefix, 1, count, due=None, spread_s=1)
    beat = BeatProcess(conf, "django", folder)
    try:
        load_s = beat.wait_loaded(timeout_s=600)
        # It sees the new rows at its next check (at most 5 s) and then reads everything again; the due
        # instant leaves it time for that, so what is measured is how it fires 1,000 at once.
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=math.ceil(8 + 1.5 * load_s))
        rows.add_periodic_tasks(prefix, 1, count, due=due, spread_s=1)
        found = _wait_late(rows, prefix, count, timeout_s=300 + 3 * load_s)
        rss = beat.rss_mb()
    finally:
        beat.stop()
    # Fired rows are not fired again by the next repetition's beat, whatever this one synced.
    rows.execute(
        "UPDATE django_celery_beat_periodictask SET enabled = false WHERE name LIKE %(pattern)s",
        {"pattern": f"jqm:{prefix}%"},
    )
    return _lateness("django", [run for run, _ in found], [first for _, first in found], due, rss, load_s)


# -- RedBeat: entries in Redis -----------------------------------------------------------------------


class RedBeatRows:
    """RedBeat's entries, written as its ``RedBeatSchedulerEntry.save()`` does, in pipelines of 1,000."""

    def __init__(self, app: Any) -> None:
        from redbeat.schedulers import get_redis

        self.app = app
        self.client = get_redis(app)
        self.entries = 0

    def add(self, prefix: str, low: int, high: int, *, due: datetime, spread_s: int) -> None:
        """Entries ``prefix0000001``… of task bench.noop, every day, next due at ``due`` (+ spread)."""
        from celery.schedules import schedule
        from redbeat.decoder import RedBeatJSONEncoder
        from redbeat.schedulers import RedBeatSchedulerEntry

        every = schedule(timedelta(days=1), app=self.app)
        key_of = self.app.redbeat_conf.key_prefix
        schedule_key = self.app.redbeat_conf.schedule_key
        for start in range(low, high + 1, 1000):
            with self.client.pipeline(transaction=False) as pipe:
                for index in range(start, min(high, start + 999) + 1):
                    name = f"{prefix}{index:07d}"
                    due_at = due + timedelta(seconds=index % spread_s)
                    entry = RedBeatSchedulerEntry(name, NOOP, every, app=self.app)
                    definition = {
                        "name": name,
                        "task": NOOP,
                        "args": [],
                        "kwargs": {},
                        "options": {},
                        "schedule": every,
                        "enabled": True,
                    }
                    meta = {"last_run_at": due_at - timedelta(days=1)}
                    pipe.hset(entry.key, "definition", json.dumps(definition, cls=RedBeatJSONEncoder))
                    pipe.hset(entry.key, "meta", json.dumps(meta, cls=RedBeatJSONEncoder))
                    pipe.zadd(schedule_key, {key_of + name: due_at.timestamp()})
                pipe.execute()

    def clear(self) -> None:
        """Delete every entry and key under this run's key prefix."""
        prefix = self.app.redbeat_conf.key_prefix
        keys = list(self.client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            self.client.delete(*keys[start : start + 1000])

    def grow(self, size: int, base: datetime) -> None:
        if size > self.entries:
            self.add("p", self.entries + 1, size, due=base, spread_s=86_400)
            self.entries = size


def late_redbeat(
    redbeat: RedBeatRows, conf: dict[str, Any], folder: Path, count: int, prefix: str, queue_empty: Any
) -> Lateness:
    # RedBeat sleeps until its next due entry, at most beat's max interval: 1 s here, as PackageScheduler's.
    beat = BeatProcess({**conf, "beat_max_loop_interval": 1}, "redbeat", folder)
    try:
        load_s = beat.wait_loaded(timeout_s=120)
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
        redbeat.add(prefix, 1, count, due=due, spread_s=1)
        wait_until(lambda: len(beat.publish_times()) >= count, 300, 0.5, f"{count} RedBeat sends")
        rss = beat.rss_mb()
        sent = beat.publish_times()
    finally:
        beat.stop()
    # The worker drains them before the next measurement (not timed: RedBeat has no run in the store).
    wait_until(queue_empty, 300, 0.5, "the worker draining RedBeat's tasks")
    return _lateness("redbeat", sent, [], due, rss, load_s)


def _lateness(
    scheduler: str,
    sent: Sequence[float],
    first_jobs: Sequence[float],
    due: datetime,
    rss: tuple[float, float],
    load_s: float,
) -> Lateness:
    at = due.timestamp()
    return Lateness(
        scheduler,
        [(value - at) * 1000 for value in sent],
        [(value - at) * 1000 for value in first_jobs],
        rss,
        load_s,
        os.getloadavg()[0],
    )


# -- report -----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: int) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def _spread(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    if not values:
        return "-"
    return Spread(tuple(values)).text(fmt)


def report(size: int, count: int, late: Sequence[Lateness]) -> str:
    """A table for one N: each scheduler's p50 and p99 (median and range over the repetitions), the
    ratios of the peers' p99 to jqm's in each repetition, RSS and the machine's load."""
    lines = [
        f"   N = {size:,} schedules not due, {count:,} due in the same second; ms from the due instant",
        "   to the message in Redis (django-celery-beat: to its jqm.run_package on the worker);",
        f"   median (min–max) over {sum(1 for entry in late if entry.scheduler == 'jqm')} alternating "
        "repetitions; RSS in MiB once fired (peak).",
        "",
        f"   {'scheduler':>18} | {'p50':>24} | {'p99':>24} | {'RSS (peak) MiB':>18} | {'load 1 min':>14}",
    ]
    by: dict[str, list[Lateness]] = {key: [e for e in late if e.scheduler == key] for key in LABELS}
    for key, entries in by.items():
        if not entries:
            continue
        p50 = [percentile(e.run_started_ms, 50) for e in entries]
        p99 = [percentile(e.run_started_ms, 99) for e in entries]
        rss = statistics.median(e.rss_mb[0] for e in entries)
        peak = statistics.median(e.rss_mb[1] for e in entries)
        loads = [e.machine_load for e in entries]
        lines.append(
            f"   {LABELS[key]:>18} | {_spread(p50):>24} | {_spread(p99):>24} | "
            f"{f'{rss:.0f} ({peak:.0f})':>18} | {_spread(loads, '{:.1f}'):>14}"
        )
    jqm = [percentile(e.run_started_ms, 99) for e in by["jqm"]]
    for key in ("redbeat", "django"):
        peer = [percentile(e.run_started_ms, 99) for e in by[key]]
        if jqm and peer:
            ratios = [p / j for p, j in zip(peer, jqm, strict=False)]
            lines.append(
                f"   p99 {LABELS[key]} / PackageScheduler: {_spread(ratios, '{:.2f}')} "
                "(each repetition's pair; > 1: jqm is sooner)"
            )
    if by["jqm"] and by["redbeat"]:
        ratios = [j.rss_mb[0] / r.rss_mb[0] for j, r in zip(by["jqm"], by["redbeat"], strict=False)]
        lines.append(f"   RSS PackageScheduler / RedBeat: {_spread(ratios, '{:.2f}')}")
    first = [percentile(e.first_job_ms, 99) for e in by["jqm"]]
    if first:
        lines.append(f"   PackageScheduler, worker claimed the runs' first jobs: p99 {_spread(first)} ms")
    return "\n".join(lines)
