"""What tracking costs: plain Celery against jqm packages, on the same broker and the same workers.

``python -m benchmarks.dispatch [--backend redis-pg|embedded|rabbitmq-pg|all] [--n 200] [--burst 1000]
[--repeat 3] [--only all|chain|burst] [--concurrency 2] [--claim-commit]``

Per backend, one worker subprocess (prefork) runs one app that has a trivial task and a
JobQueueManager, and this process measures, from sending to completion:

(a) N trivial tasks as a plain Celery chain (waits on the last task's result);
(b) the same N tasks as the entries of one package, run in run order (waits on the run's status);
(c) BURST trivial tasks sent at once with ``apply_async`` (waits on all their results);
(d) BURST one-entry packages, created beforehand, each started with ``run_now`` (waits on all runs);
(e) the same packages started with one ``run_now_many`` call (waits on all runs).

The chains (a, b) alternate within each repetition, and so do the bursts (c, d, e); the table shows the
median of the repetitions and their spread, the CPU time per entry that this process spent sending, that
the worker's processes spent, that the servers (PostgreSQL and the broker's; run alone: they count
whatever they serve) spent, and all three together, and the ratios (b)/(a) in time per entry and
(d)/(c), (e)/(c) in throughput,
with the machine's load. See docs/benchmarks.md.

``--claim-commit`` measures (b) and (d) instead with durable claims against claims that do not wait for
their WAL flush, two workers measured in turn (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery, chain
from celery.result import ResultSet
from sqlalchemy import Engine, bindparam, create_engine, func, select

from benchmarks.harness import (
    RABBITMQ_URL,
    REDIS_BROKER_DB,
    REDIS_RESULTS_DB,
    Spread,
    Steal,
    Worker,
    delete_queues,
    postgres_database,
    redis_url,
    require,
    run_per_backend,
    scratch_dir,
    servers_cpu_seconds,
    unique_queue,
    wait_until,
)
from jqm_celery import Entry, JobQueueManager, OnError, Package
from jqm_celery.embedded import embedded_conf
from jqm_celery.statuses import RunStatus
from jqm_celery.store import statements
from jqm_celery.store.models import RunRow

BACKENDS = ("redis-pg", "embedded", "rabbitmq-pg")
DEFAULT_BACKENDS = ("redis-pg", "embedded")
#: The servers each backend runs on (see ``harness.SERVER_PROCESSES``); the embedded one has none.
SERVERS = {"redis-pg": ("postgresql", "redis"), "embedded": (), "rabbitmq-pg": ("postgresql", "rabbitmq")}
NOOP = "bench.noop"
CHAIN_PACKAGE = "bench-chain"
WARM_PACKAGE = "bench-warm-up"
ONE_ENTRY_PREFIX = "bench-one-"
WARM_UP_SIZE = 20


#: A conf key of this benchmark only: "async" makes the worker commit claims without waiting for their
#: WAL flush, as jqm did before claims were durable (``--claim-commit``).
CLAIM_COMMIT = "bench_claim_commit"


def make_app(conf: dict[str, Any]) -> Celery:
    """The app of the worker and of this process: one trivial task, and jqm."""
    app = Celery("jqm-bench")
    app.conf.update(conf)
    if conf.get(CLAIM_COMMIT) == "async":
        _claims_without_flush_wait()

    app.task(name=NOOP, shared=False)(_noop)
    JobQueueManager(app)
    return app


def _noop() -> None:
    return None


def _claims_without_flush_wait() -> None:
    """Claims as they were: the claim's own transaction sets ``synchronous_commit`` off."""
    durable = statements.claim_and_log

    @functools.cache
    def claim_and_log() -> Any:
        no_wait = func.set_config("synchronous_commit", "off", True).label("synchronous_commit")
        return durable().add_columns(no_wait)

    statements.claim_and_log = claim_and_log


@contextmanager
def backend_conf(name: str, folder: Path) -> Iterator[tuple[dict[str, Any], str]]:
    """The Celery + jqm settings of a backend, and a one-line description of it."""
    common: dict[str, Any] = {"task_default_queue": unique_queue(), "result_expires": 600}
    if name == "embedded":
        yield {**embedded_conf(folder / "embedded"), **common}, "SQLite broker, results and store"
        return
    if name == "redis-pg":
        require("redis")
        with postgres_database() as url:
            conf = {
                **common,
                "broker_url": redis_url(REDIS_BROKER_DB),
                "result_backend": redis_url(REDIS_RESULTS_DB),
                "jqm_database_url": url,
            }
            yield conf, "Redis broker, Redis results, PostgreSQL store"
        return
    if name == "rabbitmq-pg":
        require("rabbitmq")
        with postgres_database() as url:
            conf = {**common, "broker_url": RABBITMQ_URL, "jqm_database_url": url}
            yield conf, "RabbitMQ broker, PostgreSQL results (jqm's default), PostgreSQL store"
        return
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


