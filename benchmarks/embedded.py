"""The embedded default against huey's ``SqliteHuey``: the same trivial work, side by side, in one run.

``python -m benchmarks.embedded [--n 200] [--burst 1000] [--repeat 3] [--concurrency 2]``

jqm: one worker subprocess (prefork, ``--concurrency`` processes) on the embedded default (SQLite
broker, results and store), as in ``benchmarks.dispatch``. huey: one ``huey_consumer`` with
``--concurrency`` worker processes on one ``SqliteHuey`` file. Both run a task that does nothing.

(1) a sequence of N steps: a package of N entries in run order, against a huey pipeline of N tasks
    (``task.s().then(task)…``); done when the run is finished in the store, or the last task's result is
    in huey's result store;
(2) BURST at once: BURST one-entry packages started with ``run_now``, against BURST huey tasks enqueued;
    done when every run is finished, or every result is stored;
(3) the same BURST started with one ``run_now_many`` call (one transaction, one publish batch), against
    huey's BURST tasks enqueued again.

jqm and huey alternate within each repetition (jqm huey, then huey jqm, …). The report gives, per shape,
the medians and spreads of both, their ratio (and its spread over the repetitions' pairs), the CPU time
each side's processes spent per entry, and the machine's load. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import celery

from benchmarks.dispatch import Bench, Sample, make_app
from benchmarks.harness import (
    ROOT,
    Spread,
    Steal,
    Worker,
    process_group_cpu_seconds,
    scratch_dir,
    unique_queue,
    wait_until,
)
from jqm_celery.embedded import embedded_conf

#: huey's consumer never backs off its polling past this (its default, 10 s, would make the first task
#: of a measurement wait for however long the consumer happened to be idle before it).
HUEY_MAX_DELAY_S = 0.1


@contextmanager
def huey_consumer(folder: Path, concurrency: int) -> Iterator[tuple[ModuleType, subprocess.Popen[bytes]]]:
    """huey's consumer with ``concurrency`` worker processes on a fresh SQLite file in ``folder``."""
    os.environ["JQM_BENCH_HUEY_FILE"] = str(folder / "huey.sqlite")
    from benchmarks import huey_peer

    log = (folder / "huey.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "huey.bin.huey_consumer",
            "benchmarks.huey_peer.HUEY",
            "--workers",
            str(concurrency),
            "--worker-type",
            "process",
            "--no-periodic",
            "--max-delay",
            str(HUEY_MAX_DELAY_S),
            "--quiet",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield huey_peer, process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


class HueyBench:
    """The same two shapes on huey; each returns the wall time in seconds."""

    def __init__(self, peer: ModuleType, n: int, burst: int, timeout_s: float) -> None:
        self.huey = peer.HUEY
        self.noop = peer.noop
        self.n = n
        self.burst = burst
        self.timeout_s = timeout_s

    def prepare(self) -> None:
        """Wait for the consumer (its first task) and warm both worker processes up."""
        self._pipeline(20)
        self._burst(20)

    def pipeline(self) -> float:
        return self._pipeline(self.n)

    def burst_at_once(self) -> float:
        return self._burst(self.burst)

    def _pipeline(self, size: int) -> float:
        pipeline = self.noop.s()
        for _ in range(size - 1):
            pipeline = pipeline.then(self.noop)
        started = time.perf_counter()
        *_, last = self.huey.enqueue(pipeline)
        wait_until(lambda: last.get() is not None, self.timeout_s, 0.005, f"huey pipeline of {size}")
        elapsed = time.perf_counter() - started
        self.huey.storage.flush_results()
        return elapsed

    def _burst(self, size: int) -> float:
        started = time.perf_counter()
        for _ in range(size):
            self.noop()
        stored = self.huey.storage.result_store_size
        wait_until(lambda: stored() >= size, self.timeout_s, 0.02, f"{size} huey tasks")
        elapsed = time.perf_counter() - started
        self.huey.storage.flush_results()
        return elapsed


@dataclass(frozen=True)
class Shape:
    label: str
    entries: int
    jqm: Spread
    huey: Spread
    jqm_cpu: Spread
    huey_cpu: Spread

    def ms_per_entry(self, seconds: Spread) -> Spread:
        return Spread(tuple(1000 * s / self.entries for s in seconds.values))

    def per_second(self, seconds: Spread) -> Spread:
        return Spread(tuple(self.entries / s for s in seconds.values))

    @property
    def ratio(self) -> Spread:
        """jqm's time over huey's, per repetition."""
        return Spread(tuple(j / h for j, h in zip(self.jqm.values, self.huey.values, strict=True)))


Step = Callable[[], float]


def measure(
    pairs: Sequence[tuple[str, int, Step, Step]], jqm_pgid: int, huey_pgid: int, repeat: int
) -> list[Shape]:
    """jqm and huey alternate (jqm huey / huey jqm / …) so drift and noise hit both alike."""
    shapes = []
    samples: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for rep in range(repeat):
        for index, (_, _, jqm_step, huey_step) in enumerate(pairs):
            order = [(0, jqm_step, jqm_pgid), (1, huey_step, huey_pgid)]
            if rep % 2:
                order.reverse()
            for side, step, pgid in order:
                cpu_before = process_group_cpu_seconds(pgid)
                seconds = step()
                cpu = process_group_cpu_seconds(pgid) - cpu_before
                samples.setdefault((index, side), []).append((seconds, cpu))
    for index, (label, entries, _, _) in enumerate(pairs):
        jqm, huey = samples[(index, 0)], samples[(index, 1)]
        shapes.append(
            Shape(
                label,
                entries,
                Spread(tuple(s for s, _ in jqm)),
                Spread(tuple(s for s, _ in huey)),
                Spread(tuple(c for _, c in jqm)),
                Spread(tuple(c for _, c in huey)),
            )
        )
    return shapes


def report(shapes: Sequence[Shape], repeat: int, concurrency: int) -> str:
    lines = [
        f"jqm: embedded default (SQLite broker, results, store), worker prefork ×{concurrency}; "
        f"huey: SqliteHuey, consumer with {concurrency} worker processes; median of {repeat}",
        f"{'shape':<34}{'side':<6}{'ms/entry':>10}{'per second':>12}{'CPU ms/entry':>14}   spread ms/entry",
    ]
    for shape in shapes:
        for side, seconds, cpu in (("jqm", shape.jqm, shape.jqm_cpu), ("huey", shape.huey, shape.huey_cpu)):
            ms = shape.ms_per_entry(seconds)
            lines.append(
                f"{shape.label:<34}{side:<6}{ms.median:>10.2f}{shape.per_second(seconds).median:>12.1f}"
                f"{shape.ms_per_entry(cpu).median:>14.2f}   {ms.range_text()}"
            )
    for shape in shapes:
        median = shape.jqm.median / shape.huey.median
        lines.append(f"{shape.label}: jqm/huey time {median:.2f} (per repetition {shape.ratio.range_text()})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    with ExitStack() as stack:
        folder = stack.enter_context(scratch_dir())
        conf = {**embedded_conf(folder / "embedded"), "task_default_queue": unique_queue()}
        app = make_app(conf)
        bench = Bench(app, args.n, args.burst, args.timeout)
        stack.callback(bench.dispose)
        bench.jqm.upgrade_db()
        worker = Worker(
            "benchmarks.dispatch:make_app",
            conf,
            ["--pool=prefork", f"--concurrency={args.concurrency}", "--loglevel=WARNING"],
            folder=folder,
        )
        stack.enter_context(worker)
        peer, consumer = stack.enter_context(huey_consumer(folder, args.concurrency))
        huey = HueyBench(peer, args.n, args.burst, args.timeout)
        started = time.monotonic()
        bench.prepare(chains=True, bursts=True)
        huey.prepare()
        assert worker.process is not None
        pairs = [
            (f"(1) sequence of {args.n}", args.n, _wall(bench.package_chain), huey.pipeline),
            (f"(2) {args.burst} at once", args.burst, _wall(bench.package_burst), huey.burst_at_once),
            (
                f"(3) {args.burst} at once, run_now_many",
                args.burst,
                _wall(bench.package_burst_many),
                huey.burst_at_once,
            ),
        ]
        steal = Steal()
        shapes = measure(pairs, worker.process.pid, consumer.pid, args.repeat)
        elapsed_s = time.monotonic() - started
        measured = f"(measured in {elapsed_s:.0f} s; {steal.text()})"
        return f"{report(shapes, args.repeat, args.concurrency)}\n{measured}"


def _wall(step: Callable[[], Sample]) -> Step:
    """A jqm measurement as a wall time in seconds, as huey's are."""
    return lambda: step().seconds


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.embedded", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=_positive, default=200, help="entries, pipeline tasks")
    parser.add_argument("--burst", type=_positive, default=1000, help="packages / tasks started at once")
    parser.add_argument("--repeat", type=_positive, default=3, help="repetitions; the median is reported")
    parser.add_argument("--concurrency", type=_positive, default=2, help="worker processes of each side")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per measurement")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, got {text}")
    return value


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(
        f"jqm-celery embedded benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python "
        f"{platform.python_version()}, Celery {celery.__version__}; n={args.n}, burst={args.burst}, "
        f"repeat={args.repeat}; load (1/5/15 min) before: {_load()}",
        flush=True,
    )
    text = run(args)
    print(text)
    print(f"load (1/5/15 min) after: {_load()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
