"""``JobQueueManager``: the one object a user creates with their Celery app. Everything starts here."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from celery import Celery

from jqm_celery.clock import Clock, SystemClock
from jqm_celery.config import configure_app, supports_chords
from jqm_celery.definitions import Package
from jqm_celery.errors import ValidationError
from jqm_celery.notifications.notifier import Notifications
from jqm_celery.records import LogEntry, PackageState, Run
from jqm_celery.recurrence import next_runs
from jqm_celery.runtime import Runtime
from jqm_celery.settings import Settings
from jqm_celery.statuses import LogKind, PackageStatus, RunStatus, ensure_can_hold
from jqm_celery.store import Store
from jqm_celery.tasks import register_tasks

_APP_ATTRIBUTE = "jqm"


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
        self.runtime = Runtime(app, self.store, self.clock, self.settings.control_queue)
        self.tasks = register_tasks(app, self.runtime)
        self.notifications = Notifications(app, self.store, self.settings, self.clock)
        setattr(app, _APP_ATTRIBUTE, self)

    @classmethod
    def of(cls, app: Celery) -> JobQueueManager:
        """The manager already created for ``app``, or a new one."""
        existing = getattr(app, _APP_ATTRIBUTE, None)
        return existing if isinstance(existing, JobQueueManager) else cls(app)

    # -- definitions ------------------------------------------------------------------------

    def create(self, package: Package) -> PackageState:
        """Store a new package as DRAFT; refuses a name that exists."""
        self._validate(package)
        self.store.save_package(package, self.clock.now(), create_only=True)
        return self.package(package.name)

    def save(self, package: Package) -> PackageState:
        """Create the package (DRAFT), or replace the definition of one that is not ACTIVE.

        Saving an unchanged definition is a no-op, whatever the status, so deploy scripts may save on
        every start.
        """
        self._validate(package)
        self.store.save_package(package, self.clock.now())
        return self.package(package.name)

    def delete(self, name: str) -> None:
        """Delete a package that is not ACTIVE; its runs and log entries are kept."""
        self.store.delete_package(name)

    def package(self, name: str) -> PackageState:
        return self.store.package(name)

    def packages(self) -> list[PackageState]:
        return self.store.packages()

    def next_runs(self, name: str, count: int = 10) -> list[datetime]:
        """The package's next ``count`` fire times from now, merged across its recurrences (aware, UTC).

        It previews the definition whatever the status; ``recurrence.next_runs`` also says which
        recurrence produces each time.
        """
        recurrences = self.store.package(name).definition.recurrences
        return [at for at, _ in next_runs(recurrences, self.clock.now(), count)]

    # -- lifecycle --------------------------------------------------------------------------

    def activate(self, name: str) -> PackageState:
        """Validate everything, then ACTIVE: recurrences start firing and editing is locked."""
        state = self.store.package(name)
        self._validate(state.definition, for_activation=True)
        now = self.clock.now()
        return self.store.set_status(name, PackageStatus.ACTIVE, now, check=_can_activate)

    def hold(self, name: str) -> PackageState:
        """ON_HOLD: no more recurrences; a running job finishes, the rest of its run is skipped."""
        return self.store.set_status(name, PackageStatus.ON_HOLD, self.clock.now(), check=ensure_can_hold)

    def run_now(self, name: str, *, queue: bool = False) -> Run:
        """Start a run of the package now, whatever its status; ``queue=True`` waits for a run in flight."""
        state = self.store.package(name)
        self._validate(state.definition)
        plan, start_now = self.store.create_run(name, "run now", self.clock.now(), queue_if_busy=queue)
        if start_now:
            self.runtime.dispatch(plan)
        return self.run(plan.run_id)

    # -- runs and log entries ---------------------------------------------------------------

    def run(self, run_id: int) -> Run:
        return dataclasses.replace(self.store.run(run_id), _reload=self.run)

    def runs(
        self, package: str | None = None, status: RunStatus | str | None = None, limit: int = 50
    ) -> list[Run]:
        if package is not None:
            self.store.package(package)
        status = None if status is None else _run_status(status)
        return [dataclasses.replace(r, _reload=self.run) for r in self.store.runs(package, status, limit)]

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
    ) -> list[LogEntry]:
        """Log entries, oldest first, filtered; ``before_id`` pages back from the newest."""
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
        )
        return entries[::-1]

    # -- the database -----------------------------------------------------------------------

    def upgrade_db(self) -> tuple[str | None, str | None]:
        """Run the store's migrations; returns the revision before and after."""
        return self.store.upgrade()

    def registered_tasks(self) -> list[str]:
        """The user's task names this app knows (jqm's and Celery's own left out)."""
        self.app.loader.import_default_modules()
        return sorted(n for n in self.app.tasks if not n.startswith(("celery.", "jqm.")))

    # -- validation -------------------------------------------------------------------------

    def _validate(self, package: Package, *, for_activation: bool = False) -> None:
        self.app.loader.import_default_modules()
        package.check_tasks(self.app.tasks.keys())
        if for_activation:
            now = self.clock.now()
            for recurrence in package.recurrences:
                recurrence.validate(now)
        if _has_parallel_entries(package) and not supports_chords(self.app):
            raise ValidationError(
                f"package '{package.name}': entries that share a run order run as a Celery chord, which "
                f"needs a result backend that supports chords; the app's result_backend is "
                f"{self.app.conf.result_backend!r} — use redis://, db+postgresql://… or leave it unset"
            )


def _can_activate(name: str, status: PackageStatus) -> None:
    # Activating an ACTIVE package is harmless; every other status may be activated.
    del name, status


def _has_parallel_entries(package: Package) -> bool:
    return any(len(entries) > 1 for _, entries in package.stages())


def _run_status(value: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(str(value).upper())
    except ValueError:
        raise ValidationError(
            f"run status {value!r} is not valid; choose one of {', '.join(s.value for s in RunStatus)}"
        ) from None
