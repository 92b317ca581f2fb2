"""``JobQueueManager``: the one object a user creates with their Celery app. Everything starts here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from celery import Celery

from jqm_celery import firing
from jqm_celery.clock import Clock, SystemClock
from jqm_celery.config import configure_app, hide_secret_settings
from jqm_celery.definitions import Package
from jqm_celery.events import Event
from jqm_celery.flower import name_sent_events_by_shadow
from jqm_celery.job_queue_methods import JobQueueMethods
from jqm_celery.jobqueue import JobQueue
from jqm_celery.notifications.notifier import Notifications
from jqm_celery.package_admin import PackageAdmin
from jqm_celery.package_list import PackagePage
from jqm_celery.paging import window
from jqm_celery.queue_control import QueueControl
from jqm_celery.records import LogEntry, PackageState, Run
from jqm_celery.recovery import STALE_AFTER_INTERVALS, Reconciler
from jqm_celery.recovery import install as install_recovery
from jqm_celery.retention import RunRetention, run_retention
from jqm_celery.runtime import Runtime
from jqm_celery.settings import Settings
from jqm_celery.statuses import LogKind, PackageStatus, RunStatus
from jqm_celery.store import Store
from jqm_celery.store.changes import PackageChanges
from jqm_celery.store.cues import Cues
from jqm_celery.store.schedule import TickResult, release_lease
from jqm_celery.store.stops import StopReason
from jqm_celery.tasks import register_tasks
from jqm_celery.views import Views

if TYPE_CHECKING:
    from jqm_celery.web.users import Users

_APP_ATTRIBUTE = "jqm"

logger = logging.getLogger("jqm_celery")


class JobQueueManager(JobQueueMethods):
    """Job queue packages for a Celery app: define, activate, hold, run, and read the log.

    Creating it configures the app for jqm (JSON messages, late acks for jobs, the task events Flower
    needs, a result backend if there is none) without overriding settings the app already has, and
    registers jqm's own tasks, so workers of this app can run packages.
    """

    def __init__(self, app: Celery, *, clock: Clock | None = None, configure: bool = True) -> None:
        self.app = app
        self.settings = Settings.from_conf(app.conf)
        self.clock: Clock = clock or SystemClock()
        self._store = _open_store(self.settings)
        hide_secret_settings()
        if configure:
            configure_app(app, self.settings)
            name_sent_events_by_shadow(app)
        self._runtime = Runtime(
            app,
            self._store,
            self.clock,
            self.settings.control_queue,
            skip_retry_delays=self.settings.retry_delays == "skip",
        )
        self.tasks = register_tasks(app, self._runtime)
        self.notifications = Notifications(app, self._store, self.settings, self.clock)
        self._job_queue = JobQueue(app, self._store, self._runtime, self.clock)
        self.reconciler, self.queue_control, self.retention = _recovery(app, self._job_queue, self.clock)
        self._views = Views(self._store, self.clock)
        self._admin = PackageAdmin(
            app,
            self._store,
            self._runtime,
            self._job_queue,
            self.clock,
            self.known_queues,
            self._views.reloadable,
        )
        #: Called with a package's name after this manager created, saved, activated, held or deleted it
        #: (the django-celery-beat bridge keeps its rows in step here). A failing listener is logged.
        self.package_listeners: list[Callable[[str], None]] = self._admin.package_listeners
        #: Called with the definition before an activation is written; raise ValidationError to refuse it.
        self.activation_checks: list[Callable[[Package], None]] = self._admin.activation_checks
        #: Called with each event (a log entry written in this process) after its transaction commits.
        self.event_listeners: list[Callable[[Event], None]] = self._store.listeners
        setattr(app, _APP_ATTRIBUTE, self)

    @classmethod
    def of(cls, app: Celery) -> JobQueueManager:
        """The manager already created for ``app``, or a new one."""
        existing = getattr(app, _APP_ATTRIBUTE, None)
        return existing if isinstance(existing, JobQueueManager) else cls(app)

    # -- definitions ------------------------------------------------------------------------

    def create(self, package: Package, *, actor: str | None = None) -> PackageState:
        """Store a new package as DRAFT; refuses a name that exists."""
        return self._admin.create(package, actor)

    def save(self, package: Package, *, actor: str | None = None) -> PackageState:
        """Create the package (DRAFT), or replace the definition of one that is not ACTIVE.

        Saving an unchanged definition is a no-op, whatever the status, so deploy scripts may save on
        every start.
        """
        return self._admin.save(package, actor)

    def delete(self, name: str, *, actor: str | None = None) -> None:
        """Delete a package that is not ACTIVE; its runs and log entries are kept."""
        self._admin.delete(name, actor)

    def package(self, name: str) -> PackageState:
        """The package's definition, status and version."""
        return self._views.package(name)

    def packages(self) -> list[PackageState]:
        """Every package, with its definition."""
        return self._views.packages()

    def package_names(self) -> list[str]:
        """The names of every package, without loading their definitions."""
        return self._views.package_names()

    def package_list(
        self,
        *,
        status: PackageStatus | str | Sequence[PackageStatus | str] = (),
        name_contains: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> PackagePage:
        """One page of packages sorted by name, with next and last run, without loading definitions."""
        return self._views.package_list(
            status=status, name_contains=name_contains, limit=limit, offset=offset
        )

    def package_changes(self, since: datetime | None = None) -> PackageChanges:
        """The packages created, saved, activated, held or stopped at or after ``since`` (all, if None),
        whichever process changed them; with the newest change and the number of packages."""
        return self._views.package_changes(since)

    def next_runs(self, name: str, count: int = 10) -> list[datetime]:
        """The package's next ``count`` fire times from now, merged across its recurrences (aware, UTC).

        It previews the definition whatever the status; ``recurrence.next_runs`` also says which
        recurrence produces each time.
        """
        return self._views.next_runs(name, count)

    # -- lifecycle --------------------------------------------------------------------------

    def activate(self, name: str, *, actor: str | None = None) -> PackageState:
        """Validate everything, then ACTIVE: recurrences start firing and editing is locked."""
        return self._admin.activate(name, actor)

    def hold(self, name: str, *, actor: str | None = None) -> PackageState:
        """ON_HOLD: no more recurrences; a running job finishes, the rest of its run is skipped."""
        return self._admin.hold(name, actor)

    def run_now(
        self, name: str, *, queue: bool = False, actor: str | None = None, via: str | None = None
    ) -> Run:
        """Start a run of the package now, whatever its status; ``queue=True`` waits for a run in flight.

        With ``actor`` (the web UI and the API pass the signed-in user) the audit trail records who, and
        ``via`` how (``"web UI"``, ``"API token"``); :meth:`run_starters` reads it back.
        """
        return self._admin.run_now(name, queue, actor, via)

    def run_now_many(
        self, names: Sequence[str], *, queue: bool = False, actor: str | None = None, via: str | None = None
    ) -> list[Run]:
        """``run_now`` of each package of ``names``, in one transaction and one publish batch: the runs,
        in the order of ``names``.

        All or none: an unknown name, a package whose tasks this app does not know, or (without
        ``queue=True``) a package with a run in flight fails the whole call with an error naming every
        such package, and no run is started. A name given twice starts a second run, queued behind the
        first with ``queue=True`` (refused without it).
        """
        return self._admin.run_now_many(names, queue, actor, via)

    # -- runs and log entries ---------------------------------------------------------------

    def run(self, run_id: int) -> Run:
        """A run with its jobs; ``wait()`` and ``refresh()`` read it again."""
        return self._views.run(run_id)

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
        """Runs, newest first, of one package and/or with one status; ``before_id`` (the last id of the
        page before) pages back, ``since`` / ``until`` keep runs created in that range."""
        return self._views.runs(package, status, limit, window("runs", before_id, since, until))

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
        return self._views.log_entries(
            package=package,
            run_id=run_id,
            job_id=job_id,
            status=status,
            kind=kind,
            limit=limit,
            before_id=before_id,
            since=since,
            until=until,
        )

    def log_entry(self, entry_id: int) -> LogEntry:
        """One log entry, with its error and traceback."""
        return self._views.log_entry(entry_id)

    def cues(self) -> Cues:
        """Counts that need an operator's eye: runs and jobs failed in the last 24 h, jobs running now,
        packages in ERROR."""
        return self._views.cues()

    def run_starters(self, package: str, run_ids: Sequence[int]) -> dict[int, str]:
        """Who started each of ``run_ids`` (runs of ``package``) by hand, e.g. ``"ann (web UI)"``; runs
        started by a schedule are not in it (their ``trigger`` says which)."""
        return self._views.run_starters(package, run_ids)

    def upcoming_fires(
        self, within: timedelta = timedelta(hours=24), *, recurrences: int = 300, per_recurrence: int = 300
    ) -> list[tuple[datetime, str]]:
        """(fire time, package) of every fire of ACTIVE packages in the next ``within``, soonest first.

        It reads the ``recurrences`` due soonest (by their stored next fire) and follows each for at most
        ``per_recurrence`` fires, so a page that shows it stays fast with any number of packages.
        """
        return self._views.upcoming_fires(within, recurrences=recurrences, per_recurrence=per_recurrence)

    def stop_reasons(self, packages: Sequence[str]) -> dict[str, StopReason]:
        """Why each of ``packages`` stopped: its latest failed or stopped run and the attempt in it that
        failed for good (for the packages that have such a run; the web UI asks for packages in ERROR)."""
        return self._views.stop_reasons(packages)

    # -- runs: controls -------------------------------------------------------------------

    def cancel_run(self, run_id: int, *, actor: str | None = None) -> Run:
        """Stop a run: its jobs never start or are aborted; it ends STOPPED; a run queued behind starts."""
        self._job_queue.cancel_run(run_id, actor=actor)
        return self.run(run_id)

    # -- beat ------------------------------------------------------------------------------

    def fire_recurrences(
        self,
        *,
        holder: str,
        grace: timedelta,
        limit: int,
        recover_after: timedelta | None,
        per_tick: int = firing.FIRE_PER_TICK,
        jobs_per_tick: int = firing.FIRE_JOBS_PER_TICK,
    ) -> TickResult:
        """One tick of beat (``holder`` names it): fire due recurrences, send their runs, and, with
        ``recover_after``, send again runs left unsent for that long. Any number of beats may tick."""
        return firing.tick(
            self._runtime,
            grace=grace,
            limit=limit,
            holder=holder,
            recover_after=recover_after,
            per_tick=per_tick,
            jobs_per_tick=jobs_per_tick,
        )

    def release_beat_lease(self, holder: str) -> None:
        """Give up the SQLite beat lease if ``holder`` has it, so another beat ticks at once."""
        release_lease(self._store, holder)

    # -- the web UI's users ------------------------------------------------------------------

    def users(self) -> Users:
        """The web UI's and the REST API's users and their API tokens, kept in this manager's database."""
        from jqm_celery.store.users import UserStore
        from jqm_celery.web.users import Users

        return Users(self, UserStore(self._store))

    # -- the database -----------------------------------------------------------------------

    def upgrade_db(self) -> tuple[str | None, str | None]:
        """Run the store's migrations; returns the revision before and after."""
        return self._store.upgrade()

    def close(self) -> None:
        """Close this manager's database connections (before dropping its database, say); a later call
        opens new ones."""
        self._store.dispose()

    def registered_tasks(self) -> list[str]:
        """The user's task names this app knows (jqm's and Celery's own left out)."""
        self.app.loader.import_default_modules()
        return sorted(n for n in self.app.tasks if not n.startswith(("celery.", "jqm.")))

    def known_queues(self) -> list[str]:
        """The queues an entry may use: those defined in jqm, the app's default and control queues, and
        the queues of the app's ``task_queues``."""
        conf = self.app.conf
        defined = self._job_queue.jobs_store.queue_sizes()
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


def _open_store(settings: Settings) -> Store:
    return Store(settings.database_url, auto_migrate=settings.auto_migrate, retry_s=settings.store_retry_s)


def _recovery(
    app: Celery, job_queue: JobQueue, clock: Clock
) -> tuple[Reconciler, QueueControl, RunRetention]:
    """The reconciler (installed in the app's workers), queue control and run retention, which it runs."""
    reconciler = Reconciler(app, job_queue, job_queue.runtime, clock)
    stale_after = timedelta(seconds=reconciler.interval_s * STALE_AFTER_INTERVALS)
    retention = RunRetention(job_queue, clock, run_retention(app.conf))
    reconciler.chores.append(retention.apply_daily)
    install_recovery(app)
    return reconciler, QueueControl(job_queue, stale_after), retention