#: The oldest run with an id from ``low`` to ``high`` that has not finished (``Bench._wait_runs``).
_OLDEST_UNFINISHED = (
    select(RunRow.id)
    .where(RunRow.id.between(bindparam("low"), bindparam("high")), RunRow.finished_at.is_(None))
    .order_by(RunRow.id)
    .limit(1)
)


@dataclass(frozen=True)
class Sample:
    """One measurement: wall time from the first send to the work seen finished, and this process's CPU
    time spent sending (``apply_async`` or ``run_now`` calls; the wait for the results is left out)."""

    seconds: float
    client_cpu_seconds: float


class Bench:
    """The measurements against one running worker; each returns a ``Sample``."""

    def __init__(self, app: Celery, n: int, burst: int, timeout_s: float) -> None:
        self.app = app
        self.jqm = JobQueueManager.of(app)
        self.noop = app.tasks[NOOP]
        self.n = n
        self.burst = burst
        self.timeout_s = timeout_s
        # Polls must not take the store's write lock (SQLite) nor hold a transaction open. One connection is
        # kept for them: a poll every 5 ms is then one small query, with no pool checkout, so waiting on a
        # package costs the machine about what waiting on a Celery result does.
        self.poll_engine: Engine = create_engine(self.jqm.settings.database_url, isolation_level="AUTOCOMMIT")
        self.poll_conn = self.poll_engine.connect()

    @property
    def has_run_now_many(self) -> bool:
        # The same script measures a tree from before ``run_now_many`` existed, for a before/after.
        return hasattr(self.jqm, "run_now_many")

    def prepare(self, chains: bool, bursts: bool) -> None:
        """Create the packages (not timed) and warm every pool process up."""
        self.jqm.upgrade_db()
        self._save(WARM_PACKAGE, WARM_UP_SIZE)
        self._plain_chain(WARM_UP_SIZE)
        self._package_chain(WARM_PACKAGE)
        if chains:
            self._save(CHAIN_PACKAGE, self.n)
        if bursts:
            for index in range(self.burst):
                self._save(self.one_entry(index), 1)
            self._plain_burst(WARM_UP_SIZE)
            self._package_burst(WARM_UP_SIZE)
            if self.has_run_now_many:
                self._package_burst_many(WARM_UP_SIZE)

    def dispose(self) -> None:
        self.poll_conn.close()
        self.poll_engine.dispose()

    @staticmethod
    def one_entry(index: int) -> str:
        return f"{ONE_ENTRY_PREFIX}{index:05d}"

    def plain_chain(self) -> Sample:
        return self._plain_chain(self.n)

    def package_chain(self) -> Sample:
        return self._package_chain(CHAIN_PACKAGE)

    def plain_burst(self) -> Sample:
        return self._plain_burst(self.burst)

    def package_burst(self) -> Sample:
        return self._package_burst(self.burst)

    def package_burst_many(self) -> Sample:
        return self._package_burst_many(self.burst)

    def _save(self, name: str, entries: int) -> None:
        self.jqm.save(
            Package(
                name,
                entries=[Entry(NOOP, run_order=order) for order in range(1, entries + 1)],
                on_error=OnError.CONTINUE,
            )
        )

    def _plain_chain(self, size: int) -> Sample:
        started, cpu = time.perf_counter(), time.process_time()
        last = chain(self.noop.si() for _ in range(size)).apply_async()
        sent = time.process_time() - cpu
        last.get(timeout=self.timeout_s, interval=0.005)
        return Sample(time.perf_counter() - started, sent)

    def _package_chain(self, name: str) -> Sample:
        started, cpu = time.perf_counter(), time.process_time()
        run = self.jqm.run_now(name)
        sent = time.process_time() - cpu
        self._wait_runs([run.id], poll_s=0.005)
        return Sample(time.perf_counter() - started, sent)

    def _plain_burst(self, size: int) -> Sample:
        started, cpu = time.perf_counter(), time.process_time()
        results = ResultSet([self.noop.apply_async() for _ in range(size)])
        sent = time.process_time() - cpu
        results.get(timeout=self.timeout_s, interval=0.01)
        return Sample(time.perf_counter() - started, sent)

    def _package_burst(self, size: int) -> Sample:
        started, cpu = time.perf_counter(), time.process_time()
        run_ids = [self.jqm.run_now(self.one_entry(index)).id for index in range(size)]
        sent = time.process_time() - cpu
        self._wait_runs(run_ids, poll_s=0.02)
        return Sample(time.perf_counter() - started, sent)

    def _package_burst_many(self, size: int) -> Sample:
        started, cpu = time.perf_counter(), time.process_time()
        runs = self.jqm.run_now_many([self.one_entry(index) for index in range(size)])
        sent = time.process_time() - cpu
        self._wait_runs([run.id for run in runs], poll_s=0.02)
        return Sample(time.perf_counter() - started, sent)

    def _wait_runs(self, run_ids: Sequence[int], poll_s: float) -> None:
        """Wait until every run of ``run_ids`` has finished (the bench starts no other runs meanwhile).

        Each poll asks for the oldest unfinished run from the one the last poll found on: an index scan
        over the runs finished since, not a look at every run (1,000 ids in an ``IN`` list cost
        PostgreSQL about 2 ms a poll, taken from the worker it measures)."""
        low, high = min(run_ids), max(run_ids)

        def finished() -> bool:
            nonlocal low
            found = self.poll_conn.scalar(_OLDEST_UNFINISHED, {"low": low, "high": high})
            if found is None:
                return True
            low = found
            return False

        wait_until(finished, self.timeout_s, poll_s, f"{len(run_ids)} run(s)")
        failed = self.poll_conn.scalar(
            select(func.count()).where(RunRow.id.in_(run_ids), RunRow.status != RunStatus.SUCCEEDED)
        )
        if failed:
            raise RuntimeError(f"{failed} of {len(run_ids)} benchmark run(s) did not succeed")


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    entries: int
    seconds: Spread
    #: CPU time the worker's processes spent on the measurement.
    worker_cpu_seconds: Spread
    #: CPU time this process spent sending (see ``Sample``).
    client_cpu_seconds: Spread
    #: CPU time the broker's and the database's servers spent on the measurement (none when embedded).
    servers_cpu_seconds: Spread

    @property
    def ms_per_entry(self) -> Spread:
        return Spread(tuple(1000 * s / self.entries for s in self.seconds.values))

    @property
    def per_second(self) -> Spread:
        return Spread(tuple(self.entries / s for s in self.seconds.values))

    @property
    def worker_cpu_ms_per_entry(self) -> Spread:
        return Spread(tuple(1000 * s / self.entries for s in self.worker_cpu_seconds.values))

    @property
    def client_cpu_ms_per_entry(self) -> Spread:
        return Spread(tuple(1000 * s / self.entries for s in self.client_cpu_seconds.values))

    @property
    def servers_cpu_ms_per_entry(self) -> Spread:
        return Spread(tuple(1000 * s / self.entries for s in self.servers_cpu_seconds.values))

    @property
    def total_cpu_ms_per_entry(self) -> Spread:
        """Client, worker and servers: the machine's CPU time per entry, which bounds a burst's pace
        once every core is busy."""
        parts = zip(
            self.client_cpu_seconds.values,
            self.worker_cpu_seconds.values,
            self.servers_cpu_seconds.values,
            strict=True,
        )
        return Spread(tuple(1000 * sum(each) / self.entries for each in parts))


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    entries: int
    run: Callable[[], Sample]


