"""Beat at scale: jqm's PackageScheduler against django-celery-beat's DatabaseScheduler, on one PostgreSQL.

``python -m benchmarks.beat_scale [--sizes 1000,10000] [--large] [--repeat 20] [--late 1000] [--rounds 3]
[--schedulers jqm,redbeat,django] [--only lateness]``

Both schedulers read the same database: jqm's store tables and django-celery-beat's tables, filled with
SQL (multi-row ``INSERT … SELECT generate_series``): N ACTIVE packages with one entry and one recurrence
each (every day, none due during the run) and, for django-celery-beat, the N ``PeriodicTask`` rows the
bridge would write for them (interval, task ``jqm.run_package``).

1. Tick cost, in this process, for each N: one ``tick()`` with none due and the ticks that fire 100 due
   recurrences — wall time and SQL statements (a SQLAlchemy ``before_cursor_execute`` listener for jqm,
   Django's ``connection.execute_wrapper`` for django-celery-beat; BEGIN/COMMIT are not statements).
   The broker send is stubbed out in this part only: sending is not what is measured. django-celery-beat
   sends one due entry per ``tick()``, so its "100 due" figure is the whole pass, every tick until it asks
   to sleep; it also reads every enabled row when it starts and after any change ("load").
2. Edit → effect, for each N: with the scheduler ticking in a thread as ``celery beat`` does, a package
   (a row, for django-celery-beat, edited as its admin would) is changed to run once, 0.2 s after the edit
   starts; the figure is how late its run is sent after that instant.
3. Real ``celery beat`` processes of PackageScheduler, RedBeat and django-celery-beat (``--schedulers``),
   for each N, ``--rounds`` times in an order that rotates between rounds, a real worker (prefork, 2
   processes) consuming on Redis: the lateness of ``--late`` schedules due in the same second, from the
   due instant to the message in Redis, and each beat's RSS once it has fired. RedBeat gets N entries
   in Redis too. ``benchmarks/beat_lateness.py`` says what each figure is.

``--large`` adds N = 100,000. ``--only lateness`` measures part 3 alone.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import celery
import psycopg
from celery import Celery
from sqlalchemy import event

from beat_schedules import PackageScheduler
from benchmarks.beat_lateness import (
    LABELS,
    NOOP,
    Lateness,
    RedBeatRows,
    late_django,
    late_jqm,
    late_redbeat,
    percentile,
    record_publishes,
    report,
)
from benchmarks.beat_process import configure_django
from benchmarks.harness import (
    REDIS_BROKER_DB,
    REDIS_RESULTS_DB,
    ServiceMissing,
    Worker,
    delete_queues,
    postgres_database,
    redis_url,
    require,
    scratch_dir,
    unique_queue,
    wait_until,
)
from jqm_celery import Entry, JobQueueManager, Package, Recurrence
from jqm_celery.plans import RunPlan
from jqm_celery.tasks import RUN_PACKAGE_TASK

DUE = 100
EDIT_LEAD = timedelta(seconds=0.2)
BULK_PREFIX = "p"


def make_app(conf: dict[str, Any]) -> Celery:
    """The app of this process, of the beat processes and of the worker: one trivial task, and jqm."""
    app = Celery("jqm-beat-bench")
    app.conf.update(conf)
    app.task(name=NOOP, shared=False)(_noop)
    JobQueueManager(app)
    record_publishes(app)
    return app


def _noop() -> None:
    return None


# -- rows -----------------------------------------------------------------------------------------

_PACKAGES = """
INSERT INTO jqm_package (name, status, on_error, catch_up, allow_overlap, description, version,
                         created_at, updated_at)
