"""A real ``celery beat`` for ``benchmarks.beat_scale``.

``python -m benchmarks.beat_process CONF_JSON SCHEDULER``:

``SCHEDULER`` is ``jqm`` (``beat_schedules:PackageScheduler``) or ``django`` (django-celery-beat's
``DatabaseScheduler``, with Django configured on the jqm store's PostgreSQL database), both on an app with
a ``JobQueueManager``; or, on the same app without it, ``celery`` (Celery's default
``PersistentScheduler``) or ``redbeat`` (RedBeat's ``RedBeatScheduler``, if ``celery-redbeat`` is
installed).

``python -m benchmarks.beat_process --memory [--repeat 3]`` measures, side by side, the resident memory of
``celery beat`` with PackageScheduler against plain ``celery beat`` and RedBeat on the same app, and what
each imported (names written at exit to ``JQM_BENCH_BEAT_MODULES``).

With ``JQM_BENCH_BEAT_PROFILE`` set to a file name, beat runs under cProfile (CPU time) and writes the
profile there when it stops. ``JQM_BENCH_BEAT_LOGLEVEL`` sets its log level (INFO; DEBUG adds how long each
tick took to insert and to send its runs).
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from celery import Celery

from benchmarks.harness import (
    REDIS_BROKER_DB,
    REDIS_REDBEAT_DB,
    REDIS_RESULTS_DB,
    delete_queues,
    postgres_database,
    redis_url,
    require,
    scratch_dir,
    unique_queue,
)
from benchmarks.memory import arguments, compare, forbidden_in, load_text, print_report, top_packages

SCHEDULERS = {
    "jqm": "beat_schedules:PackageScheduler",
    "django": "django_celery_beat.schedulers:DatabaseScheduler",
    "celery": "celery.beat:PersistentScheduler",
    "redbeat": "redbeat:RedBeatScheduler",
}
#: Schedulers that run on the app without a JobQueueManager.
PLAIN = ("celery", "redbeat")
MODULES_ENV = "JQM_BENCH_BEAT_MODULES"
NOOP = "bench.noop"
PACKAGES = 20


def configure_django(database_url: str, *, migrate: bool) -> None:
    """Configure Django for this process with django-celery-beat's tables in the PostgreSQL database."""
    import django
    from django.conf import settings
    from django.core.management import call_command
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django_celery_beat"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": url.database,
                "USER": url.username or "postgres",
                "PASSWORD": url.password or "",
                "HOST": url.host or "127.0.0.1",
                "PORT": str(url.port or 5432),
            }
        },
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()
    if migrate:
        call_command("migrate", verbosity=0)


def plain_app(conf: dict[str, Any]) -> Celery:
    """The beat benchmarks' app without jqm: one trivial task, its publishes recorded for the lateness."""
    from benchmarks.beat_lateness import make_plain_app

    app: Celery = make_plain_app(conf)
    return app


def _write_modules() -> None:
    Path(os.environ[MODULES_ENV]).write_text("\n".join(sorted(sys.modules)))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--memory"]:
        memory_main(argv)
        return
    conf: dict[str, Any] = json.loads(argv[0])
    scheduler = argv[1]
    if os.environ.get(MODULES_ENV):
        atexit.register(_write_modules)
    if scheduler == "django":
        configure_django(conf["jqm_database_url"], migrate=False)
    if scheduler in PLAIN:
        app = plain_app(conf)
    else:
        from benchmarks.beat_scale import make_app

        app = make_app(conf)
    schedule = Path(tempfile.mkdtemp(prefix="jqm-beat-")) / "schedule"
    level = os.environ.get("JQM_BENCH_BEAT_LOGLEVEL", "INFO")
    argv = ["beat", "-S", SCHEDULERS[scheduler], "-s", str(schedule), "-l", level]
    profile_to = os.environ.get("JQM_BENCH_BEAT_PROFILE")
    if not profile_to:
        app.start(argv)
        return
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        app.start(argv)
    finally:
        profiler.disable()
        profiler.dump_stats(profile_to)