def steps(bench: Bench, chains: bool, bursts: bool) -> list[list[Step]]:
    """The groups of measurements that alternate with each other: the chains, and the bursts."""
    groups: list[list[Step]] = []
    if chains:
        groups.append(
            [
                Step("a", f"(a) plain chain, {bench.n} tasks", bench.n, bench.plain_chain),
                Step("b", f"(b) package, {bench.n} entries", bench.n, bench.package_chain),
            ]
        )
    if bursts:
        burst = [
            Step("c", f"(c) {bench.burst} plain tasks at once", bench.burst, bench.plain_burst),
            Step("d", f"(d) {bench.burst} packages, run_now", bench.burst, bench.package_burst),
        ]
        if bench.has_run_now_many:
            label = f"(e) {bench.burst} packages, run_now_many"
            burst.append(Step("e", label, bench.burst, bench.package_burst_many))
        groups.append(burst)
    return groups


def measure(
    bench: Bench, worker: Worker, groups: list[list[Step]], repeat: int, servers: Sequence[str]
) -> list[Row]:
    """Within each group the measurements alternate (a b / b a / …) so drift and noise hit all alike."""
    samples: dict[str, list[Sample]] = {step.key: [] for group in groups for step in group}
    cpu: dict[str, list[float]] = {key: [] for key in samples}
    servers_cpu: dict[str, list[float]] = {key: [] for key in samples}
    for rep in range(repeat):
        for group in groups:
            order = list(reversed(group)) if rep % 2 else group
            for step in order:
                cpu_before, servers_before = worker.cpu_seconds(), servers_cpu_seconds(servers)
                samples[step.key].append(step.run())
                cpu[step.key].append(worker.cpu_seconds() - cpu_before)
                servers_cpu[step.key].append(servers_cpu_seconds(servers) - servers_before)
    return [
        Row(
            step.key,
            step.label,
            step.entries,
            Spread(tuple(s.seconds for s in samples[step.key])),
            Spread(tuple(cpu[step.key])),
            Spread(tuple(s.client_cpu_seconds for s in samples[step.key])),
            Spread(tuple(servers_cpu[step.key])),
        )
        for group in groups
        for step in group
    ]


