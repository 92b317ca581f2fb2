"""What the job queue costs: stand-alone jobs against plain ``apply_async``, and cleaning a million jobs.

``python -m benchmarks.jobs [--n 10000] [--concurrency 4] [--repeat 3] [--clean 1000000]
[--profile-enqueue FILE]``

On Redis + PostgreSQL, one worker subprocess (prefork) runs one app with a task that counts its calls in
Redis and a JobQueueManager. This process measures, from the first send to the last completion:

(a) N plain ``apply_async`` calls of the task (done: the Redis counter reaches N);
(b) N stand-alone jobs of the same task, each ``jqm.enqueue`` (done: N jobs DONE in the store);
(c) N stand-alone jobs sent with ``jqm.enqueue_many`` in batches of 500 (same).

The three alternate (a b c, then c b a, …) for ``--repeat`` repetitions. It prints the medians of the
enqueue rate and the throughput of each, their ratios to (a) of the same repetition (with the range of
the throughput ratio), and the CPU time spent per job by the worker's processes, by this process (the
sender), and by the PostgreSQL and Redis servers — less sensitive than wall time to other load on the
machine. Then it bulk-inserts
CLEAN finished stand-alone jobs, one log entry each, with SQL, and times ``jqm.clean`` over them with
the peak Python memory it allocated (tracemalloc).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from sqlalchemy import create_engine, func, select, text

from benchmarks.harness import (
    REDIS_COUNTER_DB,
    REDIS_JOBS_BROKER_DB,
    REDIS_JOBS_RESULTS_DB,
    Spread,
    Worker,
    delete_queues,
    postgres_database,
    process_group_cpu_seconds,
    redis_url,
    require,
    scratch_dir,
    unique_queue,
    wait_until,
)
from jqm_celery import JobQueueManager, JobStatus
from jqm_celery.jobqueue import JobSpec
from jqm_celery.store.models import JobRow

COUNT = "bench.count"
BATCH = 500


def make_app(conf: dict[str, Any]) -> Celery:
    app = Celery("bench-jobs")
    app.conf.update(conf)
    counter = redis.Redis.from_url(conf["bench_counter_url"])

    @app.task(name=COUNT, shared=False, ignore_result=True)
    def count(key: str) -> None:
        counter.incr(key)

    JobQueueManager(app)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--repeat", type=int, default=3, help="repetitions (alternating order); medians shown"
    )
    parser.add_argument("--clean", type=int, default=1_000_000, help="0 skips the clean measurement")
    parser.add_argument(
        "--profile-enqueue", type=Path, help="write a cProfile of this process's jqm.enqueue calls here"
    )
    options = parser.parse_args()
    require("redis")
    require("postgresql")
    with postgres_database() as url, scratch_dir() as folder:
        queue = unique_queue("bench-jobs")
        conf: dict[str, Any] = {
            "broker_url": redis_url(REDIS_JOBS_BROKER_DB),
            "result_backend": redis_url(REDIS_JOBS_RESULTS_DB),
            "bench_counter_url": redis_url(REDIS_COUNTER_DB),
            "task_default_queue": queue,
            "jqm_database_url": url,
            "jqm_auto_migrate": True,
        }
        app = make_app(conf)
        jqm = JobQueueManager.of(app)
        jqm.upgrade_db()
        counter = redis.Redis.from_url(conf["bench_counter_url"])
        engine = create_engine(url)
        args = ["--pool=prefork", f"--concurrency={options.concurrency}", "--loglevel=WARNING"]
        try:
            with Worker("benchmarks.jobs:make_app", conf, args, folder) as worker:
                _measure(
                    app, jqm, counter, engine, options.n, options.repeat, worker, options.profile_enqueue
                )
        finally:
            delete_queues(app, [queue])
        if options.clean:
            _clean(jqm, engine, options.clean)


def _done_jobs(engine: Any, first_id: int) -> int:
    with engine.connect() as conn:
        query = (
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.id >= first_id, JobRow.status == JobStatus.DONE)
        )
        return int(conn.execute(query).scalar_one())


def _server_cpu_seconds(command: str) -> float:
    """User + system CPU seconds of the live processes whose command name starts with ``command``."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = stat.read_text().split(" (", 1)[1].rsplit(")", 1)
        except (OSError, IndexError, ValueError):
            continue
        if name.startswith(command):
            parts = fields.split()
            ticks += int(parts[11]) + int(parts[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu(worker: Worker) -> tuple[float, float, float, float]:
    """CPU seconds so far: the worker's processes, this process, PostgreSQL, Redis."""
    assert worker.process is not None
    return (
        process_group_cpu_seconds(worker.process.pid),
        time.process_time(),
        _server_cpu_seconds("postgres"),
        _server_cpu_seconds("redis-server"),
    )


def _measure(
    app: Celery,
    jqm: JobQueueManager,
    counter: Any,
    engine: Any,
    n: int,
    repeat: int,
    worker: Worker,
    profile_to: Path | None,
) -> None:
    task = app.tasks[COUNT]

    def plain(key: str, size: int) -> tuple[float, float]:
        counter.delete(key)
        start = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for _ in range(size):
                task.apply_async(args=[key], producer=producer)
        sent = time.perf_counter()
        wait_until(lambda: int(counter.get(key) or 0) >= size, 600, 0.05, "plain apply_async")
        return sent - start, time.perf_counter() - start

    def jobs(
        key: str, size: int, *, bulk: bool, profile: cProfile.Profile | None = None
    ) -> tuple[float, float]:
        start = time.perf_counter()
        if bulk:
            ids = []
            for offset in range(0, size, BATCH):
                specs = [JobSpec(args=[key])] * min(BATCH, size - offset)
                ids += [job.id for job in jqm.enqueue_many(COUNT, specs)]
        else:
            if profile is not None:
                profile.enable()
            ids = [jqm.enqueue(COUNT, args=[key]).id for _ in range(size)]
            if profile is not None:
                profile.disable()
        sent = time.perf_counter()
        wait_until(lambda: _done_jobs(engine, ids[0]) >= size, 900, 0.2, "stand-alone jobs")
        return sent - start, time.perf_counter() - start

    def measured(work: Any) -> tuple[float, float, tuple[float, ...]]:
        before = _cpu(worker)
        enqueue_s, total_s = work()
        return enqueue_s, total_s, tuple(b - a for a, b in zip(before, _cpu(worker), strict=True))

    profile = cProfile.Profile() if profile_to else None
    plain("warm", 200)
    jobs("warm", 200, bulk=False)
    work = {
        "(a) plain apply_async": lambda: plain("plain", n),
        "(b) jqm.enqueue, one by one": lambda: jobs("one", n, bulk=False, profile=profile),
        f"(c) jqm.enqueue_many, {BATCH} a batch": lambda: jobs("bulk", n, bulk=True),
    }
    labels = list(work)
    runs: dict[str, list[tuple[float, float, tuple[float, ...]]]] = {label: [] for label in labels}
    for rep in range(repeat):
        # a b c, then c b a, …: a drift in the machine's speed hits baseline and jobs alike.
        for label in labels if rep % 2 == 0 else labels[::-1]:
            runs[label].append(measured(work[label]))
    if profile is not None and profile_to is not None:
        profile.dump_stats(str(profile_to))
    base = runs[labels[0]]
    print(
        f"\n{n} jobs of one trivial task, Redis broker + PostgreSQL store, one prefork worker; "
        f"median of {repeat}"
    )
    print(
        f"{'':34} {'enqueue/s':>10} {'done/s':>9} {'enqueue ×':>10} {'throughput ×':>13} | "
        f"CPU ms per job: {'worker':>6} {'sender':>6} {'pg':>5} {'redis':>5} {'total':>6}"
    )
    for label in labels:
        # Each repetition's ratio is taken against the baseline of the same repetition.
        enqueue_x = Spread(tuple(b[0] / r[0] for b, r in zip(base, runs[label], strict=True)))
        total_x = Spread(tuple(b[1] / r[1] for b, r in zip(base, runs[label], strict=True)))
        enqueue_s = statistics.median(r[0] for r in runs[label])
        total_s = statistics.median(r[1] for r in runs[label])
        per_job = [1000 * statistics.median(r[2][i] for r in runs[label]) / n for i in range(4)]
        spread = f" ({total_x.range_text()})" if repeat > 1 else ""
        print(
            f"{label:34} {n / enqueue_s:10.0f} {n / total_s:9.0f} {enqueue_x.median:10.2f} "
            f"{total_x.median:13.2f} | {'':15} {per_job[0]:6.2f} {per_job[1]:6.2f} {per_job[2]:5.2f} "
            f"{per_job[3]:5.2f} {sum(per_job):6.2f}{spread}"
        )
    print("(the PostgreSQL and Redis columns count the whole servers, other load on them included)")


def _clean(jqm: JobQueueManager, engine: Any, size: int) -> None:
    insert_start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jqm_job (task, args, kwargs, position, run_order, queue, retry_policy, "
                "description, status, retry, max_retries, current_delay_s, attempts, worker, created_at, "
                "started_at, finished_at) "
                "SELECT 'bench.count', '[]', '{}', 0, 0, 'celery', '{}', '', 'DONE', 0, 0, 0, 1, 'w@h', "
                "now() - interval '40 days', now() - interval '40 days', now() - interval '40 days' "
                "FROM generate_series(1, :n)"
            ),
            {"n": size},
        )
        conn.execute(
            text(
                "INSERT INTO jqm_log_entry (kind, status, job_id, task, retry, worker, started_at, "
                "finished_at) "
                "SELECT 'ATTEMPT', 'DONE', id, task, 0, worker, started_at, finished_at FROM jqm_job "
                "WHERE run_id IS NULL AND finished_at < now() - interval '30 days'"
            )
        )
        conn.execute(text("ANALYZE jqm_job"))
        conn.execute(text("ANALYZE jqm_log_entry"))
    inserted_s = time.perf_counter() - insert_start
    tracemalloc.start()
    start = time.perf_counter()
    cleaned = jqm.clean(timedelta(days=30))
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\nclean: {size} finished jobs + {size} log entries bulk-inserted in {inserted_s:.1f} s")
    print(
        f"jqm.clean(older_than=30 days): deleted {cleaned.jobs} jobs and {cleaned.log_entries} log entries "
        f"in {elapsed:.1f} s ({cleaned.jobs / elapsed:.0f} jobs/s), peak Python memory {peak / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