# -- what beat holds in memory --------------------------------------------------------------------


def measure_beat(conf: dict[str, Any], scheduler: str, folder: Path) -> tuple[float, list[str]]:
    """Start ``celery beat`` with the scheduler, wait until it has settled; its RSS and its modules."""
    from benchmarks.beat_lateness import BeatProcess

    modules = folder / f"modules-{scheduler}-{time.monotonic_ns()}.txt"
    os.environ[MODULES_ENV] = str(modules)
    try:
        beat = BeatProcess(conf, scheduler, folder)
    finally:
        del os.environ[MODULES_ENV]
    try:
        beat.wait_loaded(timeout_s=120)
        rss = beat.rss_mb()[0]
    finally:
        beat.stop()
    return rss, modules.read_text().split() if modules.exists() else []


def memory_report(args: argparse.Namespace) -> str:
    from benchmarks.beat_scale import make_app
    from jqm_celery import Entry, JobQueueManager, Package, Recurrence

    require("redis")
    schedulers = ["celery", "jqm"]
    if importlib.util.find_spec("redbeat") is not None:
        schedulers.append("redbeat")
    rss: dict[str, list[float]] = {name: [] for name in schedulers}
    modules: dict[str, list[str]] = {}
    with scratch_dir("jqm-bench-beat-") as folder, postgres_database("jqm_bench_beat_memory") as url:
        conf: dict[str, Any] = {
            "broker_url": redis_url(REDIS_BROKER_DB),
            "result_backend": redis_url(REDIS_RESULTS_DB),
            "redbeat_redis_url": redis_url(REDIS_REDBEAT_DB),
            "redbeat_key_prefix": unique_queue("redbeat"),
            "jqm_database_url": url,
            "task_default_queue": unique_queue(),
            "beat_schedule": {"noop": {"task": NOOP, "schedule": 86400.0}},
        }
        app = make_app(conf)
        jqm = JobQueueManager.of(app)
        jqm.upgrade_db()
        for index in range(PACKAGES):
            package = Package(
                f"bench-beat-{index:02d}", entries=[Entry(NOOP)], recurrences=[Recurrence.cron("@daily")]
            )
            jqm.save(package)
            jqm.activate(package.name)
        try:
            for index in range(args.repeat):
                for scheduler in schedulers if index % 2 == 0 else reversed(schedulers):
                    figure, modules[scheduler] = measure_beat(conf, scheduler, folder)
                    rss[scheduler].append(figure)
        finally:
            delete_queues(app, [conf["task_default_queue"]])
            jqm.close()
    lines = [
        f"celery beat once loaded, {PACKAGES} ACTIVE packages recurring daily, PostgreSQL store, Redis "
        f"broker; {args.repeat} alternating repetitions; median (low–high)",
        compare("RSS, peer: plain beat", rss["jqm"], rss["celery"]),
    ]
    if "redbeat" in rss:
        lines.append(compare("RSS, peer: RedBeat", rss["jqm"], rss["redbeat"]))
    else:
        lines.append("   RedBeat: not installed (pip install celery-redbeat)")
    for name in schedulers:
        lines.append(
            f"   {name}: {len(modules[name])} modules; forbidden: {forbidden_in(modules[name]) or 'none'}"
        )
    extra = sorted(top_packages(modules["jqm"]) - top_packages(modules["celery"]))
    lines.append(f"   top-level packages jqm's beat has and plain celery beat has not: {', '.join(extra)}")
    lines.append(f"   {load_text()}")
    return "\n".join(lines)


def memory_main(argv: list[str]) -> None:
    parser = arguments("benchmarks.beat_process")
    args = parser.parse_args(argv)
    print_report("beat memory", lambda: memory_report(args))


if __name__ == "__main__":
    main(sys.argv[1:])
