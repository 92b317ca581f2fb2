"""The django-celery-beat bridge in a real Django project, on SQLite and PostgreSQL, with a real worker.

Every Django test lives in this module: Django is configured once per process (see ``django_site``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from beat_schedules.django import DjangoBeatBridge
from jqm_celery import (
    Entry,
    JobQueueManager,
    OnError,
    Package,
    PackageStatus,
    Recurrence,
    RunStatus,
    ValidationError,
)
from tests.integration import django_site
from tests.integration.conftest import ROOT, Backend
from tests.integration.testapp import make_app
from tests.services import postgres_database

pytestmark = pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)

DJANGO_DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def django_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Django configured once for the session, with django-celery-beat's tables on SQLite and PostgreSQL."""
    with postgres_database() as url:
        databases = {
            "default": django_site.sqlite_database(tmp_path_factory.mktemp("django") / "site.sqlite3"),
            "postgresql": django_site.postgres_database(url),
        }
        databases["sqlite"] = databases["default"]
        django_site.configure(databases, migrate=True)
        yield databases
        from django.db import connections

        connections.close_all()


@pytest.fixture(scope="module", params=DJANGO_DATABASES)
def django_db(request: pytest.FixtureRequest, django_databases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    django_site.BeatRouter.alias = "default" if request.param == "sqlite" else request.param
    return django_databases[request.param]


class DjangoWorker:
    """A real Celery worker inside the Django project, with the bridge connected, on its own queue."""

    def __init__(self, conf: dict[str, Any], database: dict[str, Any], folder: Path) -> None:
        self.log_path = folder / f"django-worker-{uuid.uuid4().hex[:6]}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.django_site",
                    json.dumps(conf),
                    json.dumps(database),
                    "--loglevel=INFO",
                    "-n",
                    f"django{uuid.uuid4().hex[:6]}@%h",
                    "--without-mingle",
                    "--without-gossip",
                    "--pool=prefork",
                    "--concurrency=2",
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for(lambda: " ready." in self.log() or self.process.poll() is not None, timeout=60)
        assert self.process.poll() is None, f"the Django worker did not start:\n{self.log()[-4000:]}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture(scope="module")
def site(backend: Backend, django_db: dict[str, Any]) -> Iterator[Celery]:
    """The Django shop: an app on its own queue (jqm store and broker of ``backend``) and its worker."""
    conf = {**backend.conf, "task_default_queue": f"jqm-django-{uuid.uuid4().hex[:10]}"}
    worker = DjangoWorker(conf, django_db, backend.tmp)
    yield make_app(conf)
    worker.stop()


@pytest.fixture
def jqm(site: Celery) -> JobQueueManager:
    return JobQueueManager.of(site)


@pytest.fixture
def bridge(jqm: JobQueueManager) -> Iterator[DjangoBeatBridge]:
    connected = DjangoBeatBridge(jqm).connect()
    yield connected
    connected.disconnect()


def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _rows(name: str) -> dict[str, Any]:
    from django_celery_beat.models import PeriodicTask

    rows = PeriodicTask.objects.filter(name__startswith=f"jqm:{name}:").select_related(
        "crontab", "interval", "clocked"
    )
    return {row.name: row for row in rows}


def _package(name: str, *recurrences: Recurrence, entry: Entry | None = None, **options: Any) -> Package:
    entries = [entry or Entry("tests.noop")]
    return Package(name, entries=entries, recurrences=list(recurrences), **options)


def _far_future() -> datetime:
    return datetime.now(UTC) + timedelta(days=30)


def test_activation_writes_one_row_per_recurrence_that_starts_the_package_through_jqm(
    jqm: JobQueueManager, bridge: DjangoBeatBridge, name: str
) -> None:
    at = _far_future().replace(microsecond=0)
    jqm.save(
        _package(
            name,
            Recurrence.cron("30 2 * * mon-fri", tz="Europe/Amsterdam"),
            Recurrence.every(timedelta(hours=4)),
            Recurrence.once(at),
        )
    )
    jqm.activate(name)

    cron, every, once = (_rows(name)[f"jqm:{name}:{position}"] for position in (1, 2, 3))
    assert cron._state.db == django_site.BeatRouter.alias
    for row in (cron, every, once):
        assert (row.task, json.loads(row.args), row.enabled) == ("jqm.run_package", [name], True)
    assert (cron.crontab.minute, cron.crontab.hour, cron.crontab.day_of_week) == ("30", "2", "1,2,3,4,5")
    assert str(cron.crontab.timezone) == "Europe/Amsterdam"
    assert (every.interval.every, every.interval.period) == (4, "hours")
    assert (once.clocked.clocked_time, once.one_off) == (at, True)


def test_hold_disables_the_rows_and_activate_enables_them_again(
    jqm: JobQueueManager, bridge: DjangoBeatBridge, name: str
) -> None:
    jqm.save(_package(name, Recurrence.cron("0 3 * * *"), Recurrence.every(timedelta(hours=6))))
    jqm.activate(name)

    jqm.hold(name)
    held = {row.enabled for row in _rows(name).values()}
    jqm.activate(name)

    assert held == {False}
    assert {row.enabled for row in _rows(name).values()} == {True}


def test_an_edit_rewrites_the_rows_and_deletes_those_of_removed_recurrences(
    jqm: JobQueueManager, bridge: DjangoBeatBridge, name: str
) -> None:
    jqm.save(_package(name, Recurrence.cron("0 3 * * *"), Recurrence.every(timedelta(hours=6))))
    jqm.activate(name)
    jqm.hold(name)

    jqm.save(_package(name, Recurrence.cron("15 4 * * sat", tz="America/New_York")))
    jqm.activate(name)

    rows = _rows(name)
    assert list(rows) == [f"jqm:{name}:1"]
    crontab = rows[f"jqm:{name}:1"].crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week, str(crontab.timezone)) == (
        "15",
        "4",
        "6",
        "America/New_York",
    )