SELECT %(prefix)s || lpad(i::text, 7, '0'), 'ACTIVE', 'CONTINUE', 'ONCE', false, '', 1, now(), now()
FROM generate_series(%(low)s::int, %(high)s::int) AS i
"""
_ENTRIES = """
INSERT INTO jqm_entry (package_id, position, definition)
SELECT id, 1, %(entry)s::json FROM jqm_package WHERE name BETWEEN %(first)s AND %(last)s
"""
# Every day from earliest_start (jqm's own spec format), spread over a day starting from ``base``.
_RECURRENCES = """
INSERT INTO jqm_recurrence (package_id, position, spec, next_fire_at)
SELECT id, 1,
       json_build_object(
           'kind', 'EVERY', 'tz', 'UTC', 'every_s', 86400.0, 'expires', null,
           'earliest_start', to_char(fire AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')),
       fire
FROM (SELECT id,
             %(base)s::timestamptz + make_interval(secs => substr(name, %(cut)s)::int %% %(spread)s) AS fire
      FROM jqm_package WHERE name BETWEEN %(first)s AND %(last)s) AS due
"""
_PERIODIC_TASKS = """
INSERT INTO django_celery_beat_periodictask (name, task, args, kwargs, enabled, last_run_at, total_run_count,
                                             date_changed, description, interval_id, one_off, headers)
SELECT 'jqm:' || package || ':1', %(task)s, '["' || package || '"]', '{}', true,
       %(base)s::timestamptz + make_interval(secs => i %% %(spread)s) - make_interval(secs => %(every_s)s),
       0, now(), '', %(interval)s, false, '{}'
FROM (SELECT i, %(prefix)s || lpad(i::text, 7, '0') AS package
      FROM generate_series(%(low)s::int, %(high)s::int) AS i) AS rows
"""
_CHANGED = """
INSERT INTO django_celery_beat_periodictasks (ident, last_update) VALUES (1, now())
ON CONFLICT (ident) DO UPDATE SET last_update = now()
"""


class Rows:
    """Bulk inserts and updates with SQL, straight on the database both schedulers read."""

    def __init__(self, url: str) -> None:
        self.dsn = url.replace("postgresql+psycopg://", "postgresql://")
        self.base = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        self.packages = 0
        self.periodic_tasks = 0
        self.interval_id: int | None = None

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def add_packages(self, prefix: str, low: int, high: int, *, due: datetime | None, spread_s: int) -> None:
        """Packages ``prefix0000001``… with one entry and (unless ``due`` is None) one daily recurrence."""
        names = {"first": f"{prefix}{low:07d}", "last": f"{prefix}{high:07d}"}
        self.execute(_PACKAGES, {"prefix": prefix, "low": low, "high": high})
        self.execute(_ENTRIES, {"entry": json.dumps(Entry(NOOP).to_dict()), **names})
        if due is not None:
            params = {"base": due, "cut": len(prefix) + 1, "spread": spread_s, **names}
            self.execute(_RECURRENCES, params)
        self.execute("ANALYZE")

    def add_periodic_tasks(self, prefix: str, low: int, high: int, *, due: datetime, spread_s: int) -> None:
        """The bridge's rows for those packages: every day, next due at ``due`` (+ spread)."""
        if self.interval_id is None:
            [(self.interval_id,)] = self.execute(
                "INSERT INTO django_celery_beat_intervalschedule (every, period) "
                "VALUES (1, 'days') RETURNING id"
            )
        params = {
            "task": RUN_PACKAGE_TASK,
            "base": due,
            "spread": spread_s,
            "every_s": 86400,
            "interval": self.interval_id,
            "prefix": prefix,
            "low": low,
            "high": high,
        }
        self.execute(_PERIODIC_TASKS, params)
        self.execute(_CHANGED)
        self.execute("ANALYZE")

    def grow(self, size: int) -> None:
        if size > self.packages:
            self.add_packages(BULK_PREFIX, self.packages + 1, size, due=self.base, spread_s=86_400)
            self.packages = size
        if size > self.periodic_tasks:
            self.add_periodic_tasks(
                BULK_PREFIX, self.periodic_tasks + 1, size, due=self.base, spread_s=86_400
            )
            self.periodic_tasks = size

    def make_jqm_due(self, count: int) -> None:
        self.execute(
            "UPDATE jqm_recurrence SET next_fire_at = now() - interval '0.5 seconds' "
            "WHERE id IN (SELECT id FROM jqm_recurrence ORDER BY random() LIMIT %(count)s)",
            {"count": count},
        )

    def finish_runs(self) -> None:
        """Runs started with the send stubbed out never finish; end them so no fire is an overlap."""
        self.execute("UPDATE jqm_run SET status = 'SUCCEEDED', finished_at = now() WHERE status = 'RUNNING'")

    def make_django_due(self, count: int) -> None:
        self.execute(
            "UPDATE django_celery_beat_periodictask SET last_run_at = now() - interval '2 days' "
            "WHERE id IN (SELECT id FROM django_celery_beat_periodictask WHERE name LIKE 'jqm:%%' "
            "AND enabled AND interval_id IS NOT NULL ORDER BY random() LIMIT %(count)s)",
            {"count": count},
        )


# -- in-process schedulers ------------------------------------------------------------------------


@dataclass
class Sends:
    """The stubbed broker: which package's run was sent when (wall clock)."""

    at: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def record(self, package: str) -> None:
        self.at.setdefault(package, time.time())
        self.count += 1


class JqmSide:
    """PackageScheduler in this process, with its sends stubbed out and its SQL statements counted."""

    label = "PackageScheduler"

    def __init__(self, app: Celery) -> None:
        self.jqm = JobQueueManager.of(app)
        self.sends = Sends()
        self.statements = 0
        # Beat's own store work is measured: the sends are stubbed and the statements counted inside jqm.
        self.jqm._runtime.dispatch = self._dispatch  # type: ignore[method-assign]
        event.listen(self.jqm._store.engine, "before_cursor_execute", self._count)
        self.scheduler = PackageScheduler(app)

    def _dispatch(self, plan: RunPlan, *, producer: Any = None) -> None:
        self.sends.record(plan.package)

    def _count(self, *args: Any) -> None:
        self.statements += 1

    def tick(self) -> tuple[float, int]:
        self.statements = 0
        started = time.perf_counter()
        self.scheduler.tick()
        return (time.perf_counter() - started) * 1000, self.statements

    def edit(self, name: str, due: datetime) -> None:
        self.jqm.hold(name)
        self.jqm.save(Package(name, entries=[Entry(NOOP)], recurrences=[Recurrence.once(due)]))
        self.jqm.activate(name)

    def loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            stop.wait(self.scheduler.tick())


class DjangoSide:
    """django-celery-beat's DatabaseScheduler in this process, sends stubbed out, statements counted."""

    label = "django-celery-beat"

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.sends = Sends()
        self.statements = 0
        app.tasks[RUN_PACKAGE_TASK].apply_async = self._apply_async
        self.scheduler: Any = None

    def _apply_async(self, args: Sequence[Any] = (), kwargs: Any = None, **options: Any) -> None:
        self.sends.record(str(args[0]))

    def _count(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.statements += 1
        return execute(sql, params, many, context)

    def load(self) -> float:
        """A new scheduler that has read every enabled row and built its heap; ms it took."""
        from django_celery_beat.schedulers import DatabaseScheduler

        started = time.perf_counter()
        scheduler = DatabaseScheduler(app=self.app)
        # What its first tick() does: remember the schedule and compute every entry's next run.
        scheduler.old_schedulers = copy.copy(scheduler.schedule)
        scheduler.populate_heap()
        self.scheduler = scheduler
        return (time.perf_counter() - started) * 1000

    def sync(self) -> None:
        """Write the last run times and run counts it holds in memory, as beat does from time to time.

        Before an edit: a row it fired since its last sync would otherwise get its old run count written
        over the edit at the next sync, and an edited one-off row that has "run before" is disabled.
        """
        if self.scheduler is not None:
            self.scheduler.sync()

    def retire(self) -> None:
        """What a stopping beat does: write the last run times it holds in memory."""
        self.sync()
        self.scheduler = None

    def tick(self) -> tuple[float, int]:
        return self._measure(lambda: [self.scheduler.tick()])

    def fire_due(self) -> tuple[float, int, int]:
        """Every tick until it asks to sleep (it sends one due entry per tick): ms, statements, ticks."""
        waits: list[float] = []

        def ticks() -> list[float]:
            while not waits or waits[-1] <= 0:
                waits.append(self.scheduler.tick())
            return waits

        ms, statements = self._measure(ticks)
        return ms, statements, len(waits)

    def _measure(self, work: Callable[[], list[float]]) -> tuple[float, int]:
        from django.db import connection

        self.statements = 0
        with connection.execute_wrapper(self._count):
            started = time.perf_counter()
            work()
            elapsed = time.perf_counter() - started
        return elapsed * 1000, self.statements

    def edit(self, name: str, due: datetime) -> None:
        from django_celery_beat.models import ClockedSchedule, PeriodicTask

        row = PeriodicTask.objects.get(name=f"jqm:{name}:1")
        row.interval = None
        row.clocked = ClockedSchedule.objects.create(clocked_time=due)
        row.one_off = True
        # As the bridge writes it: django-celery-beat disables a one-off row that has run before.
        row.total_run_count = 0
        row.save()

    def loop(self, stop: threading.Event) -> None:
        from django.db import connection

        try:
            while not stop.is_set():
                stop.wait(self.scheduler.tick())
        finally:
            connection.close()


# -- measurements ---------------------------------------------------------------------------------


@dataclass
class SizeResult:
    size: int
    jqm_idle: list[float] = field(default_factory=list)
    jqm_idle_sql: list[int] = field(default_factory=list)
    jqm_due: list[float] = field(default_factory=list)
    jqm_due_sql: list[int] = field(default_factory=list)
    dj_load: list[float] = field(default_factory=list)
    dj_idle: list[float] = field(default_factory=list)
    dj_idle_sql: list[int] = field(default_factory=list)
    dj_due: list[float] = field(default_factory=list)
    dj_due_sql: list[int] = field(default_factory=list)
    dj_due_ticks: list[int] = field(default_factory=list)
    jqm_edit: list[float] = field(default_factory=list)
    dj_edit: list[float] = field(default_factory=list)


def measure_ticks(size: int, rows: Rows, jqm: JqmSide, dj: DjangoSide, repeat: int, heavy: int) -> SizeResult:
    result = SizeResult(size)
    for _ in range(3):
        jqm.tick()
    for _ in range(repeat):
        ms, statements = jqm.tick()
        result.jqm_idle.append(ms)
        result.jqm_idle_sql.append(statements)
    for _ in range(max(3, repeat // 4)):
        rows.make_jqm_due(DUE)
        before = jqm.sends.count
        ms, statements = jqm.tick()
        assert jqm.sends.count - before == DUE, (
            f"PackageScheduler sent {jqm.sends.count - before} of {DUE} due"
        )
        result.jqm_due.append(ms)
        result.jqm_due_sql.append(statements)
        rows.finish_runs()

    result.dj_load.append(dj.load())
    for _ in range(3):
        dj.tick()
    for _ in range(repeat):
        ms, statements = dj.tick()
        result.dj_idle.append(ms)
        result.dj_idle_sql.append(statements)
    for _ in range(heavy):
        dj.retire()
        rows.make_django_due(DUE)
        result.dj_load.append(dj.load())
        before = dj.sends.count
        ms, statements, ticks = dj.fire_due()
        assert dj.sends.count - before == DUE, (
            f"DatabaseScheduler sent {dj.sends.count - before} of {DUE} due"
        )
        result.dj_due.append(ms)
        result.dj_due_sql.append(statements)
        result.dj_due_ticks.append(ticks)
    return result


def measure_edits(
    side: JqmSide | DjangoSide, names: Iterator[str], repeat: int, timeout_s: float
) -> list[float]:
    """ms between the instant an edit made due (0.2 s after the edit started) and its run being sent."""
    late: list[float] = []
    for _ in range(repeat):
        name = next(names)
        stop = threading.Event()
        thread = threading.Thread(target=side.loop, args=(stop,), daemon=True)
        thread.start()
        try:
            time.sleep(random.uniform(0.3, 1.3))
            side.sends.at.pop(name, None)
            due = datetime.now(UTC) + EDIT_LEAD
            side.edit(name, due)
            wait_until(
                lambda n=name: n in side.sends.at, timeout_s, 0.005, f"{side.label}: the edit of {name}"
            )
            late.append((side.sends.at[name] - due.timestamp()) * 1000)
        finally:
            stop.set()
            thread.join(timeout_s)
    return late


# -- report ---------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def report_ticks(results: list[SizeResult], repeat: int, heavy: dict[int, int]) -> str:
    lines = [
        "1. Tick cost (in-process; the broker send is stubbed out here: sending is not measured).",
        f"   none due: median of {repeat} ticks; 100 due: median of the repetitions shown; ms, and SQL",
        "   statements per tick (django-celery-beat: per pass — it sends one due entry per tick()).",
        "",
        f"   {'N':>7} {'due':>4} | {'PackageScheduler':>16} {'stmts':>5} | {'django-celery-beat':>18} "
        f"{'stmts':>5} {'ticks':>5} {'reps':>4} | {'dcb / jqm':>9}",
    ]
    for r in results:
        jqm_idle, dj_idle = _median(r.jqm_idle), _median(r.dj_idle)
        lines.append(
            f"   {r.size:>7,} {0:>4} | {jqm_idle:>13.2f} ms {_median(r.jqm_idle_sql):>5.0f} | "
            f"{dj_idle:>15.2f} ms {_median(r.dj_idle_sql):>5.0f} {1:>5} {repeat:>4} | "
            f"{dj_idle / jqm_idle:>8.1f}×"
        )
        jqm_due, dj_due = _median(r.jqm_due), _median(r.dj_due)
        lines.append(
            f"   {r.size:>7,} {DUE:>4} | {jqm_due:>13.2f} ms {_median(r.jqm_due_sql):>5.0f} | "
            f"{dj_due:>15.2f} ms {_median(r.dj_due_sql):>5.0f} {_median(r.dj_due_ticks):>5.0f} "
            f"{heavy[r.size]:>4} | {dj_due / jqm_due:>8.1f}×"
        )
    lines.append("")
    lines.append(
        "   django-celery-beat reads every enabled row at start and after ANY change (load, median ms):"
    )
    lines.append("   " + ", ".join(f"N={r.size:,}: {_median(r.dj_load):,.0f} ms" for r in results))
    return "\n".join(lines)


def report_edits(results: list[SizeResult]) -> str:
    lines = [
        "2. Edit → effect: how late the run of an edited package is sent after the instant the edit made",
        "   due (0.2 s after the edit started); the scheduler ticks in a thread as celery beat does",
        "   (PackageScheduler max_interval 1 s, django-celery-beat's default 5 s). ms: median (max) of n.",
        "",
        f"   {'N':>7} | {'PackageScheduler':>22} | {'django-celery-beat':>24}",
    ]
    for r in results:
        lines.append(
            f"   {r.size:>7,} | {_median(r.jqm_edit):>9.0f} ({max(r.jqm_edit):>6.0f}) n={len(r.jqm_edit)} | "
            f"{_median(r.dj_edit):>11.0f} ({max(r.dj_edit):>6.0f}) n={len(r.dj_edit)}"
        )
    return "\n".join(lines)


def report_targets(results: list[SizeResult], late: dict[int, list[Lateness]]) -> str:
    lines = ["Targets:"]
    if results:
        first, last = results[0], results[-1]
        lines.append(
            f"   PackageScheduler tick at N={last.size:,} / at N={first.size:,}: none due "
            f"{_median(last.jqm_idle) / _median(first.jqm_idle):.2f}×, 100 due "
            f"{_median(last.jqm_due) / _median(first.jqm_due):.2f}× (target: about 1×)"
        )
        middle = next((r for r in results if r.size == 10_000), None)
        if middle is not None:
            lines.append(
                f"   at N=10,000 PackageScheduler / django-celery-beat: none due "
                f"{_median(middle.jqm_idle) / _median(middle.dj_idle):.3f}, 100 due "
                f"{_median(middle.jqm_due) / _median(middle.dj_due):.3f} (target: ≤ 0.1)"
            )
    for size, entries in late.items():
        p99 = [percentile(e.run_started_ms, 99) for e in entries if e.scheduler == "jqm"]
        if p99:
            lines.append(
                f"   PackageScheduler p99, due instant → message in Redis, N={size:,}: "
                f"{_median(p99):.0f} ms ({min(p99):.0f}–{max(p99):.0f}) (target: ≤ 1000 ms)"
            )
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.beat_scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", default="1000,10000", help="schedules not due, comma-separated")
    parser.add_argument("--large", action="store_true", help="add N = 100,000 to the sizes")
    parser.add_argument("--repeat", type=int, default=20, help="ticks measured with none due")
    parser.add_argument("--late", type=int, default=1000, help="schedules due in the same second")
    parser.add_argument("--rounds", type=int, default=3, help="alternating repetitions of the lateness")
    parser.add_argument(
        "--schedulers",
        default="jqm,redbeat,django",
        help="real beat processes measured for lateness and RSS: jqm, redbeat, django (comma-separated)",
    )
    parser.add_argument(
        "--only", choices=["lateness"], help="lateness: only the real beat processes (part 3)"
    )
    args = parser.parse_args(argv)
    args.sizes = sorted({int(size) for size in args.sizes.split(",")} | ({100_000} if args.large else set()))
    args.schedulers = [name.strip() for name in args.schedulers.split(",") if name.strip()]
    unknown = sorted(set(args.schedulers) - set(LABELS))
    if unknown:
        parser.error(f"unknown scheduler(s) {', '.join(unknown)}; choose among {', '.join(LABELS)}")
    return args


def _names(prefix: str, start: int) -> Iterator[str]:
    index = start
    while True:
        yield f"{prefix}{index:07d}"
        index += 1


def run(args: argparse.Namespace) -> str:
    require("redis")
    with ExitStack() as stack:
        folder = stack.enter_context(scratch_dir())
        url = stack.enter_context(postgres_database("jqm_beat_scale"))
        key_prefix = f"redbeat-{unique_queue()}"
        conf: dict[str, Any] = {
            "broker_url": redis_url(REDIS_BROKER_DB),
            "result_backend": redis_url(REDIS_RESULTS_DB),
            "task_default_queue": unique_queue(),
            "jqm_database_url": url,
            "result_expires": 600,
            "redbeat_redis_url": redis_url(REDIS_BROKER_DB),
            "redbeat_key_prefix": key_prefix,
        }
        configure_django(url, migrate=True)
        app = make_app(conf)
        stack.callback(delete_queues, app, [conf["task_default_queue"]])
        JobQueueManager.of(app).upgrade_db()
        rows = Rows(url)
        redbeat = RedBeatRows(app) if "redbeat" in args.schedulers else None
        if redbeat is not None:
            stack.callback(redbeat.clear)
        started = time.monotonic()
        jqm = dj = None
        if args.only != "lateness":
            jqm, dj = JqmSide(app), DjangoSide(app)
        results: list[SizeResult] = []
        late: dict[int, list[Lateness]] = {}
        heavy = {size: 3 if size <= 10_000 else 1 for size in args.sizes}
        edits = {size: 3 if size <= 10_000 else 2 for size in args.sizes}
        jqm_names, dj_names = _names(BULK_PREFIX, 1), _names(BULK_PREFIX, 501)
        worker = Worker(
            "benchmarks.beat_scale:make_app",
            conf,
            ["--pool=prefork", "--concurrency=2", "--loglevel=WARNING"],
            folder=folder,
        )
        stack.enter_context(worker)
        for index, size in enumerate(args.sizes):
            rows.grow(size)
            if redbeat is not None:
                redbeat.grow(size, rows.base)
            _progress(f"N={size:,}: rows ready", started)
            if jqm is not None and dj is not None:
                result = measure_ticks(size, rows, jqm, dj, args.repeat, heavy[size])
                result.jqm_edit = measure_edits(jqm, jqm_names, edits[size], timeout_s=30)
                rows.finish_runs()
                dj.sync()
                result.dj_edit = measure_edits(dj, dj_names, edits[size], timeout_s=60 + size / 1000)
                results.append(result)
                dj.retire()
                rows.finish_runs()
                _progress(f"N={size:,}: ticks and edits measured", started)
            late[size] = measure_lateness(args, index, rows, redbeat, app, conf, folder, started)
        sections = []
        if results:
            sections += [report_ticks(results, args.repeat, heavy), report_edits(results)]
        sections.append(
            "3. Real celery beat processes, a real worker consuming (prefork, 2 processes).\n\n"
            + "\n\n".join(report(size, args.late, entries) for size, entries in late.items())
        )
        sections.append(report_targets(results, late))
        return "\n\n".join(sections) + f"\n\n(measured in {time.monotonic() - started:.0f} s)"


def measure_lateness(
    args: argparse.Namespace,
    index: int,
    rows: Rows,
    redbeat: RedBeatRows | None,
    app: Celery,
    conf: dict[str, Any],
    folder: Path,
    started: float,
) -> list[Lateness]:
    """``args.rounds`` repetitions, each of every scheduler in turn, the order rotating between them."""
    queue = conf["task_default_queue"]

    def queue_empty() -> bool:
        with app.connection_for_write() as conn:
            return int(conn.default_channel.client.llen(queue)) == 0

    late: list[Lateness] = []
    for round_ in range(args.rounds):
        shift = round_ % len(args.schedulers)
        for scheduler in args.schedulers[shift:] + args.schedulers[:shift]:
            prefix = f"{scheduler[0]}{index}{round_}x"
            rows.finish_runs()
            if scheduler == "jqm":
                late.append(late_jqm(rows, conf, folder, args.late, prefix))
            elif scheduler == "django":
                late.append(late_django(rows, conf, folder, args.late, prefix))
            elif redbeat is not None:
                late.append(late_redbeat(redbeat, conf, folder, args.late, prefix, queue_empty))
            _progress(
                f"N={args.sizes[index]:,}: round {round_ + 1}, {LABELS[scheduler]}: p99 "
                f"{percentile(late[-1].run_started_ms, 99):.0f} ms",
                started,
            )
    return late


def _progress(what: str, started: float) -> None:
    print(f"   {what} after {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(
        f"jqm-celery beat benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"Python {platform.python_version()}, "
        f"Celery {celery.__version__}, {os.cpu_count()} CPUs; PostgreSQL and Redis on loopback; "
        f"sizes {', '.join(f'{size:,}' for size in args.sizes)}; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    try:
        print(run(args), flush=True)
    except ServiceMissing as exc:
        print(f"skipped: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