def report(backend: str, description: str, rows: list[Row], concurrency: int, repeat: int) -> str:
    by_key = {row.key: row for row in rows}
    lines = [
        f"backend {backend}: {description}; worker prefork ×{concurrency}; median of {repeat}",
        f"{'measurement':<40}{'ms/entry':>9}{'per s':>8}{'client CPU':>11}{'worker CPU':>11}"
        f"{'server CPU':>11}{'all CPU':>9}   spread ms/entry",
        f"{'':<40}{'':>9}{'':>8}{'ms/entry':>11}{'ms/entry':>11}{'ms/entry':>11}{'ms/entry':>9}",
    ]
    for row in rows:
        lines.append(
            f"{row.label:<40}{row.ms_per_entry.median:>9.2f}{row.per_second.median:>8.1f}"
            f"{row.client_cpu_ms_per_entry.median:>11.2f}{row.worker_cpu_ms_per_entry.median:>11.2f}"
            f"{row.servers_cpu_ms_per_entry.median:>11.2f}{row.total_cpu_ms_per_entry.median:>9.2f}"
            f"   {row.ms_per_entry.range_text()}"
        )
    if "a" in by_key:
        a, b = by_key["a"], by_key["b"]
        paired = Spread(tuple(y / x for x, y in zip(a.seconds.values, b.seconds.values, strict=True)))
        lines.append(
            f"(b)/(a) time per entry: {b.ms_per_entry.median / a.ms_per_entry.median:.2f} "
            f"(per repetition {paired.range_text()}; target ≤ 1.25 on redis-pg); worker CPU per entry "
            f"{b.worker_cpu_ms_per_entry.median / a.worker_cpu_ms_per_entry.median:.2f}"
        )
    if "c" in by_key:
        c = by_key["c"]
        for key in ("d", "e"):
            if key not in by_key:
                continue
            x = by_key[key]
            paired = Spread(tuple(p / q for p, q in zip(c.seconds.values, x.seconds.values, strict=True)))
            lines.append(
                f"({key})/(c) throughput:     {x.per_second.median / c.per_second.median:.2f} "
                f"(per repetition {paired.range_text()}; target ≥ 0.7 on redis-pg); worker CPU per "
                f"entry {x.worker_cpu_ms_per_entry.median / c.worker_cpu_ms_per_entry.median:.2f}, "
                f"client {x.client_cpu_ms_per_entry.median / c.client_cpu_ms_per_entry.median:.2f}, "
                f"all {x.total_cpu_ms_per_entry.median / c.total_cpu_ms_per_entry.median:.2f}"
            )
    return "\n".join(lines)


def run_backend(name: str, args: argparse.Namespace) -> str:
    with ExitStack() as stack:
        bench, worker, description = _bench_and_worker(stack, name, args, {})
        started = time.monotonic()
        chains, bursts = args.only in ("all", "chain"), args.only in ("all", "burst")
        bench.prepare(chains, bursts)
        load_before, steal = os.getloadavg(), Steal()
        rows = measure(bench, worker, steps(bench, chains, bursts), args.repeat, SERVERS[name])
        load_after = os.getloadavg()
        text = report(name, description, rows, args.concurrency, args.repeat)
        load = f"load {_load(load_before)} before, {_load(load_after)} after; {steal.text()}"
        return f"{text}\n(measured in {time.monotonic() - started:.0f} s; {load})"


def _load(averages: tuple[float, float, float]) -> str:
    return "/".join(f"{value:.1f}" for value in averages)


