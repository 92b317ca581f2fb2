"""``JobQueueManager``: the one object a user creates with their Celery app. Everything starts here."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from celery import Celery

from jqm_celery.clock import Clock, SystemClock
from jqm_celery.config import configure_app, supports_chords
from jqm_celery.definitions import Package, RetryPolicy
from jqm_celery.errors import ValidationError, did_you_mean
from jqm_celery.flower import name_sent_events_by_shadow
from jqm_celery.jobqueue import JobQueue, JobSpec
from jqm_celery.notifications.notifier import Notifications
from jqm_celery.package_list import PackagePage
from jqm_celery.paging import window
from jqm_celery.queue_control import QueueControl
from jqm_celery.queue_records import AuditAction, AuditEntry, Cleaned, CleanedRuns, QueueState
from jqm_celery.records import Job, LogEntry, PackageState, Run
from jqm_celery.recovery import STALE_AFTER_INTERVALS, Reconciler
from jqm_celery.recovery import install as install_recovery
from jqm_celery.recurrence import next_runs
from jqm_celery.retention import RunRetention, run_retention
from jqm_celery.runtime import Runtime
from jqm_celery.settings import Settings
from jqm_celery.statuses import JobStatus, LogKind, PackageStatus, RunStatus, ensure_can_hold
from jqm_celery.store import Store
from jqm_celery.store.changes import PackageChanges, package_changes
from jqm_celery.store.cues import Cues, cues
from jqm_celery.store.package_list import package_page
from jqm_celery.store.starters import run_starters
from jqm_celery.store.stops import StopReason, one_log_entry, stop_reasons
from jqm_celery.store.timeline import due_recurrences
from jqm_celery.tasks import register_tasks

_APP_ATTRIBUTE = "jqm"

logger = logging.getLogger("jqm_celery")


class JobQueueManager:
    """Job queue packages for a Celery app: define, activate, hold, run, and read the log.

    Creating it configures the app for jqm (JSON messages, late acks for jobs, the task events Flower
    needs, a result backend if there is none) without overriding settings the app already has, and
    registers jqm's own tasks, so workers of this app can run packages.
    """

    def __init__(self, app: Celery, *, clock: Clock | None = None, configure: bool = True) -> None:
        self.app = app
        self.settings = Settings.from_conf(app.conf)
        self.clock: Clock = clock or SystemClock()
        self.store = Store(self.settings.database_url, auto_migrate=self.settings.auto_migrate)
        if configure:
            configure_app(app, self.settings)
            name_sent_events_by_shadow(app)
        self.runtime = Runtime(app, self.store, self.clock, self.settings.control_queue)
        self.tasks = register_tasks(app, self.runtime)
        self.notifications = Notifications(app, self.store, self.settings, self.clock)
        self.job_queue = JobQueue(app, self.store, self.runtime, self.clock)
        self.reconciler = Reconciler(app, self.job_queue, self.runtime, self.clock)
        stale_after = timedelta(seconds=self.reconciler.interval_s * STALE_AFTER_INTERVALS)
        self.queue_control = QueueControl(self.job_queue, stale_after)
        self.retention = RunRetention(self.job_queue, self.clock, run_retention(app.conf))
        self.reconciler.chores.append(self.retention.apply_daily)
        install_recovery(app)
        #: Called with a package's name after this manager created, saved, activated, held or deleted it
        #: (the django-celery-beat bridge keeps its rows in step here). A failing listener is logged.
        self.package_listeners: list[Callable[[str], None]] = []
        #: Called with the definition before an activation is written; raise ValidationError to refuse it.
        self.activation_checks: list[Callable[[Package], None]] = []
        setattr(app, _APP_ATTRIBUTE, self)

    @classmethod
    def of(cls, app: Celery) -> JobQueueManager:
        """The manager already created for ``app``, or a new one."""
        existing = getattr(app, _APP_ATTRIBUTE, None)
        return existing if isinstance(existing, JobQueueManager) else cls(app)

    # -- definitions ------------------------------------------------------------------------

    def create(self, package: Package, *, actor: str | None = None) -> PackageState:
        """Store a new package as DRAFT; refuses a name that exists."""
        self._validate(package)
        self.store.save_package(package, self.clock.now(), create_only=True)
        self.job_queue.record(actor, AuditAction.CREATE, f"package '{package.name}'", package=package.name)
        self._changed(package.name)
        return self.package(package.name)

    def save(self, package: Package, *, actor: str | None = None) -> PackageState:
        """Create the package (DRAFT), or replace the definition of one that is not ACTIVE.

        Saving an unchanged definition is a no-op, whatever the status, so deploy scripts may save on
        every start.
        """
        self._validate(package)
        now = self.clock.now()
        created = self.store.save_package(package, now)
        state = self.package(package.name)
        if created or state.updated_at == now:
            action = AuditAction.CREATE if created else AuditAction.SAVE
            target = f"package '{package.name}'"
            version = f"version {state.version}"
            self.job_queue.record(actor, action, target, package=package.name, detail=version)
            self._changed(package.name)
        return state

    def delete(self, name: str, *, actor: str | None = None) -> None:
        """Delete a package that is not ACTIVE; its runs and log entries are kept."""
        self.store.delete_package(name)
        self.job_queue.record(actor, AuditAction.DELETE, f"package '{name}'", package=name)
        self._changed(name)

    def package(self, name: str) -> PackageState:
        return self.store.package(name)

    def packages(self) -> list[PackageState]:
        return self.store.packages()

    def package_list(
        self,
        *,
        status: PackageStatus | str | Sequence[PackageStatus | str] = (),
        name_contains: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> PackagePage:
        """One page of packages sorted by name, with next and last run, without loading definitions."""
        _check_whole("package list", limit=(limit, 1), offset=(offset, 0))
        statuses = [_package_status(s) for s in ([status] if isinstance(status, str) else status)]
        return package_page(
            self.store, statuses=statuses, name_contains=name_contains, limit=limit, offset=offset
        )

    def package_changes(self, since: datetime | None = None) -> PackageChanges:
        """The packages created, saved, activated, held or stopped at or after ``since`` (all, if None),
        whichever process changed them; with the newest change and the number of packages."""
        return package_changes(self.store, since)

    def next_runs(self, name: str, count: int = 10) -> list[datetime]:
        """The package's next ``count`` fire times from now, merged across its recurrences (aware, UTC).

        It previews the definition whatever the status; ``recurrence.next_runs`` also says which
        recurrence produces each time.
        """
        recurrences = self.store.package(name).definition.recurrences
        return [at for at, _ in next_runs(recurrences, self.clock.now(), count)]

    # -- lifecycle --------------------------------------------------------------------------

    def activate(self, name: str, *, actor: str | None = None) -> PackageState:
        """Validate everything, then ACTIVE: recurrences start firing and editing is locked."""
        state = self.store.package(name)
        self._validate(state.definition, for_activation=True)
        now = self.clock.now()
        activated = self.store.set_status(name, PackageStatus.ACTIVE, now, check=_can_activate)
        self.job_queue.record(actor, AuditAction.ACTIVATE, f"package '{name}'", package=name)
        self._changed(name)
        return activated

    def hold(self, name: str, *, actor: str | None = None) -> PackageState:
        """ON_HOLD: no more recurrences; a running job finishes, the rest of its run is skipped."""
        held = self.store.set_status(name, PackageStatus.ON_HOLD, self.clock.now(), check=ensure_can_hold)
        self.job_queue.record(actor, AuditAction.HOLD, f"package '{name}'", package=name)
        self._changed(name)
        return held

    def run_now(
        self, name: str, *, queue: bool = False, actor: str | None = None, via: str | None = None
    ) -> Run:
        """Start a run of the package now, whatever its status; ``queue=True`` waits for a run in flight.

        With ``actor`` (the web UI and the API pass the signed-in user) the audit trail records who, and
        ``via`` how (``"web UI"``, ``"API token"``); :meth:`run_starters` reads it back.
        """
        plan, run, start_now = self.store.start_run(
            name, "run now", self.clock.now(), queue_if_busy=queue, check=self._validate
        )
        if start_now:
            self.runtime.dispatch(plan)
        if actor is not None:
            detail = f"run {run.id}" + ("" if start_now else ", queued behind the run in flight")
            detail += f" via {via}" if via else ""
            self.job_queue.record(
                actor, AuditAction.RUN_NOW, f"package '{name}'", package=name, detail=detail
            )
        return dataclasses.replace(run, _reload=self.run, _status=self.store.run_status)

    # -- runs and log entries ---------------------------------------------------------------

    def run(self, run_id: int) -> Run:
        return dataclasses.replace(self.store.run(run_id), _reload=self.run, _status=self.store.run_status)

    def runs(
        self,
        package: str | None = None,
        status: RunStatus | str | None = None,
        limit: int = 50,
        *,
        before_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Run]:
        """Runs, newest first; ``before_id`` (the last id of the page before) pages back, ``since`` /
        ``until`` keep runs created in that range."""
        shown = window("runs", before_id, since, until)
        if package is not None:
            self.store.package(package)
        status = None if status is None else _run_status(status)
        found = self.store.runs(package, status, limit, shown)
        return [dataclasses.replace(r, _reload=self.run) for r in found]

    def log_entries(
        self,
        *,
        package: str | None = None,
        run_id: int | None = None,
        job_id: int | None = None,
        status: str | None = None,
        kind: LogKind | str | None = None,
        limit: int = 200,
        before_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[LogEntry]:
        """Log entries, oldest first, filtered; ``before_id`` pages back from the newest.

        ``since`` / ``until`` keep entries that started at or after / before those aware instants.
        """
        _check_aware("log entries", since=since, until=until)
        if package is not None:
            self.store.package(package)
        if run_id is not None:
            self.store.run(run_id)
        entries = self.store.log_entries(
            package=package,
            run_id=run_id,
            job_id=job_id,
            status=status.upper() if status else None,
            kind=None if kind is None else LogKind(kind),
            limit=limit,
            before_id=before_id,
            since=since,
            until=until,
        )
        return entries[::-1]

    def cues(self) -> Cues:
        """Counts that need an operator's eye: runs and jobs failed in the last 24 h, jobs running now,
        packages in ERROR."""
        return cues(self.store, self.clock.now())

    def run_starters(self, package: str, run_ids: Sequence[int]) -> dict[int, str]:
        """Who started each of ``run_ids`` (runs of ``package``) by hand, e.g. ``"ann (web UI)"``; runs
        started by a schedule are not in it (their ``trigger`` says which)."""
        return {
            run_id: f"{actor} ({via})" if via else actor
            for run_id, (actor, via) in run_starters(self.store, package, run_ids).items()
        }

    def upcoming_fires(
        self, within: timedelta = timedelta(hours=24), *, recurrences: int = 300, per_recurrence: int = 300
    ) -> list[tuple[datetime, str]]:
        """(fire time, package) of every fire of ACTIVE packages in the next ``within``, soonest first.

        It reads the ``recurrences`` due soonest (by their stored next fire) and follows each for at most
        ``per_recurrence`` fires, so a page that shows it stays fast with any number of packages.
        """
        now = self.clock.now()
        until = now + within
        fires: list[tuple[datetime, str]] = []
        for package, recurrence, first in due_recurrences(self.store, until, recurrences):
            at: datetime | None = first
            for _ in range(per_recurrence):
                if at is None or at > until:
                    break
                fires.append((at, package))
                at = recurrence.next_after(at)
        return sorted(fires)

    def log_entry(self, entry_id: int) -> LogEntry:
        """One log entry, with its error and traceback."""
        return one_log_entry(self.store, entry_id)

    def stop_reasons(self, packages: Sequence[str]) -> dict[str, StopReason]:
        """Why each of ``packages`` stopped: its latest failed or stopped run and the attempt in it that
        failed for good (for the packages that have such a run; the web UI asks for packages in ERROR)."""
        return stop_reasons(self.store, packages)

    # -- the job queue (stand-alone jobs; controls shared with package jobs): see jobqueue.py ---

    def define_queue(self, name: str, pool_size: int, *, actor: str | None = None) -> QueueState:
        """Define (or resize) a named queue; ``jqm worker`` runs ``pool_size`` of its jobs at once."""
        return self.job_queue.define_queue(name, pool_size, actor=actor)

    def queues(self) -> list[QueueState]:
        """Every queue: pool size, paused or not, jobs by status, and the live workers consuming it."""
        return self.queue_control.queues()

    def pause_queue(self, name: str, *, actor: str | None = None) -> QueueState:
        """No new job of the queue starts on any worker until it is resumed; running jobs finish."""
        return self.queue_control.pause(name, actor=actor)

    def resume_queue(self, name: str, *, actor: str | None = None) -> QueueState:
        """Jobs of a paused queue start again, those that waited first."""
        return self.queue_control.resume(name, actor=actor)

    def shut_down_queue(self, name: str, *, actor: str | None = None) -> QueueState:
        """Pause the queue and abort its running jobs."""
        return self.queue_control.shut_down(name, actor=actor)

    def enqueue(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        queue: str | None = None,
        description: str = "",
        retry: RetryPolicy | None = None,
        delay: timedelta | None = None,
        soft_time_limit: timedelta | None = None,
        time_limit: timedelta | None = None,
    ) -> Job:
        """Add a stand-alone job to a queue; ``delay`` holds it back, ``retry`` retries it with backoff."""
        return self.job_queue.enqueue(
            task,
            args,
            kwargs,
            queue=queue,
            description=description,
            retry=retry,
            delay=delay,
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
        )

    def enqueue_many(
        self,
        task: str,
        jobs: Sequence[JobSpec],
        *,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        delay: timedelta | None = None,
        soft_time_limit: timedelta | None = None,
        time_limit: timedelta | None = None,
    ) -> list[Job]:
        """Many stand-alone jobs of one task, stored in one transaction."""
        return self.job_queue.enqueue_many(
            task,
            jobs,
            queue=queue,
            retry=retry,
            delay=delay,
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
        )

    def job(self, job_id: int) -> Job:
        """A job (stand-alone or of a run) with its attempts."""
        return self.job_queue.job(job_id)

    def jobs(
        self,
        *,
        queue: str | None = None,
        status: JobStatus | str | None = None,
        stand_alone: bool = True,
        limit: int = 100,
        worker: str | None = None,
        package: str | None = None,
        before_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Job]:
        """Jobs, newest first (stand-alone ones only unless ``stand_alone=False``); paged and filtered as
        :meth:`runs`, and by the worker that ran them and their package."""
        shown = window("jobs", before_id, since, until)
        return self.job_queue.jobs(
            queue=queue,
            status=status,
            stand_alone=stand_alone,
            limit=limit,
            worker=worker,
            package=package,
            window=shown,
        )

    def cancel(self, job_id: int, *, actor: str | None = None) -> Job:
        """A QUEUED, DELAYED or RETRYING job never runs."""
        return self.job_queue.cancel(job_id, actor=actor)

    def abort(self, job_id: int, *, actor: str | None = None) -> Job:
        """A RUNNING job is terminated on whichever worker runs it."""
        return self.job_queue.abort(job_id, actor=actor)

    def requeue(self, job_id: int, *, actor: str | None = None) -> Job:
        """A DONE, CANCELLED, ABORTED or ERROR stand-alone job is added to its queue again."""
        return self.job_queue.requeue(job_id, actor=actor)

    def clean(
        self,
        older_than: timedelta,
        *,
        actor: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Cleaned:
        """Delete finished stand-alone jobs older than ``older_than`` and their log entries, in batches."""
        return self.job_queue.clean(older_than, actor=actor, progress=progress)

    def clean_runs(
        self,
        older_than: timedelta,
        *,
        actor: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> CleanedRuns:
        """Delete finished package runs older than ``older_than``, their jobs and log entries, in batches."""
        return self.retention.clean_runs(older_than, actor=actor, progress=progress)

    def cancel_run(self, run_id: int, *, actor: str | None = None) -> Run:
        """Stop a run: its jobs never start or are aborted; it ends STOPPED; a run queued behind starts."""
        self.job_queue.cancel_run(run_id, actor=actor)
        return self.run(run_id)

    def audit(
        self,
        *,
        package: str | None = None,
        limit: int = 200,
        before_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditEntry]:
        """Who changed what and when, oldest first; the newest ``limit`` entries before ``before_id``."""
        return self.job_queue.audit(
            package=package, limit=limit, window=window("audit", before_id, since, until)
        )

    # -- the database -----------------------------------------------------------------------

    def upgrade_db(self) -> tuple[str | None, str | None]:
        """Run the store's migrations; returns the revision before and after."""
        return self.store.upgrade()

    def registered_tasks(self) -> list[str]:
        """The user's task names this app knows (jqm's and Celery's own left out)."""
        self.app.loader.import_default_modules()
        return sorted(n for n in self.app.tasks if not n.startswith(("celery.", "jqm.")))

    def _validate(self, package: Package, *, for_activation: bool = False) -> None:
        checks = [self._check_queues, *self.activation_checks] if for_activation else None
        _validate(self.app, package, self.clock.now(), checks)

    def known_queues(self) -> list[str]:
        """The queues an entry may use: those defined in jqm, the app's default and control queues, and
        the queues of the app's ``task_queues``."""
        conf = self.app.conf
        defined = self.job_queue.jobs_store.queue_sizes()
        names = {*defined, str(conf.task_default_queue), self.settings.control_queue}
        names |= {str(q.name) for q in conf.task_queues or ()}
        return sorted(n for n in names if n and n != "None")

    def live_queues(self, timeout_s: float = 1.0) -> set[str] | None:
        """The queues that live workers of the app consume now (a broadcast that waits ``timeout_s``);
        ``None`` when the broker cannot broadcast (the embedded SQLite broker)."""
        try:
            replies = self.app.control.inspect(timeout=timeout_s).active_queues()
        except Exception:
            # Transports without fan-out refuse the broadcast; the caller then cannot say either way.
            logger.debug("jqm: cannot ask the workers for their queues", exc_info=True)
            return None
        return {str(q["name"]) for queues in (replies or {}).values() for q in queues}

    def _check_queues(self, package: Package) -> None:
        used = {entry.queue for entry in package.entries if entry.queue is not None}
        if not used:
            return
        known = self.known_queues()
        for position, entry in enumerate(package.entries, start=1):
            if entry.queue is not None and entry.queue not in known:
                raise ValidationError(
                    f"package '{package.name}': entry {position} ('{entry.task}') uses queue "
                    f"'{entry.queue}', which is not defined{did_you_mean(entry.queue, known)}; its jobs "
                    f"would wait for a worker forever. Correct the name, or define the queue first "
                    f"(jqm.define_queue('{entry.queue}', pool_size=4))"
                )

    def _changed(self, name: str) -> None:
        for listener in self.package_listeners:
            try:
                listener(name)
            except Exception:
                # The change is committed; a listener that fails (e.g. an unreachable Django database) is
                # logged and can be repaired by its own full resync.
                logger.exception("jqm: a package listener failed for package '%s'", name)


