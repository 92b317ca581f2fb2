"""Schedule jqm packages through django-celery-beat instead of ``PackageScheduler``.

:class:`DjangoBeatBridge` writes each recurrence of a package as django-celery-beat rows (``CrontabSchedule``
with the recurrence's time zone, ``IntervalSchedule``, or a one-off ``ClockedSchedule``) whose
``PeriodicTask`` calls ``jqm.run_package(<package>)``; the run starts through jqm, with the package's
overlap rule. The rows are enabled while the package is ACTIVE and disabled otherwise; deleting the
package deletes them. ``connect()`` keeps them in step with every change made through the manager in this
process, and with the on-error policy's ACTIVE → ERROR (in the worker that applies it), so connect the
bridge in every process that runs jqm: the Django site and the Celery workers (``AppConfig.ready()``)::

    from beat_schedules.django import DjangoBeatBridge
    DjangoBeatBridge(JobQueueManager.of(app)).connect()

Importing this module does not need Django to be set up; using the bridge does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import router, transaction

from beat_schedules.periodic import ROW_PREFIX, PeriodicSpec, package_of, periodic_specs
from jqm_celery.definitions import Package
from jqm_celery.errors import NotFoundError, ValidationError
from jqm_celery.events import Event
from jqm_celery.manager import JobQueueManager
from jqm_celery.statuses import LogKind, PackageStatus
from jqm_celery.tasks import RUN_PACKAGE_TASK

__all__ = ["DjangoBeatBridge", "PackageRows", "SyncReport"]  # and Scheduler, built on first use

logger = logging.getLogger("beat_schedules")
#: ``follow`` reads again the packages changed this long before the newest change it saw: a change
#: committed late (its transaction began earlier) or stamped by a process whose clock runs behind is
#: still seen. Syncing an unchanged package writes nothing.
FOLLOW_OVERLAP = timedelta(minutes=1)


@dataclass(frozen=True)
class PackageRows:
    """A package's django-celery-beat rows after a sync."""

    package: str
    rows: tuple[str, ...]  # PeriodicTask names, in recurrence order
    enabled: bool
    written: int  # rows created or changed (unchanged rows keep django-celery-beat's run count)
    deleted: int


@dataclass(frozen=True)
class SyncReport:
    """What a full sync did."""

    packages: tuple[PackageRows, ...]
    #: Rows of packages that no longer exist.
    deleted: int
    #: ACTIVE packages whose recurrences django-celery-beat cannot express, and why; their rows are disabled.
    refused: dict[str, str] = field(default_factory=dict)


