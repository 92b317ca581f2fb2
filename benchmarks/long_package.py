"""Long packages: what an entry costs in a package of 200, 1,000 and 5,000 entries, lone and parallel mixed.

``python -m benchmarks.long_package [--sizes 200,1000,5000] [--repeat 3] [--chain-max 1000]
[--concurrency 2]``

On Redis + PostgreSQL, one worker subprocess (prefork) runs one app with a trivial task and a
JobQueueManager. For each size N a package of N entries is saved beforehand (not timed): stages of one
entry, with every fourth stage a group of three entries run in parallel. Timed from this process:

- ``run_now``: the client's call, which inserts the run and its N jobs and sends the run's first part;
- the run: from the call until the run is finished in the store (polled every 5 ms on one connection);
- the worker's CPU time (its processes, from /proc) over the run.

Each is given per entry. The peer is a plain Celery chain of as many trivial tasks (lone ones only), for
sizes up to ``--chain-max`` (a plain chain's every message carries the rest of the chain, so a 5,000-step
chain ships hundreds of megabytes). Sizes and the chain alternate, in an order that rotates between
repetitions; the report gives the median and the spread of the repetitions, the ratio of the largest
size's time per entry to the smallest's (target ≤ 1.5), and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, chain
from sqlalchemy import create_engine, func, select

from benchmarks.harness import (
    REDIS_BROKER_DB,
    REDIS_RESULTS_DB,
    Spread,
    Worker,
    delete_queues,
    postgres_database,
    redis_url,
    require,
    run_per_backend,
    scratch_dir,
    unique_queue,
    wait_until,
)
from jqm_celery import Entry, JobQueueManager, OnError, Package
from jqm_celery.statuses import RunStatus
from jqm_celery.store.models import RunRow

NOOP = "bench.noop"
#: Every this many stages, a stage is a group of ``GROUP`` parallel entries.
GROUP_EVERY = 4
GROUP = 3


def make_app(conf: dict[str, Any]) -> Celery:
    """The app of the worker and of this process: one trivial task, and jqm."""
    app = Celery("jqm-long-package-bench")
    app.conf.update(conf)
    app.task(name=NOOP, shared=False)(_noop)
    JobQueueManager(app)
    return app


def _noop() -> None:
    return None


def entries(size: int) -> list[Entry]:
    """``size`` entries: lone stages, every ``GROUP_EVERY``-th stage a group of ``GROUP`` (the last may be
    smaller)."""
    made: list[Entry] = []
    stage = 0
    while len(made) < size:
        stage += 1
        width = GROUP if stage % GROUP_EVERY == 0 else 1
        made += [Entry(NOOP, run_order=stage) for _ in range(min(width, size - len(made)))]
    return made


def package_name(size: int) -> str:
    return f"bench-long-{size}"


@dataclass
class Sample:
    """Repetitions of one size: seconds of ``run_now``, of the whole run, and the worker's CPU."""

    size: int
    run_now_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)
    worker_cpu_s: list[float] = field(default_factory=list)
    chain_s: list[float] = field(default_factory=list)
    chain_cpu_s: list[float] = field(default_factory=list)

    def per_entry_ms(self, values: Sequence[float]) -> Spread:
        return Spread(tuple(1000 * value / self.size for value in values))


class Bench:
    def __init__(self, app: Celery, worker: Worker, timeout_s: float) -> None:
        self.app = app
        self.jqm = JobQueueManager.of(app)
        self.worker = worker
        self.timeout_s = timeout_s
        self.engine = create_engine(self.jqm.settings.database_url, isolation_level="AUTOCOMMIT")
        self.poll = self.engine.connect()

    def close(self) -> None:
        self.poll.close()
        self.engine.dispose()

    def prepare(self, sizes: Sequence[int]) -> None:
        for size in sizes:
            self.jqm.save(Package(package_name(size), entries=entries(size), on_error=OnError.CONTINUE))
        self.run_package(min(sizes))
        self.plain_chain(20)

    def run_package(self, size: int) -> tuple[float, float, float]:
        """(run_now s, whole run s, worker CPU s)."""
        cpu = self.worker.cpu_seconds()
        started = time.perf_counter()
        run = self.jqm.run_now(package_name(size))
        called = time.perf_counter()
        unfinished = select(func.count()).where(RunRow.id == run.id, RunRow.finished_at.is_(None))
        wait_until(lambda: self.poll.scalar(unfinished) == 0, self.timeout_s, 0.005, f"run of {size}")
        finished = time.perf_counter()
        status = self.poll.scalar(select(RunRow.status).where(RunRow.id == run.id))
        if status != RunStatus.SUCCEEDED:
            raise RuntimeError(f"the run of {size} entries ended {status}")
        return called - started, finished - started, self.worker.cpu_seconds() - cpu

    def plain_chain(self, size: int) -> tuple[float, float]:
        noop = self.app.tasks[NOOP]
        cpu = self.worker.cpu_seconds()
        started = time.perf_counter()
        chain(noop.si() for _ in range(size)).apply_async().get(timeout=self.timeout_s, interval=0.005)
        return time.perf_counter() - started, self.worker.cpu_seconds() - cpu