def test_a_once_recurrence_that_replaces_a_row_which_has_run_is_written_to_fire(
    jqm: JobQueueManager, bridge: DjangoBeatBridge, name: str
) -> None:
    jqm.save(_package(name, Recurrence.every(timedelta(hours=6))))
    jqm.activate(name)
    _rows(name)[f"jqm:{name}:1"].__class__.objects.filter(name=f"jqm:{name}:1").update(total_run_count=3)
    jqm.hold(name)

    jqm.save(_package(name, Recurrence.once(_far_future())))
    jqm.activate(name)

    row = _rows(name)[f"jqm:{name}:1"]
    assert (row.one_off, row.enabled, row.total_run_count) == (True, True, 0)


def test_deleting_a_package_deletes_its_rows(
    jqm: JobQueueManager, bridge: DjangoBeatBridge, name: str
) -> None:
    jqm.save(_package(name, Recurrence.every(timedelta(hours=6))))
    jqm.activate(name)
    jqm.hold(name)

    jqm.delete(name)

    assert _rows(name) == {}


def test_a_weekly_window_is_written_as_one_crontab_per_minute_pattern(
    jqm: JobQueueManager, bridge: DjangoBeatBridge, name: str
) -> None:
    # 08:40, 09:00, 09:20, 09:40, 10:00
    window = Recurrence.weekly(
        "mon-fri", start="08:40", end="10:00", every=timedelta(minutes=20), tz="Asia/Tokyo"
    )
    jqm.save(_package(name, window))
    jqm.activate(name)

    rows = _rows(name)
    assert sorted(rows) == [f"jqm:{name}:1.1", f"jqm:{name}:1.2", f"jqm:{name}:1.3"]
    patterns = sorted(
        (row.crontab.minute, row.crontab.hour, str(row.crontab.timezone)) for row in rows.values()
    )
    assert patterns == [("0", "10", "Asia/Tokyo"), ("0,20,40", "9", "Asia/Tokyo"), ("40", "8", "Asia/Tokyo")]


def test_activation_is_refused_when_django_celery_beat_cannot_express_a_recurrence(
    jqm: JobQueueManager, bridge: DjangoBeatBridge, name: str
) -> None:
    jqm.save(_package(name, Recurrence.cron("0 0 1 * mon")))

    with pytest.raises(ValidationError, match=r"cannot express it"):
        jqm.activate(name)

    assert jqm.package(name).status is PackageStatus.DRAFT
    assert _rows(name) == {}


def test_a_full_sync_restores_missing_rows_and_deletes_rows_of_unknown_packages(
    jqm: JobQueueManager, bridge: DjangoBeatBridge, name: str
) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    jqm.save(_package(name, Recurrence.every(timedelta(hours=6))))
    jqm.activate(name)
    _rows(name)[f"jqm:{name}:1"].delete()
    hourly = IntervalSchedule.objects.create(every=1, period="hours")
    PeriodicTask.objects.create(name=f"jqm:gone-{name}:1", task="jqm.run_package", interval=hourly)

    report = bridge.sync()

    assert list(_rows(name)) == [f"jqm:{name}:1"]
    assert not PeriodicTask.objects.filter(name=f"jqm:gone-{name}:1").exists()
    assert report.deleted >= 1


