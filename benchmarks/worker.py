"""A benchmark's Celery worker, and what a worker holds in memory.

``python -m benchmarks.worker module:factory CONF_JSON [celery args…]`` runs a worker of the app the
factory returns (``benchmarks.harness.Worker`` starts it so).

``python -m benchmarks.worker --memory [--repeat 3] [--concurrency 2]`` measures, side by side, the
resident memory of a worker (main process and pool processes) of an app with a ``JobQueueManager``
against a plain Celery worker of the same app without it, on Redis (broker, results) and PostgreSQL (the
store); and the same app's worker as ``jqm worker --queue NAME`` runs it (``benchmarks.cli_app``).
Then (``--growth``, default 200) each side runs that many runs of the same shape with parallel stages,
one after the other (jqm: a package; the peer: a plain chain of the same tasks and groups), and
it reports how much the pool processes' RSS grew and how many result channels were left subscribed in
Redis: what a worker keeps of runs that have ended.

With ``JQM_BENCH_PROFILE_DIR`` set, every pool process runs under cProfile and writes
``<dir>/pool-<pid>.prof`` when it exits (read them with ``python -m pstats``); it counts wall time, or CPU
time with ``JQM_BENCH_PROFILE_CLOCK=cpu``.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery, chain, group, signals
from celery.canvas import Signature
from celery.result import ResultSet

from benchmarks.harness import (
    PROFILE_ENV,
    READY_ENV,
    REDIS_BROKER_DB,
    REDIS_RESULTS_DB,
    Spread,
    Worker,
    delete_queues,
    postgres_database,
    redis_url,
    require,
    scratch_dir,
    unique_queue,
)
from benchmarks.memory import (
    arguments,
    children,
    compare,
    forbidden_in,
    import_report,
    load_text,
    print_report,
    private_mib,
    rss_mib,
    top_packages,
)

_profiler: cProfile.Profile | None = None


def _ready(**_: Any) -> None:
    path = os.environ.get(READY_ENV)
    if path:
        Path(path).touch()


def _start_profile(**_: Any) -> None:
    global _profiler
    if os.environ.get(PROFILE_ENV):
        # CPU time with JQM_BENCH_PROFILE_CLOCK=cpu: on a loaded machine, wall time charges a function
        # for the time its process waited for a core.
        cpu = os.environ.get("JQM_BENCH_PROFILE_CLOCK") == "cpu"
        _profiler = cProfile.Profile(time.process_time) if cpu else cProfile.Profile()
        _profiler.enable()


def _dump_profile(**_: Any) -> None:
    folder = os.environ.get(PROFILE_ENV)
    if _profiler is not None and folder:
        _profiler.disable()
        Path(folder).mkdir(parents=True, exist_ok=True)
        _profiler.dump_stats(str(Path(folder) / f"pool-{os.getpid()}.prof"))


signals.worker_ready.connect(_ready)
signals.worker_process_init.connect(_start_profile)
signals.worker_process_shutdown.connect(_dump_profile)


# -- what a worker holds in memory ----------------------------------------------------------------

NOOP = "bench.noop"
REPORT = "bench.process"
PACKAGE = "bench-memory"
GROUPS_PACKAGE = "bench-memory-groups"
#: Stages of a run of ``--growth``: one task each, every third one two tasks in parallel.
GROWTH_STAGES = 12
#: Runs with parallel stages before the pool processes' RSS is read for ``--growth``.
GROWTH_WARM_UP = 10
TIMEOUT_S = 300.0


def memory_app(conf: dict[str, Any]) -> Celery:
    """A trivial task, a task that reports its process, and (``bench_jqm`` in conf) a JobQueueManager."""
    settings = dict(conf)
    with_jqm = settings.pop("bench_jqm", False)
    app = Celery("jqm-memory-bench")
    app.conf.update(settings)
    app.task(name=NOOP, shared=False)(_noop)
    app.task(name=REPORT, shared=False)(_report)
    if with_jqm:
        from jqm_celery import JobQueueManager

        JobQueueManager(app)
    return app


def _noop() -> None:
    return None


def _report() -> dict[str, Any]:
    return {"pid": os.getpid(), "modules": sorted(sys.modules)}


def _parallel(stage: int) -> bool:
    return stage % 3 == 1


def grouped_entries() -> list[Any]:
    """The entries of ``GROUPS_PACKAGE``: ``GROWTH_STAGES`` run orders, every third one of two entries."""
    from jqm_celery import Entry

    return [
        Entry(NOOP, run_order=stage * 10)
        for stage in range(GROWTH_STAGES)
        for _ in range(2 if _parallel(stage) else 1)
    ]


def grouped_chain(app: Celery) -> Signature:
    """The plain Celery peer of ``GROUPS_PACKAGE``: the same stages as a chain of tasks and groups."""
    noop = app.signature(NOOP, immutable=True)
    return chain(
        *[
            group(noop.clone(), noop.clone()) if _parallel(stage) else noop.clone()
            for stage in range(GROWTH_STAGES)
        ]
    )


def subscribed_result_channels(conf: dict[str, Any]) -> int:
    """How many result channels some client of the Redis server is subscribed to now."""
    import redis

    client = redis.Redis.from_url(conf["result_backend"])
    try:
        return len(client.pubsub_channels("celery-task-meta-*"))
    finally:
        client.close()


@dataclass(frozen=True)
class Sample:
    """One worker's resident memory once warmed up, what its pool process had imported, and what its pool
    processes and the result server kept of the ``--growth`` runs."""

    main_mib: float
    pool_mib: float
    pool_private_mib: float
    modules: list[str]
    growth_mib: float
    channels_left: int


#: The workers ``--memory`` measures: a plain Celery worker of the app without jqm (the peer), a ``celery
#: worker`` of the app with jqm, and that app's worker as ``jqm worker`` starts it (``jqm --app …
#: worker --queue NAME``: the worker runs in jqm's command's process).
PLAIN, WITH_JQM, JQM_COMMAND = "plain", "jqm", "jqm worker"


def measure_worker(conf: dict[str, Any], side: str, args: argparse.Namespace, folder: Path) -> Sample:
    """Start a worker, give every pool process work (jqm: package runs too), read its RSS."""
    from jqm_celery import result_waits  # here: this module is the peer's worker too

    with_jqm = side != PLAIN
    side_conf = {**conf, "bench_jqm": with_jqm}
    app = memory_app(side_conf)
    kept_before = result_waits.registered(app.backend)
    if side == JQM_COMMAND:
        command = [sys.executable, "-m", "jqm_celery.cli", "--app", "benchmarks.cli_app:app", "worker"]
        command += ["--queue", conf["task_default_queue"], "--default-pool-size", str(args.concurrency)]
        started = Worker("", side_conf, folder=folder, command=[*command, "--loglevel", "WARNING"])
    else:
        pool = ["--pool=prefork", f"--concurrency={args.concurrency}", "--loglevel=WARNING", "-O", "fair"]
        started = Worker("benchmarks.worker:memory_app", side_conf, pool, folder)
    with started as worker:
        assert worker.process is not None
        ResultSet([app.send_task(NOOP) for _ in range(args.tasks)]).get(timeout=TIMEOUT_S, interval=0.01)
        if with_jqm:
            from jqm_celery import JobQueueManager

            jqm = JobQueueManager.of(app)
            for _ in range(args.runs):
                jqm.run_now(PACKAGE).wait(TIMEOUT_S, poll_s=0.02)
        modules = app.send_task(REPORT).get(timeout=TIMEOUT_S)["modules"]
        pool_pids = children(worker.process.pid)
        main, pool_rss = rss_mib(worker.process.pid), max(rss_mib(pid) for pid in pool_pids)
        pool_private = max(private_mib(pid) for pid in pool_pids)

        def grouped_run() -> None:
            if with_jqm:
                jqm.run_now(GROUPS_PACKAGE).wait(TIMEOUT_S, poll_s=0.02)
            else:
                grouped_chain(app).apply_async().get(timeout=TIMEOUT_S, interval=0.02)

        for _ in range(GROWTH_WARM_UP):  # what the first runs with groups import and cache
            grouped_run()
        before_mib = sum(rss_mib(pid) for pid in pool_pids)
        before_channels = subscribed_result_channels(conf)
        for _ in range(args.growth):
            grouped_run()
        growth_mib = sum(rss_mib(pid) for pid in children(worker.process.pid)) - before_mib
        channels_left = subscribed_result_channels(conf) - before_channels
        # This process keeps the results of the peer's groups (Celery's client registers them to wait on,
        # and nothing waits): let go of them now, while the interpreter can still unsubscribe.
        result_waits.let_go(app.backend, kept_before)
        return Sample(
            main_mib=main,
            pool_mib=pool_rss,
            pool_private_mib=pool_private,
            modules=modules,
            growth_mib=growth_mib,
            channels_left=channels_left,
        )


def memory_report(args: argparse.Namespace) -> str:
    require("redis")
    with scratch_dir() as folder, postgres_database("jqm_bench_memory") as url:
        conf: dict[str, Any] = {
            "broker_url": redis_url(REDIS_BROKER_DB),
            "result_backend": redis_url(REDIS_RESULTS_DB),
            "jqm_database_url": url,
            "task_default_queue": unique_queue(),
            "result_expires": 600,
        }
        from jqm_celery import Entry, JobQueueManager, OnError, Package

        app = memory_app({**conf, "bench_jqm": True})
        jqm = JobQueueManager.of(app)
        jqm.upgrade_db()
        jqm.save(Package(PACKAGE, entries=[Entry(NOOP)], on_error=OnError.CONTINUE))
        jqm.save(Package(GROUPS_PACKAGE, entries=grouped_entries(), on_error=OnError.CONTINUE))
        sides = [PLAIN, WITH_JQM, JQM_COMMAND]
        samples: dict[str, list[Sample]] = {side: [] for side in sides}
        try:
            for index in range(args.repeat):
                for side in sides if index % 2 == 0 else reversed(sides):
                    samples[side].append(measure_worker(conf, side, args, folder))
        finally:
            delete_queues(app, [conf["task_default_queue"]])
            jqm.close()
    ours, plain, command = samples[WITH_JQM], samples[PLAIN], samples[JQM_COMMAND]
    extra = sorted(top_packages(ours[-1].modules) - top_packages(plain[-1].modules))
    growth = {side: Spread(tuple(s.growth_mib for s in samples[side])) for side in samples}
    channels = {side: Spread(tuple(s.channels_left for s in samples[side])) for side in samples}
    pairs = list(zip(command, ours, strict=True))
    over = {
        process: Spread(tuple(getattr(a, process) - getattr(b, process) for a, b in pairs))
        for process in ("pool_mib", "main_mib")
    }
    return "\n".join(
        [
            f"worker, prefork x{args.concurrency}, Redis broker and results, PostgreSQL store; "
            f"{args.repeat} alternating repetitions; median (low–high); peer: the same app without jqm",
            compare("pool process RSS", [s.pool_mib for s in ours], [s.pool_mib for s in plain]),
            compare(
                "pool process private (USS)",
                [s.pool_private_mib for s in ours],
                [s.pool_private_mib for s in plain],
            ),
            compare("main process RSS", [s.main_mib for s in ours], [s.main_mib for s in plain]),
            compare("`jqm worker`: pool process", [s.pool_mib for s in command], [s.pool_mib for s in plain]),
            compare("`jqm worker`: main process", [s.main_mib for s in command], [s.main_mib for s in plain]),
            f"   `jqm worker --queue` against `celery worker` of the same app: pool process "
            f"{over['pool_mib'].text('{:+.1f}')} MiB, main process {over['main_mib'].text('{:+.1f}')} MiB",
            f"   modules in a pool process: jqm {len(ours[-1].modules)}, peer {len(plain[-1].modules)}",
            f"   forbidden there: jqm {forbidden_in(ours[-1].modules) or 'none'}, "
            f"peer {forbidden_in(plain[-1].modules) or 'none'}",
            f"   top-level packages jqm's pool process has and the peer's has not: {', '.join(extra)}",
            f"   after {GROWTH_WARM_UP} + {args.growth} runs of {GROWTH_STAGES} stages, every third two "
            "tasks in parallel (jqm: a package; peer: a plain chain of those tasks and groups), "
            "one after another:",
            f"   {'pool processes RSS grew by':<30} jqm {growth[WITH_JQM].text('{:.1f}')} MiB   "
            f"`jqm worker` {growth[JQM_COMMAND].text('{:.1f}')} MiB   "
            f"peer {growth[PLAIN].text('{:.1f}')} MiB",
            f"   {'result channels left':<30} jqm {channels[WITH_JQM].text('{:.0f}')}   "
            f"`jqm worker` {channels[JQM_COMMAND].text('{:.0f}')}   peer {channels[PLAIN].text('{:.0f}')}  "
            "(subscribed in Redis by the worker and by this process)",
            import_report(args.repeat),
            f"   {load_text()}",
        ]
    )


def memory_main(argv: list[str]) -> None:
    parser = arguments("benchmarks.worker")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork pool processes (default 2)")
    parser.add_argument("--tasks", type=int, default=200, help="trivial tasks sent to warm up (default 200)")
    parser.add_argument("--runs", type=int, default=20, help="one-entry package runs, jqm (default 20)")
    parser.add_argument(
        "--growth",
        type=int,
        default=200,
        help="runs with parallel stages, after the RSS is read (default 200)",
    )
    args = parser.parse_args(argv)
    print_report("worker memory", lambda: memory_report(args))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--memory"]:
        memory_main(argv)
        return
    usage = "\n\n".join((__doc__ or "").split("\n\n")[1:3])
    if argv[:1] in (["-h"], ["--help"]):
        print(usage)
        return
    if len(argv) < 2 or ":" not in argv[0]:
        sys.exit(f"{usage}\n\nerror: give module:factory and CONF_JSON, or --memory")
    module, _, attribute = argv[0].partition(":")
    factory = getattr(importlib.import_module(module), attribute)
    app = factory(json.loads(argv[1]))
    app.worker_main(["worker", *argv[2:]])


if __name__ == "__main__":
    main(sys.argv[1:])
