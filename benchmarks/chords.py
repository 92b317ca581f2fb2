"""Parallel stages on a database result backend: jqm's (``jqm+URL``) against Celery's own (``db+URL``).

``python -m benchmarks.chords [--backend embedded|rabbitmq-pg] [--stages 10] [--width 2] [--repeat 3]``

Celery's database result backend cannot count a chord's finished tasks: it sends ``celery.chord_unlock``,
which looks a second after the chord was sent and then every ``result_chord_retry_interval``. jqm's
backend (``jqm_celery.results``, jqm's default beside its store) counts them, and the last task of a
group sends the chord's body. Two workers (prefork, ``--concurrency`` processes) run side by side on the
same kind of broker and store, each in a folder (embedded) or database of its own, one with each result
backend. Both measure, alternating within each repetition:

(f) a plain Celery chain of STAGES groups of WIDTH no-op tasks, each followed by one no-op (Celery makes
    each group and the task after it a chord); done when the last task's result is stored;
(g) a jqm package of STAGES run orders of WIDTH no-op entries each; done when the run has finished.

The report gives ms per stage, median and spread, for each backend, and Celery's over jqm's.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import celery
from celery import chain, group

from benchmarks.dispatch import NOOP, Bench, Sample, _bench_and_worker
from benchmarks.harness import Spread, Steal
from jqm_celery import Entry, OnError, Package
from jqm_celery.config import result_backend_for

BACKENDS = ("embedded", "rabbitmq-pg")
#: The package of (g).
STAGED_PACKAGE = "bench-parallel-stages"
SIDES = ("jqm", "db")


def results_of(side: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The change to a backend's conf for one side: jqm's result backend (its default beside the store,
    made explicit) or Celery's own on the same database."""

    def adjust(conf: dict[str, Any]) -> dict[str, Any]:
        backend = conf.get("result_backend") or result_backend_for(conf["jqm_database_url"])[0]
        if not str(backend).startswith("jqm+"):
            raise ValueError(f"backend's results are not jqm's database result backend: {backend!r}")
        url = str(backend).removeprefix("jqm+")
        return {**conf, "result_backend": f"{'jqm' if side == 'jqm' else 'db'}+{url}"}

    return adjust


class Stages:
    """(f) and (g) against one running worker."""

    def __init__(self, bench: Bench, stages: int, width: int) -> None:
        self.bench = bench
        self.stages = stages
        self.width = width

    def prepare(self) -> None:
        entries = [Entry(NOOP, run_order=10 * (stage + 1)) for stage in range(self.stages)]
        entries = [entry for entry in entries for _ in range(self.width)]
        self.bench.jqm.save(Package(STAGED_PACKAGE, entries=entries, on_error=OnError.CONTINUE))
        self.plain()
        self.package()

    def plain(self) -> Sample:
        noop = self.bench.noop
        # Each group, then one task (the chord's body, which sends the rest), as jqm compiles a run.
        steps = [step for _ in range(self.stages) for step in (group([noop.si()] * self.width), noop.si())]
        started, cpu = time.perf_counter(), time.process_time()
        last = chain(*steps).apply_async()
        sent = time.process_time() - cpu
        last.get(timeout=self.bench.timeout_s, interval=0.005)
        return Sample(time.perf_counter() - started, sent)

    def package(self) -> Sample:
        started, cpu = time.perf_counter(), time.process_time()
        run = self.bench.jqm.run_now(STAGED_PACKAGE)
        sent = time.process_time() - cpu
        self.bench._wait_runs([run.id], poll_s=0.005)
        return Sample(time.perf_counter() - started, sent)


def run(args: argparse.Namespace) -> str:
    with ExitStack() as stack:
        sides: dict[str, Stages] = {}
        for side in SIDES:
            bench, _worker, description = _bench_and_worker(stack, args.backend, args, {}, results_of(side))
            sides[side] = Stages(bench, args.stages, args.width)
        started, load_before, steal = time.monotonic(), os.getloadavg(), Steal()
        for stages in sides.values():
            stages.prepare()
        samples: dict[tuple[str, str], list[float]] = {(s, shape): [] for s in SIDES for shape in "fg"}
        for rep in range(args.repeat):
            for side in SIDES if rep % 2 == 0 else reversed(SIDES):
                shapes = [("f", sides[side].plain), ("g", sides[side].package)]
                for shape, measure in shapes if rep % 2 == 0 else reversed(shapes):
                    samples[(side, shape)].append(measure().seconds)
        load_after = os.getloadavg()
        return report(args, description, samples, load_before, load_after, steal, time.monotonic() - started)


def report(
    args: argparse.Namespace,
    description: str,
    samples: dict[tuple[str, str], list[float]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    steal: Steal,
    seconds: float,
) -> str:
    labels = {
        "f": f"(f) plain chain, {args.stages} groups of {args.width}",
        "g": f"(g) package, {args.stages} run orders of {args.width}",
    }
    lines = [
        f"backend {args.backend}: {description}; worker prefork ×{args.concurrency} per result backend; "
        f"median of {args.repeat}",
        f"{'measurement':<40}{'result backend':>16}{'ms/stage':>10}   spread ms/stage",
    ]
    per_stage: dict[tuple[str, str], Spread] = {
        key: Spread(tuple(1000 * s / args.stages for s in values)) for key, values in samples.items()
    }
    for shape in "fg":
        for side, name in (("jqm", "jqm+ (jqm's)"), ("db", "db+ (Celery's)")):
            spread = per_stage[(side, shape)]
            lines.append(
                f"{labels[shape]:<40}{name:>16}{spread.median:>10.1f}   {spread.range_text('{:.1f}')}"
            )
        pairs = zip(samples[("db", shape)], samples[("jqm", shape)], strict=True)
        paired = Spread(tuple(db / jqm for db, jqm in pairs))
        ratio = per_stage[("db", shape)].median / per_stage[("jqm", shape)].median
        lines.append(f"{labels[shape]}: db+/jqm+ time {ratio:.2f} (per repetition {paired.range_text()})")
    load = "/".join(f"{v:.1f}" for v in load_before) + " before, " + "/".join(f"{v:.1f}" for v in load_after)
    lines.append(f"(measured in {seconds:.0f} s; load {load}; {steal.text()})")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chords", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, default="embedded", help="broker and store")
    parser.add_argument(
        "--stages", type=int, default=10, help="groups in the chain, run orders in the package"
    )
    parser.add_argument("--width", type=int, default=2, help="tasks per group, entries per run order")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the median is reported")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes of each worker")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per measurement")
    args = parser.parse_args(argv)
    # What dispatch's bench takes and this benchmark does not use.
    args.n, args.burst = 1, 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(
        f"jqm-celery chord benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"Python {platform.python_version()}, Celery {celery.__version__}; "
        f"stages={args.stages}, width={args.width}, repeat={args.repeat}",
        flush=True,
    )
    print(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
