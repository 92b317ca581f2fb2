"""A minimal Django project with django-celery-beat, configured in code, and a worker that runs in it.

``python -m tests.integration.django_site CONF_JSON DATABASE_JSON [celery worker args…]`` runs a worker of
the tests' app inside that Django project with the bridge connected, as a Django shop's worker does.
Django can be configured once per process, so the test process configures it once with every database it
needs and :class:`BeatRouter` points django-celery-beat's tables at the one a test is using.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url


class BeatRouter:
    """Sends django-celery-beat's reads and writes to ``alias``."""

    alias = "default"

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self.alias if model._meta.app_label == "django_celery_beat" else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return self.db_for_read(model, **hints)


def sqlite_database(path: Path) -> dict[str, Any]:
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": {"timeout": 20}}


def postgres_database(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parsed.database,
        "USER": parsed.username or "postgres",
        "PASSWORD": parsed.password or "",
        "HOST": parsed.host or "127.0.0.1",
        "PORT": str(parsed.port or 5432),
    }


def configure(databases: dict[str, dict[str, Any]], *, migrate: bool) -> None:
    """Configure Django for this process (once) and, if asked, create django-celery-beat's tables."""
    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django_celery_beat"],
        DATABASES=databases,
        DATABASE_ROUTERS=[f"{__name__}.BeatRouter"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()
    if migrate:
        for alias in databases:
            call_command("migrate", database=alias, verbosity=0)
        connections.close_all()


def main(argv: list[str]) -> None:
    from beat_schedules.django import DjangoBeatBridge
    from jqm_celery import JobQueueManager
    from tests.integration.testapp import make_app

    configure({"default": json.loads(argv[1])}, migrate=False)
    app = make_app(json.loads(argv[0]))
    DjangoBeatBridge(JobQueueManager.of(app)).connect()
    app.worker_main(["worker", *argv[2:]])


if __name__ == "__main__":
    main(sys.argv[1:])