def _validate(
    app: Celery, package: Package, now: datetime, activation_checks: list[Callable[[Package], None]] | None
) -> None:
    """Refuse a package whose tasks are unknown; before an activation (``activation_checks`` given), also
    one whose recurrences do not parse or that a check refuses."""
    app.loader.import_default_modules()
    package.check_tasks(app.tasks.keys())
    if activation_checks is not None:
        for recurrence in package.recurrences:
            recurrence.validate(now)
        for check in activation_checks:
            check(package)
    if _has_parallel_entries(package) and not supports_chords(app):
        raise ValidationError(
            f"package '{package.name}': entries that share a run order run as a Celery chord, which "
            f"needs a result backend that supports chords; the app's result_backend is "
            f"{app.conf.result_backend!r} — use redis://, db+postgresql://… or leave it unset"
        )


def _check_whole(owner: str, **values: tuple[object, int]) -> None:
    for label, (value, low) in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValidationError(f"{owner}: {label} must be a whole number ≥ {low}, got {value!r}")


def _check_aware(owner: str, **values: datetime | None) -> None:
    for label, value in values.items():
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValidationError(f"{owner}: {label} must be an aware datetime, got {value!r}")


def _can_activate(name: str, status: PackageStatus) -> None:
    # Activating an ACTIVE package is harmless; every other status may be activated.
    del name, status


def _has_parallel_entries(package: Package) -> bool:
    return len({entry.run_order for entry in package.entries}) < len(package.entries)


def _package_status(value: PackageStatus | str) -> PackageStatus:
    try:
        return PackageStatus(str(value).upper())
    except ValueError:
        raise ValidationError(
            f"package status {value!r} is not valid; "
            f"choose one of {', '.join(s.value for s in PackageStatus)}"
        ) from None


def _run_status(value: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(str(value).upper())
    except ValueError:
        raise ValidationError(
            f"run status {value!r} is not valid; choose one of {', '.join(s.value for s in RunStatus)}"
        ) from None