def _bench_and_worker(
    stack: ExitStack,
    name: str,
    args: argparse.Namespace,
    extra: dict[str, Any],
    adjust: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[Bench, Worker, str]:
    """A backend's bench and its running worker, for ``stack``. ``extra``: the worker's own conf keys;
    ``adjust``: a change to the backend's conf, for this process's app and the worker's alike."""
    folder = stack.enter_context(scratch_dir())
    conf, description = stack.enter_context(backend_conf(name, folder))
    if adjust is not None:
        conf = adjust(conf)
    app = make_app(conf)
    bench = Bench(app, args.n, args.burst, args.timeout)
    stack.callback(bench.dispose)
    if name != "embedded":
        stack.callback(delete_queues, app, [conf["task_default_queue"]])
    bench.jqm.upgrade_db()
    worker = Worker(
        "benchmarks.dispatch:make_app",
        {**conf, **extra},
        ["--pool=prefork", f"--concurrency={args.concurrency}", "--loglevel=WARNING"],
        folder=folder,
    )
    stack.enter_context(worker)
    return bench, worker, description


def claim_commit_cost(name: str, args: argparse.Namespace) -> str:
    """(b) and (d) with durable claims against claims that do not wait for their flush: two workers,
    each on its own database and queue, measured in turn (a b / b a / …)."""
    variants = ("durable", "async")
    with ExitStack() as stack:
        benches: dict[str, Bench] = {}
        for variant in variants:
            bench, _, description = _bench_and_worker(stack, name, args, {CLAIM_COMMIT: variant})
            bench.prepare(chains=True, bursts=True)
            benches[variant] = bench
        samples: dict[tuple[str, str], list[float]] = {}
        loads = [os.getloadavg()[0]]
        for rep in range(args.repeat):
            order = list(variants) if rep % 2 == 0 else list(reversed(variants))
            for step in ("package_chain", "package_burst"):
                for variant in order:
                    sample: Sample = getattr(benches[variant], step)()
                    samples.setdefault((step, variant), []).append(sample.seconds)
            loads.append(os.getloadavg()[0])
        lines = [
            f"backend {name}: {description}; worker prefork ×{args.concurrency}; median of {args.repeat}; "
            f"load average {min(loads):.1f}–{max(loads):.1f}",
            f"{'measurement':<44}{'ms/entry':>10}   spread ms/entry",
        ]
        for step, entries, label in (
            ("package_chain", args.n, f"(b) package, {args.n} entries"),
            ("package_burst", args.burst, f"(d) {args.burst} one-entry packages"),
        ):
            spreads = {v: Spread(tuple(1000 * s / entries for s in samples[(step, v)])) for v in variants}
            for variant in variants:
                spread = spreads[variant]
                text = f"{label}, claim {variant}"
                lines.append(f"{text:<44}{spread.median:>10.3f}   {spread.range_text('{:.3f}')}")
            paired = Spread(
                tuple(
                    d / a for d, a in zip(samples[(step, "durable")], samples[(step, "async")], strict=True)
                )
            )
            ratio = spreads["durable"].median / spreads["async"].median
            lines.append(f"{label}: durable/async {ratio:.3f} (per repetition {paired.range_text('{:.3f}')})")
        return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dispatch", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backend",
        action="append",
        choices=[*BACKENDS, "all"],
        help="redis-pg, embedded, rabbitmq-pg or all; repeat the option for several "
        f"(default: {' and '.join(DEFAULT_BACKENDS)})",
    )
    parser.add_argument("--n", type=_positive, default=200, help="tasks in the chain, entries in the package")
    parser.add_argument("--burst", type=_positive, default=1000, help="tasks / packages started at once")
    parser.add_argument("--repeat", type=_positive, default=3, help="repetitions; the median is reported")
    parser.add_argument(
        "--only",
        choices=["all", "chain", "burst"],
        default="all",
        help="measure only the chains (a, b) or only the bursts (c, d, e); default: all",
    )
    parser.add_argument("--concurrency", type=_positive, default=2, help="worker pool processes")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per measurement")
    parser.add_argument(
        "--claim-commit",
        action="store_true",
        help="measure (b) and (d) with durable claims against claims that do not wait for their flush",
    )
    args = parser.parse_args(argv)
    chosen = args.backend or list(DEFAULT_BACKENDS)
    args.backend = list(BACKENDS) if "all" in chosen else list(dict.fromkeys(chosen))
    return args


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = f"n={args.n}, burst={args.burst}, repeat={args.repeat}"
    if args.claim_commit:
        backends = [b for b in args.backend if b != "embedded"]
        run = claim_commit_cost
        return run_per_backend("claim commit cost", settings, backends, lambda name: run(name, args))
    return run_per_backend("dispatch benchmark", settings, args.backend, lambda name: run_backend(name, args))


if __name__ == "__main__":
    sys.exit(main())