class DjangoBeatBridge:
    """Keeps django-celery-beat's ``PeriodicTask`` rows in step with the packages of ``jqm``.

    ``using`` is the Django database alias of django-celery-beat's tables (default: Django's router).
    """

    def __init__(self, jqm: JobQueueManager, *, using: str | None = None) -> None:
        self.jqm = jqm
        self.using = using
        self._followed: datetime | None = None
        self._count = 0
        self._started = False

    # -- hooks ------------------------------------------------------------------------------

    def connect(self) -> DjangoBeatBridge:
        """Refuse activations it cannot express, and sync each package this process changes."""
        if self.check not in self.jqm.activation_checks:
            self.jqm.activation_checks.append(self.check)
            self.jqm.package_listeners.append(self._on_change)
            self.jqm.event_listeners.append(self._on_event)
        return self

    def disconnect(self) -> None:
        for hooks, hook in (
            (self.jqm.activation_checks, self.check),
            (self.jqm.package_listeners, self._on_change),
            (self.jqm.event_listeners, self._on_event),
        ):
            if hook in hooks:
                hooks.remove(hook)  # type: ignore[arg-type]

    def check(self, package: Package) -> None:
        """Raise ValidationError if django-celery-beat cannot express one of the package's recurrences."""
        periodic_specs(package, self.jqm.clock.now())

    def _on_change(self, name: str) -> None:
        self.sync_package(name)

    def _on_event(self, event: Event) -> None:
        # The on-error policy stops a package in the worker that ran the failing job.
        if event.kind is LogKind.PACKAGE_STOPPED and event.package is not None:
            self.sync_package(event.package)

    # -- syncing ----------------------------------------------------------------------------

    def sync(self) -> SyncReport:
        """Sync every package, and delete the rows of packages that no longer exist."""
        names = self.jqm.package_names()
        synced: list[PackageRows] = []
        refused: dict[str, str] = {}
        for name in names:
            try:
                synced.append(self.sync_package(name))
            except ValidationError as exc:
                logger.error("django-celery-beat bridge: %s", exc)
                refused[name] = str(exc)
        models = _models()
        alias = self._alias(models)
        known = set(names)
        deleted = 0
        with transaction.atomic(using=alias):
            for row in models.PeriodicTask.objects.using(alias).filter(name__startswith=ROW_PREFIX):
                if package_of(row.name) not in (None, *known):
                    row.delete(using=alias)
                    deleted += 1
        return SyncReport(tuple(synced), deleted, refused)

    def follow(self) -> list[PackageRows]:
        """Sync the packages that changed since the last call, in whichever process they were changed,
        and delete the rows of deleted ones; the first call syncs every package.

        One query when nothing changed. A package django-celery-beat cannot express is logged and its
        rows stay disabled, as in :meth:`sync`.
        """
        asked_at = self.jqm.clock.now()
        changes = self.jqm.package_changes(None if not self._started else self._followed)
        synced: list[PackageRows] = []
        if not self._started or changes.count < self._count:
            report = self.sync()
            synced = list(report.packages)
        else:
            for name in changes.names:
                try:
                    synced.append(self.sync_package(name))
                except ValidationError as exc:
                    logger.error("django-celery-beat bridge: %s", exc)
        self._started = True
        self._count = changes.count
        if changes.newest is not None:
            # A package stamped ahead of this clock (another process's clock, or a test's) must not hide
            # the changes made until then: never follow from later than the moment of asking.
            self._followed = min(changes.newest, asked_at) - FOLLOW_OVERLAP
        return synced

    def sync_package(self, name: str) -> PackageRows:
        """Write the package's rows (enabled only while it is ACTIVE); delete them if it no longer exists.

        Raises ValidationError, after disabling the package's rows, for an ACTIVE package with a recurrence
        django-celery-beat cannot express.
        """
        try:
            state = self.jqm.package(name)
        except NotFoundError:
            return self._write(name, [], enabled=False)
        active = state.status is PackageStatus.ACTIVE
        try:
            specs = periodic_specs(state.definition, self.jqm.clock.now())
        except ValidationError:
            disabled = self._disable(name)
            if active:
                raise
            return disabled
        return self._write(name, specs, enabled=active)

    # -- rows -------------------------------------------------------------------------------

    def _alias(self, models: Any) -> str:
        return self.using or str(router.db_for_write(models.PeriodicTask))

    def _rows(self, models: Any, alias: str, name: str) -> dict[str, Any]:
        rows = models.PeriodicTask.objects.using(alias).filter(name__startswith=f"{ROW_PREFIX}{name}:")
        return {row.name: row for row in rows.select_related("crontab", "interval", "clocked")}

    def _disable(self, name: str) -> PackageRows:
        models = _models()
        alias = self._alias(models)
        with transaction.atomic(using=alias):
            rows = [row for row in self._rows(models, alias, name).values() if package_of(row.name) == name]
            changed = [row for row in rows if row.enabled]
            for row in changed:
                row.enabled = False
                row.save(using=alias)
        return PackageRows(name, tuple(sorted(row.name for row in rows)), False, len(changed), 0)

    def _write(self, name: str, specs: list[PeriodicSpec], *, enabled: bool) -> PackageRows:
        models = _models()
        alias = self._alias(models)
        args = json.dumps([name])
        written = 0
        with transaction.atomic(using=alias):
            existing = {n: row for n, row in self._rows(models, alias, name).items() if package_of(n) == name}
            for spec in specs:
                row = existing.pop(spec.name, None)
                row_enabled = enabled and not spec.finished
                if row is None or not _matches(row, spec, args, row_enabled):
                    _save(models, alias, row, spec, args, row_enabled)
                    written += 1
            for row in existing.values():
                row.delete(using=alias)
        return PackageRows(name, tuple(spec.name for spec in specs), enabled, written, len(existing))


def _models() -> Any:
    # Imported on first use: django-celery-beat's models need Django's app registry to be ready.
    from django_celery_beat import models

    return models


def _matches(row: Any, spec: PeriodicSpec, args: str, enabled: bool) -> bool:
    same = (
        row.task == RUN_PACKAGE_TASK
        and row.args == args
        and row.kwargs == "{}"
        and row.enabled == enabled
        and row.one_off == (spec.clocked is not None)
        and row.start_time == spec.start_time
        and row.expires == spec.expires
        and row.description == spec.description
        and row.solar_id is None
    )
    return same and _schedule(row) == _wanted_schedule(spec)