def test_a_sync_without_changes_writes_nothing(
    jqm: JobQueueManager, bridge: DjangoBeatBridge, name: str
) -> None:
    jqm.save(_package(name, Recurrence.cron("0 3 * * *"), Recurrence.every(timedelta(hours=6))))
    jqm.activate(name)

    assert bridge.sync_package(name).written == 0


def test_a_package_stopped_by_its_on_error_policy_has_its_rows_disabled_by_the_worker(
    jqm: JobQueueManager, bridge: DjangoBeatBridge, name: str
) -> None:
    jqm.save(
        _package(
            name,
            Recurrence.every(timedelta(hours=6)),
            entry=Entry("tests.fail_job", args=["failed on purpose"]),
            on_error=OnError.STOP,
        )
    )
    jqm.activate(name)

    run = jqm.run_now(name)

    run.wait(timeout=30)
    assert jqm.package(name).status is PackageStatus.ERROR
    _wait_for(lambda: {row.enabled for row in _rows(name).values()} == {False}, timeout=10)


def test_database_scheduler_sends_run_package_and_the_worker_starts_the_run(
    site: Celery, jqm: JobQueueManager, bridge: DjangoBeatBridge, name: str
) -> None:
    from django_celery_beat.schedulers import DatabaseScheduler

    jqm.save(_package(name, Recurrence.every(timedelta(seconds=2))))
    jqm.activate(name)
    scheduler = DatabaseScheduler(app=site)
    try:
        deadline = time.monotonic() + 20
        while not jqm.runs(name):
            assert time.monotonic() < deadline, "django-celery-beat started no run"
            time.sleep(max(0.0, min(scheduler.tick(), 0.1)))  # tick() may return a negative interval
        run = jqm.runs(name)[-1]
        finished = run.wait(timeout=30)
    finally:
        scheduler.close()
        jqm.hold(name)

    assert (finished.trigger, finished.status) == ("django-celery-beat", RunStatus.SUCCEEDED)


@pytest.fixture
def elsewhere(site: Celery) -> JobQueueManager:
    """A manager of the same store in a process without the bridge, as ``jqm web`` and the CLI have."""
    keys = ("broker_url", "result_backend", "jqm_database_url", "task_default_queue")
    return JobQueueManager.of(make_app({key: site.conf[key] for key in keys}))


def test_the_scheduler_follows_a_hold_and_an_activation_made_in_another_process(
    site: Celery, jqm: JobQueueManager, bridge: DjangoBeatBridge, elsewhere: JobQueueManager, name: str
) -> None:
    from beat_schedules.django import Scheduler

    jqm.save(_package(name, Recurrence.cron("0 3 * * *"), Recurrence.every(timedelta(hours=6))))
    jqm.activate(name)
    scheduler = Scheduler(app=site)
    try:
        elsewhere.hold(name)
        assert {row.enabled for row in _rows(name).values()} == {True}
        scheduler.schedule_changed()
        held = {row.enabled for row in _rows(name).values()}
        elsewhere.activate(name)
        scheduler.schedule_changed()
        active = {row.enabled for row in _rows(name).values()}
        elsewhere.hold(name)
        elsewhere.delete(name)
        scheduler.schedule_changed()
    finally:
        scheduler.close()

    assert (held, active) == ({False}, {True})
    assert _rows(name) == {}


def test_a_fire_of_a_held_package_starts_nothing_and_logs_one_warning_without_a_traceback(
    jqm: JobQueueManager, elsewhere: JobQueueManager, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    from jqm_celery.firing import DJANGO_TRIGGER, start_scheduled_run

    jqm.save(_package(name, Recurrence.cron("0 3 * * *")))
    jqm.activate(name)
    elsewhere.hold(name)

    assert start_scheduled_run(jqm._runtime, name, DJANGO_TRIGGER) is None
    warnings = [r for r in caplog.records if r.name == "jqm_celery.beat" and r.levelname == "WARNING"]
    assert [r.exc_info for r in warnings] == [None]
    assert "is ON_HOLD" in warnings[0].getMessage()
    assert jqm.runs(name) == []
