"""A real ``celery beat`` for ``benchmarks.beat_scale``.

``python -m benchmarks.beat_process CONF_JSON SCHEDULER``:

``SCHEDULER`` is ``jqm`` (``beat_schedules:PackageScheduler``), ``redbeat`` (RedBeat's scheduler, its
schedule in Redis) or ``django`` (django-celery-beat's ``DatabaseScheduler``, with Django configured on
the jqm store's PostgreSQL database).

With ``JQM_BENCH_BEAT_PROFILE`` set to a file name, beat runs under cProfile (CPU time) and writes the
profile there when it stops. ``JQM_BENCH_BEAT_LOGLEVEL`` sets its log level (INFO; DEBUG adds how long each
tick took to insert and to send its runs).
"""

from __future__ import annotations

import cProfile
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

SCHEDULERS = {
    "jqm": "beat_schedules:PackageScheduler",
    "django": "django_celery_beat.schedulers:DatabaseScheduler",
    "redbeat": "redbeat.RedBeatScheduler",
}


def configure_django(database_url: str, *, migrate: bool) -> None:
    """Configure Django for this process with django-celery-beat's tables in the PostgreSQL database."""
    import django
    from django.conf import settings
    from django.core.management import call_command

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


def main(argv: list[str]) -> None:
    conf: dict[str, Any] = json.loads(argv[0])
    scheduler = argv[1]
    if scheduler == "redbeat":
        from benchmarks.beat_lateness import make_plain_app as make_app
    else:
        from benchmarks.beat_scale import make_app
    if scheduler == "django":
        configure_django(conf["jqm_database_url"], migrate=False)
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


if __name__ == "__main__":
    main(sys.argv[1:])