def _schedule(row: Any) -> tuple[object, ...] | None:
    if row.crontab is not None:
        c = row.crontab
        return ("crontab", c.minute, c.hour, c.day_of_month, c.month_of_year, c.day_of_week, str(c.timezone))
    if row.interval is not None:
        return ("interval", row.interval.every, row.interval.period)
    if row.clocked is not None:
        return ("clocked", row.clocked.clocked_time)
    return None


def _wanted_schedule(spec: PeriodicSpec) -> tuple[object, ...] | None:
    if spec.crontab is not None:
        c = spec.crontab
        return ("crontab", c.minute, c.hour, c.day_of_month, c.month_of_year, c.day_of_week, c.timezone)
    if spec.interval is not None:
        return ("interval", *spec.interval)
    if spec.clocked is not None:
        return ("clocked", spec.clocked)
    return None


def _save(models: Any, alias: str, row: Any, spec: PeriodicSpec, args: str, enabled: bool) -> None:
    row = row or models.PeriodicTask(name=spec.name)
    row.task = RUN_PACKAGE_TASK
    row.args = args
    row.kwargs = "{}"
    row.crontab = row.interval = row.clocked = row.solar = None
    if spec.crontab is not None:
        c = spec.crontab
        row.crontab = _schedule_row(
            models.CrontabSchedule,
            alias,
            minute=c.minute,
            hour=c.hour,
            day_of_month=c.day_of_month,
            month_of_year=c.month_of_year,
            day_of_week=c.day_of_week,
            timezone=c.timezone,
        )
    elif spec.interval is not None:
        every, period = spec.interval
        row.interval = _schedule_row(models.IntervalSchedule, alias, every=every, period=period)
    elif spec.clocked is not None:
        row.clocked = _schedule_row(models.ClockedSchedule, alias, clocked_time=spec.clocked)
    row.one_off = spec.clocked is not None
    if row.one_off:
        # django-celery-beat disables a one-off row that has a run count instead of firing it.
        row.total_run_count = 0
    row.start_time = spec.start_time
    row.expires = spec.expires
    row.description = spec.description
    row.enabled = enabled
    # Saving a disabled row clears last_run_at anyway; an enabled one counts its next fire from here.
    row.last_run_at = spec.last_run_at if enabled else None
    row.save(using=alias)


def _schedule_row(model: Any, alias: str, **fields: object) -> Any:
    # Schedules are shared between tasks, and django-celery-beat's admin may have stored duplicates.
    manager = model.objects.using(alias)
    return manager.filter(**fields).order_by("pk").first() or manager.create(**fields)


def _scheduler_base() -> type[Any]:
    # django-celery-beat's scheduler module needs Django's settings when it is imported.
    from django_celery_beat.schedulers import DatabaseScheduler

    return DatabaseScheduler  # type: ignore[no-any-return]


def _following_scheduler() -> type[Any]:
    base = _scheduler_base()

    class Scheduler(base):  # type: ignore[misc, valid-type]
        """``celery beat -S beat_schedules.django:Scheduler``: django-celery-beat's ``DatabaseScheduler``
        that, before each look at its rows (every ``beat_max_loop_interval``, 5 s by default), follows the
        packages changed in any process (:meth:`DjangoBeatBridge.follow`): holding a package in ``jqm web``
        disables its rows, activating it enables them."""

        def schedule_changed(self) -> bool:
            try:
                self._jqm_bridge().follow()
            except Exception:
                # Beat keeps firing the rows it has; the next tick follows again.
                logger.exception("django-celery-beat bridge: following the packages failed")
            return bool(super().schedule_changed())

        def setup_schedule(self) -> None:
            self._jqm_bridge().follow()
            super().setup_schedule()

        def _jqm_bridge(self) -> DjangoBeatBridge:
            bridge = getattr(self, "_bridge", None)
            if bridge is None:
                bridge = DjangoBeatBridge(JobQueueManager.of(self.app))
                self._bridge = bridge
            return bridge

    return Scheduler


_SCHEDULER: list[type[Any]] = []


def __getattr__(name: str) -> Any:
    # ``Scheduler`` is built on first use: django-celery-beat's scheduler module needs Django's settings.
    if name != "Scheduler":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _SCHEDULER:
        _SCHEDULER.append(_following_scheduler())
    return _SCHEDULER[0]
