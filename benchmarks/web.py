"""Server time of the web UI's heaviest pages on PostgreSQL: the packages page (with its cues) over 10,000
packages and 200,000 jobs, the log-entries page over 1,000,000 log entries (paged, filtered), and the
package card, a run, a log entry, the timeline, the jobs, runs and audit pages and endpoints (paged deep,
filtered) and the queues page.

The data is bulk-inserted with SQL into a fresh database. Requests are made in-process (httpx's ASGI
transport) and timed inside the server, from the first byte of the request to the last of the response.
The baseline, measured side by side, is the same app's cheapest authenticated endpoint (``/api/me``: session
or token check, no package data) — and, for the packages page, the full ``jqm.packages()`` listing a page
would need without the paged list API. Target: p99 under 200 ms for both pages.

    python -m benchmarks.web [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import httpx
import psycopg
from celery import Celery
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks.harness import postgres_database
from jqm_celery import Entry, JobQueueManager, Recurrence
from jqm_celery.web import create_app
from jqm_celery.web.app import settle_heap

PACKAGES = 10_000
LOG_ENTRIES = 1_000_000
#: Jobs over the last 48 hours (5 % failed, 0.2 % running): what the first page's cues count.
JOBS = 200_000
#: Audit entries over the last 100,000 seconds, one package each of a hundred.
AUDIT = 100_000
TARGET_P99_MS = 200.0


class Timed:
    """Wraps an ASGI app and records the server time of each HTTP request, in milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.samples: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.samples.append((time.perf_counter() - start) * 1000)


@dataclass(frozen=True)
class Figure:
    label: str
    p50_ms: float
    p99_ms: float
    rows: int


def fill_packages(url: str, count: int = PACKAGES) -> None:
    """``count`` packages named pkg-00001… (2 entries and a recurrence each, a third ACTIVE, one run each)
    in a few INSERT … SELECT statements."""
    entry = json.dumps(Entry("bench.step", args=[1], run_order=10).to_dict())
    recurrence = json.dumps(Recurrence.cron("0 2 * * *").to_dict())
    _execute(
        url,
        f"""INSERT INTO jqm_package (name, status, on_error, catch_up, allow_overlap, description, version,
                created_at, updated_at)
            SELECT 'pkg-' || lpad(i::text, 5, '0'),
                   (ARRAY['ACTIVE', 'DRAFT', 'ON_HOLD', 'ERROR'])[i % 4 + 1], 'STOP', 'ONCE', false,
                   'benchmark package ' || i, 1, now(), now()
            FROM generate_series(1, {count}) AS i""",
        f"""INSERT INTO jqm_entry (package_id, position, definition)
            SELECT id, p, '{entry}'::json FROM jqm_package, generate_series(0, 1) AS p""",
        f"""INSERT INTO jqm_recurrence (package_id, position, spec, next_fire_at)
            SELECT id, 0, '{recurrence}'::json,
                   CASE WHEN status = 'ACTIVE' THEN date_trunc('day', now()) + interval '26 hours' END
            FROM jqm_package""",
        """INSERT INTO jqm_run (package_name, status, trigger, on_error, stop_package_after, created_at,
                started_at, finished_at)
            SELECT name, 'SUCCEEDED', 'recurrence', 'STOP', false, now(), now(), now() FROM jqm_package""",
        "ANALYZE",
    )


