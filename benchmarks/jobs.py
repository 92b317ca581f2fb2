"""What the job queue costs: stand-alone jobs against plain ``apply_async``, and cleaning a million jobs.

``python -m benchmarks.jobs [--n 10000] [--concurrency 4] [--clean 1000000]``

On Redis + PostgreSQL, one worker subprocess (prefork) runs one app with a task that counts its calls in
Redis and a JobQueueManager. This process measures, from the first send to the last completion:

(a) N plain ``apply_async`` calls of the task (done: the Redis counter reaches N);
(b) N stand-alone jobs of the same task, each ``jqm.enqueue`` (done: N jobs DONE in the store);
(c) N stand-alone jobs sent with ``jqm.enqueue_many`` in batches of 500 (same).

It prints the enqueue rate and the throughput of each, and their ratios to (a). Then it bulk-inserts
CLEAN finished stand-alone jobs, one log entry each, with SQL, and times ``jqm.clean`` over them with
the peak Python memory it allocated (tracemalloc).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from datetime import timedelta
from typing import Any

import redis
from celery import Celery
from sqlalchemy import create_engine, func, select, text

from benchmarks.harness import (
    REDIS_URL,
    Worker,
    delete_queues,
    postgres_database,
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
    parser.add_argument("--clean", type=int, default=1_000_000, help="0 skips the clean measurement")
    options = parser.parse_args()
    require("redis")
    require("postgresql")
    with postgres_database() as url, scratch_dir() as folder:
        queue = unique_queue("bench-jobs")
        conf = {
            "broker_url": f"{REDIS_URL}/4",
            "result_backend": f"{REDIS_URL}/5",
            "bench_counter_url": f"{REDIS_URL}/6",
            "task_default_queue": queue,
            "jqm_database_url": url,
            "jqm_auto_migrate": True,
        }
        app = make_app(conf)
        jqm = JobQueueManager.of(app)
        jqm.store.ensure_schema()
        counter = redis.Redis.from_url(conf["bench_counter_url"])
        engine = create_engine(url)
        args = ["--pool=prefork", f"--concurrency={options.concurrency}", "--loglevel=WARNING"]
        try:
            with Worker("benchmarks.jobs:make_app", conf, args, folder):
                _measure(app, jqm, counter, engine, options.n)
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


def _measure(app: Celery, jqm: JobQueueManager, counter: Any, engine: Any, n: int) -> None:
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

    def jobs(key: str, size: int, *, bulk: bool) -> tuple[float, float]:
        start = time.perf_counter()
        if bulk:
            ids = []
            for offset in range(0, size, BATCH):
                specs = [JobSpec(args=[key])] * min(BATCH, size - offset)
                ids += [job.id for job in jqm.enqueue_many(COUNT, specs)]
        else:
            ids = [jqm.enqueue(COUNT, args=[key]).id for _ in range(size)]
        sent = time.perf_counter()
        wait_until(lambda: _done_jobs(engine, ids[0]) >= size, 900, 0.2, "stand-alone jobs")
        return sent - start, time.perf_counter() - start

    plain("warm", 200)
    jobs("warm", 200, bulk=False)
    results = {
        "(a) plain apply_async": plain("plain", n),
        "(b) jqm.enqueue, one by one": jobs("one", n, bulk=False),
        f"(c) jqm.enqueue_many, {BATCH} a batch": jobs("bulk", n, bulk=True),
    }
    base_enqueue, base_total = results["(a) plain apply_async"]
    print(f"\n{n} jobs of one trivial task, Redis broker + PostgreSQL store, one worker, prefork")
    print(f"{'':34} {'enqueue/s':>10} {'done/s':>9} {'enqueue ×':>10} {'throughput ×':>13}")
    for label, (enqueue_s, total_s) in results.items():
        print(
            f"{label:34} {n / enqueue_s:10.0f} {n / total_s:9.0f} {base_enqueue / enqueue_s:10.2f} "
            f"{base_total / total_s:13.2f}"
        )


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
