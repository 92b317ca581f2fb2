"""Changing packages: create, save, delete, activate, hold, run now; each validated, audited and announced.

``JobQueueManager`` delegates its package-changing methods here and documents them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from celery import Celery

from jqm_celery.clock import Clock
from jqm_celery.config import supports_chords
from jqm_celery.definitions import Package
from jqm_celery.errors import JQMError, ValidationError, did_you_mean
from jqm_celery.jobqueue import JobQueue
from jqm_celery.plans import RunPlan
from jqm_celery.publishing import publish_batch
from jqm_celery.queue_records import AuditAction
from jqm_celery.records import PackageState, Run
from jqm_celery.runtime import Runtime
from jqm_celery.statuses import PackageStatus, ensure_can_hold
from jqm_celery.store import Store

logger = logging.getLogger("jqm_celery")


class PackageAdmin:
    """The package-changing operations of one manager, with its listeners and activation checks."""

    def __init__(
        self,
        app: Celery,
        store: Store,
        runtime: Runtime,
        job_queue: JobQueue,
        clock: Clock,
        known_queues: Callable[[], list[str]],
        reloadable: Callable[[Run], Run],
    ) -> None:
        self._app = app
        self._store = store
        self._runtime = runtime
        self._job_queue = job_queue
        self._clock = clock
        self._known_queues = known_queues
        self._reloadable = reloadable
        self.package_listeners: list[Callable[[str], None]] = []
        self.activation_checks: list[Callable[[Package], None]] = []

    def create(self, package: Package, actor: str | None) -> PackageState:
        self._validate(package)
        self._store.save_package(package, self._clock.now(), create_only=True)
        self._job_queue.record(actor, AuditAction.CREATE, f"package '{package.name}'", package=package.name)
        self._changed(package.name)
        return self._store.package(package.name)

    def save(self, package: Package, actor: str | None) -> PackageState:
        self._validate(package)
        now = self._clock.now()
        created = self._store.save_package(package, now)
        state = self._store.package(package.name)
        if created or state.updated_at == now:
            action = AuditAction.CREATE if created else AuditAction.SAVE
            target = f"package '{package.name}'"
            version = f"version {state.version}"
            self._job_queue.record(actor, action, target, package=package.name, detail=version)
            self._changed(package.name)
        return state

    def delete(self, name: str, actor: str | None) -> None:
        self._store.delete_package(name)
        self._job_queue.record(actor, AuditAction.DELETE, f"package '{name}'", package=name)
        self._changed(name)

    def activate(self, name: str, actor: str | None) -> PackageState:
        state = self._store.package(name)
        self._validate(state.definition, for_activation=True)
        now = self._clock.now()
        activated = self._store.set_status(name, PackageStatus.ACTIVE, now, check=_can_activate)
        self._job_queue.record(actor, AuditAction.ACTIVATE, f"package '{name}'", package=name)
        self._changed(name)
        return activated

    def hold(self, name: str, actor: str | None) -> PackageState:
        held = self._store.set_status(name, PackageStatus.ON_HOLD, self._clock.now(), check=ensure_can_hold)
        self._job_queue.record(actor, AuditAction.HOLD, f"package '{name}'", package=name)
        self._changed(name)
        return held

    def run_now(self, name: str, queue: bool, actor: str | None, via: str | None) -> Run:
        [run] = self.run_now_many([name], queue, actor, via)
        return run

    def run_now_many(
        self, names: Sequence[str], queue: bool, actor: str | None, via: str | None
    ) -> list[Run]:
        if isinstance(names, str):
            raise ValidationError(
                f"run_now_many takes a list of package names, not the one name '{names}'; use "
                f"run_now('{names}') for one package, or run_now_many(['{names}'])"
            )
        names = list(names)
        if not names:
            return []
        self._app.loader.import_default_modules()
        started = self._store.start_runs(
            names, "run now", self._clock.now(), queue_if_busy=queue, check=self._check_runnable
        )
        self._send([plan for plan, _, start_now in started if start_now])
        if actor is not None:
            for _, run, start_now in started:
                detail = f"run {run.id}" + ("" if start_now else ", queued behind the run in flight")
                detail += f" via {via}" if via else ""
                target = f"package '{run.package}'"
                self._job_queue.record(actor, AuditAction.RUN_NOW, target, package=run.package, detail=detail)
        return [self._reloadable(run) for _, run, _ in started]

    def _check_runnable(self, package: Package) -> None:
        _validate(self._app, package, self._clock.now(), None, import_modules=False)

    def _send(self, plans: Sequence[RunPlan]) -> None:
        """Send the runs' canvases in one publish batch; if that fails, the runs not sent end FAILED."""
        if not plans:
            return
        sent = 0
        batched = False
        try:
            # A run with parallel entries is sent as a Celery chain, whose first message takes a producer
            # from the pool: only then is a second producer batched (see publish_batch).
            chains = any(len({job.run_order for job in plan.jobs}) < len(plan.jobs) for plan in plans)
            with publish_batch(self._app, chains=chains) as producer:
                batched = getattr(producer, "batch", None) is not None
                for plan in plans:
                    self._runtime.dispatch(plan, producer=producer)
                    sent += 1
        except Exception as exc:
            # A batch that fails is dropped whole; without batches, the runs before the failed one left.
            # The run that dispatch could not send is recorded already (recording it again does nothing).
            unsent = plans if batched else plans[sent:]
            now = self._clock.now()
            for plan in unsent:
                error = f"could not send run {plan.run_id} of '{plan.package}' to the broker: {exc}"
                following = self._store.fail_dispatch(plan.run_id, now, error)
                if following is not None:
                    self._send([following])
            raise JQMError(
                f"{len(unsent)} of {len(plans)} run(s) could not be sent to the broker ({exc}); they are "
                "recorded as FAILED; is the broker running and is broker_url right?"
            ) from exc

    def _validate(self, package: Package, *, for_activation: bool = False) -> None:
        checks = [self._check_queues, *self.activation_checks] if for_activation else None
        _validate(self._app, package, self._clock.now(), checks)

    def _check_queues(self, package: Package) -> None:
        used = {entry.queue for entry in package.entries if entry.queue is not None}
        if not used:
            return
        known = self._known_queues()
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
    app: Celery,
    package: Package,
    now: datetime,
    activation_checks: list[Callable[[Package], None]] | None,
    *,
    import_modules: bool = True,
) -> None:
    """Refuse a package whose tasks are unknown; before an activation (``activation_checks`` given), also
    one whose recurrences do not parse or that a check refuses."""
    if import_modules:
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
            f"{app.conf.result_backend!r} — use redis://, jqm+postgresql://… or leave it unset"
        )


def _can_activate(name: str, status: PackageStatus) -> None:
    # Activating an ACTIVE package is harmless; every other status may be activated.
    del name, status


def _has_parallel_entries(package: Package) -> bool:
    return len({entry.run_order for entry in package.entries}) < len(package.entries)