def _fill(url: str) -> None:
    """10,000 packages (see fill_packages) and 1,000,000 log entries spread over them, newest last."""
    fill_packages(url)
    _execute(
        url,
        f"""INSERT INTO jqm_log_entry (kind, status, package_name, run_id, job_id, task, run_order, worker,
                retry, error, started_at, finished_at)
            SELECT 'ATTEMPT',
                   CASE WHEN i % 20 = 0 THEN 'ERROR' WHEN i % 20 = 1 THEN 'FAILED' ELSE 'DONE' END,
                   'pkg-' || lpad((i % {PACKAGES} + 1)::text, 5, '0'), i % {PACKAGES} + 1, i,
                   'bench.step', 10, 'w1@bench', 0, CASE WHEN i % 20 = 0 THEN 'simulated failure' END,
                   now() - ({LOG_ENTRIES} - i) * interval '1 second',
                   now() - ({LOG_ENTRIES} - i) * interval '1 second' + interval '200 milliseconds'
            FROM generate_series(1, {LOG_ENTRIES}) AS i""",
        f"""INSERT INTO jqm_job (run_id, package_name, position, task, args, kwargs, run_order, queue,
                retry_policy, description, status, retry, max_retries, current_delay_s, attempts, worker,
                error, created_at, started_at, finished_at)
            SELECT CASE WHEN i % 2 = 0 THEN i % {PACKAGES} + 1 END,
                   CASE WHEN i % 2 = 0 THEN 'pkg-' || lpad((i % {PACKAGES} + 1)::text, 5, '0') END,
                   0, 'bench.step', '[1]'::json, '{{}}'::json, 10, 'celery', '{{}}'::json, '',
                   CASE WHEN i % 20 = 0 THEN 'ERROR' WHEN i % 500 = 1 THEN 'RUNNING' ELSE 'DONE' END,
                   0, 0, 0, 1, 'w1@bench', CASE WHEN i % 20 = 0 THEN 'simulated failure' END,
                   now() - ({JOBS} - i) * interval '864 milliseconds',
                   now() - ({JOBS} - i) * interval '864 milliseconds',
                   CASE WHEN i % 500 <> 1 THEN now() - ({JOBS} - i) * interval '864 milliseconds'
                                               + interval '200 milliseconds' END
            FROM generate_series(1, {JOBS}) AS i""",
        f"""INSERT INTO jqm_audit (at, actor, action, target, package_name, detail)
            SELECT now() - ({AUDIT} - i) * interval '1 second', 'bench', 'SAVE',
                   'package ' || quote_literal('pkg-' || lpad((i % 100 + 1)::text, 5, '0')),
                   'pkg-' || lpad((i % 100 + 1)::text, 5, '0'), 'version ' || i
            FROM generate_series(1, {AUDIT}) AS i""",
        "ANALYZE",
    )


def _execute(url: str, *statements: str) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