def measure(bench: Bench, sizes: Sequence[int], repeat: int, chain_max: int) -> list[Sample]:
    samples = {size: Sample(size) for size in sizes}
    steps: list[tuple[str, int]] = [("package", size) for size in sizes]
    steps += [("chain", size) for size in sizes if size <= chain_max]
    for rep in range(repeat):
        shift = rep % len(steps)
        for kind, size in steps[shift:] + steps[:shift]:
            sample = samples[size]
            if kind == "package":
                run_now_s, total_s, cpu_s = bench.run_package(size)
                sample.run_now_s.append(run_now_s)
                sample.total_s.append(total_s)
                sample.worker_cpu_s.append(cpu_s)
            else:
                total_s, cpu_s = bench.plain_chain(size)
                sample.chain_s.append(total_s)
                sample.chain_cpu_s.append(cpu_s)
            print(
                f"   repetition {rep + 1}, {kind} of {size:,}: {1000 * total_s / size:.2f} ms per entry, "
                f"worker CPU {1000 * cpu_s / size:.2f} ms per entry, load {os.getloadavg()[0]:.1f}",
                file=sys.stderr,
                flush=True,
            )
    return list(samples.values())


def report(samples: Sequence[Sample], repeat: int, loads: Sequence[float]) -> str:
    lines = [
        f"ms per entry, median (min–max) of {repeat}; package: stages of one entry, every {GROUP_EVERY}th a "
        f"group of {GROUP}; chain: plain Celery chain of as many lone tasks",
        "",
        f"{'entries':>8} | {'run_now':>18} | {'whole run':>18} | {'worker CPU':>18} | "
        f"{'plain chain':>18} | {'run / chain':>11}",
    ]
    for s in samples:
        run_now, total, cpu = (s.per_entry_ms(v) for v in (s.run_now_s, s.total_s, s.worker_cpu_s))
        chain_text, ratio_text = "-", "-"
        if s.chain_s:
            plain = s.per_entry_ms(s.chain_s)
            chain_text = f"{plain.median:.2f} ({plain.range_text()})"
            ratio_text = f"{total.median / plain.median:.2f}"
        lines.append(
            f"{s.size:>8,} | {run_now.median:>6.3f} ({run_now.range_text('{:.3f}')}) | "
            f"{total.median:>5.2f} ({total.range_text()}) | {cpu.median:>5.2f} ({cpu.range_text()}) | "
            f"{chain_text:>18} | {ratio_text:>11}"
        )
    small, large = samples[0], samples[-1]
    ratios = Spread(
        tuple(
            (b / large.size) / (a / small.size)
            for a, b in zip(sorted(small.total_s), sorted(large.total_s), strict=True)
        )
    )
    whole = _per_entry_ratio(small, large, small.total_s, large.total_s)
    call = _per_entry_ratio(small, large, small.run_now_s, large.run_now_s)
    lines += [
        "",
        f"whole run per entry, {large.size:,} / {small.size:,}: {whole:.2f} "
        f"(sorted pairs {ratios.range_text()}; target ≤ 1.5)",
        f"run_now per entry, {large.size:,} / {small.size:,}: {call:.2f}",
        f"load (1 min) during the measurements: {min(loads):.1f}–{max(loads):.1f}",
    ]
    return "\n".join(lines)


def _per_entry_ratio(small: Sample, large: Sample, a: Sequence[float], b: Sequence[float]) -> float:
    return (statistics.median(b) / large.size) / (statistics.median(a) / small.size)


def run_redis_pg(args: argparse.Namespace) -> str:
    require("redis")
    with ExitStack() as stack:
        folder = stack.enter_context(scratch_dir())
        url = stack.enter_context(postgres_database("jqm_long_package"))
        conf: dict[str, Any] = {
            "task_default_queue": unique_queue(),
            "result_expires": 600,
            "broker_url": redis_url(REDIS_BROKER_DB),
            "result_backend": redis_url(REDIS_RESULTS_DB),
            "jqm_database_url": url,
        }
        app = make_app(conf)
        stack.callback(delete_queues, app, [conf["task_default_queue"]])
        JobQueueManager.of(app).upgrade_db()
        worker = Worker(
            "benchmarks.long_package:make_app",
            conf,
            ["--pool=prefork", f"--concurrency={args.concurrency}", "--loglevel=WARNING"],
            folder=folder,
        )
        stack.enter_context(worker)
        bench = Bench(app, worker, args.timeout)
        stack.callback(bench.close)
        started = time.monotonic()
        bench.prepare(args.sizes)
        loads = [os.getloadavg()[0]]
        samples = measure(bench, args.sizes, args.repeat, args.chain_max)
        loads.append(os.getloadavg()[0])
        text = report(samples, args.repeat, loads)
        return f"backend redis-pg: Redis broker and results, PostgreSQL store\n{text}\n" + (
            f"(measured in {time.monotonic() - started:.0f} s)"
        )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.long_package", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", default="200,1000,5000", help="entries per package, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the median is reported")
    parser.add_argument("--chain-max", type=int, default=1000, help="largest plain chain run as the peer")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per run")
    args = parser.parse_args(argv)
    args.sizes = sorted({int(size) for size in args.sizes.split(",")})
    if args.sizes[0] < 1 or args.repeat < 1:
        parser.error("sizes and --repeat must be whole numbers ≥ 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = f"sizes {', '.join(f'{size:,}' for size in args.sizes)}, repeat={args.repeat}"
    return run_per_backend("long-package benchmark", settings, ["redis-pg"], lambda _: run_redis_pg(args))


if __name__ == "__main__":
    sys.exit(main())