async def _measure(
    client: httpx.AsyncClient, timed: Timed, label: str, path: str, requests: int, expect: str
) -> Figure:
    first = await client.get(path)
    if first.status_code != 200 or expect not in first.text:
        raise RuntimeError(f"{label}: {path} answered {first.status_code} without {expect!r}")
    timed.samples.clear()
    for _ in range(requests):
        await client.get(path)
    samples = sorted(timed.samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return Figure(label, statistics.median(samples), p99, first.text.count("<tr"))


async def _run(jqm: JobQueueManager, token: str, requests: int) -> list[Figure]:
    timed = Timed(create_app(jqm))
    settle_heap()  # as `jqm web` does before it serves
    transport = httpx.ASGITransport(app=timed)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
        newest_entry = (await client.get("/api/log-entries", params={"limit": 1})).json()[0]
        middle = newest_entry["id"] - LOG_ENTRIES // 2
        # The day the data was filled (UTC), not the clock's: a run that crosses midnight finds it all.
        today = newest_entry["started_at"][:10]
        cases = [
            ("baseline: /api/me", "/api/me", '"role"'),
            ("packages, page 1", "/packages", "pkg-00001"),
            ("packages, page 100", "/packages?page=100", "pkg-04951"),
            ("packages, ACTIVE, name filter", "/packages?status=ACTIVE&q=pkg-09", "pkg-09"),
            ("log entries, newest page", "/log", "bench.step"),
            ("log entries, page at 500,000", f"/log?before_id={middle}", "bench.step"),
            ("log entries, package + status", "/log?package=pkg-04241&status=ERROR", "simulated failure"),
            (
                "log entries, package + status, paged",
                f"/log?package=pkg-04243&status=DONE&before_id={middle}",
                "bench.step",
            ),
            ("log entries, status ERROR, paged", f"/log?status=ERROR&before_id={middle}", "simulated"),
            ("log entries, today", f"/log?since={today}&until={today}", "bench.step"),
            ("log entry, with its traceback", f"/log/{middle}", "Log entry"),
            ("packages, ERROR, why each stopped", "/packages?status=ERROR", "pkg-0"),
            ("package card", "/packages/pkg-00004", "pkg-00004"),
            ("run, with its picture", "/runs/5", "run-picture"),
            ("timeline, next 24 h", "/timeline", "Next 24 hours"),
            ("jobs, all", "/jobs?all=true", "bench.step"),
            ("jobs, page at 100,000", f"/jobs?all=true&before_id={JOBS // 2}", "bench.step"),
            (
                "jobs, ERROR on a worker, paged",
                f"/jobs?all=true&status=ERROR&worker=w1@bench&before_id={JOBS // 2}",
                "bench.step",
            ),
            ("jobs, queue, today", f"/jobs?all=true&queue=celery&since={today}&until={today}", "bench.step"),
            ("jobs, package", "/jobs?all=true&package=pkg-00043", "bench.step"),
            ("runs, newest page", "/runs", "pkg-"),
            ("runs, page at 5,000", "/runs?before_id=5000", "pkg-"),
            ("runs, package", "/runs?package=pkg-00042", "pkg-00042"),
            ("runs, today", f"/runs?since={today}&until={today}", "pkg-"),
            ("audit, newest page", "/audit", "version"),
            ("audit, page at 50,000", f"/audit?before_id={AUDIT // 2}", "version"),
            ("audit, package, paged", f"/audit?package=pkg-00042&before_id={AUDIT // 2}", "version"),
            ("queues", "/queues", "Queues"),
            ("api: runs, paged", "/api/runs?before_id=5000&limit=100", '"id"'),
            ("api: jobs, paged", f"/api/jobs?include_runs=true&before_id={JOBS // 2}&limit=100", '"id"'),
            ("api: audit, paged", f"/api/audit?before_id={AUDIT // 2}&limit=200", '"id"'),
        ]
        return [await _measure(client, timed, label, path, requests, expect) for label, path, expect in cases]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per page (default 200)")
    args = parser.parse_args()
    with postgres_database("jqm_bench_web") as url:
        app = Celery("bench-web", set_as_current=False)
        app.conf.jqm_database_url = url
        app.conf.jqm_auto_migrate = True
        jqm = JobQueueManager(app)
        jqm.upgrade_db()
        started = time.perf_counter()
        _fill(url)
        filled_s = time.perf_counter() - started
        filled = f"{PACKAGES:,} packages, {LOG_ENTRIES:,} log entries, {JOBS:,} jobs, {AUDIT:,} audit entries"
        print(f"filled {filled} in {filled_s:.1f} s")
        jqm.users().add("bench", "viewer", "benchmark password")
        token = jqm.users().create_token("bench")
        full = []
        for _ in range(3):
            begin = time.perf_counter()
            jqm.packages()
            full.append((time.perf_counter() - begin) * 1000)
        figures = asyncio.run(_run(jqm, token, args.requests))
        jqm.close()
    baseline = figures[0].p50_ms
    print(f"\nserver time per request, {args.requests} requests each (PostgreSQL, in-process ASGI)\n")
    print(f"{'page':44} {'p50 ms':>8} {'p99 ms':>8} {'p50 / baseline':>15}  rows  p99 < {TARGET_P99_MS:g} ms")
    for figure in figures:
        ok = "yes" if figure.p99_ms < TARGET_P99_MS else "NO"
        ratio = figure.p50_ms / baseline
        times = f"{figure.p50_ms:8.1f} {figure.p99_ms:8.1f}"
        print(f"{figure.label:44} {times} {ratio:14.1f}x {figure.rows:5}  {ok}")
    median_full = statistics.median(full)
    page_one = figures[1].p50_ms
    print(
        f"\nwithout the paged list: jqm.packages() over {PACKAGES:,} packages takes {median_full:,.0f} ms "
        f"(median of 3), {median_full / page_one:,.0f}x the packages page's p50"
    )


if __name__ == "__main__":
    main()
