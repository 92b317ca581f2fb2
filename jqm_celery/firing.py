"""Runs started by a schedule rather than by a person: beat's ticks and external schedulers.

The store decides and records (one transaction each); this module sends what was committed and records
that it was sent, so a beat that dies in between is recovered by another one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from jqm_celery.errors import JQMError, NotFoundError, StateError
from jqm_celery.plans import RunPlan
from jqm_celery.publishing import publish_batch
from jqm_celery.runtime import Runtime
from jqm_celery.store.schedule import TickResult, fire_due, mark_sent, recover_unsent, start_package_run

logger = logging.getLogger("jqm_celery.beat")

#: The trigger of runs the django-celery-beat bridge starts.
DJANGO_TRIGGER = "django-celery-beat"
#: Runs sent in one publish batch.
SEND_CHUNK = 100
#: Due recurrences one tick fires before it sends their runs; more are fired by the next tick, at once.
FIRE_PER_TICK = 2000
#: Jobs after which a tick stops firing and sends what it has: runs of long packages leave sooner.
FIRE_JOBS_PER_TICK = 10_000


def tick(
    runtime: Runtime,
    *,
    grace: timedelta,
    limit: int,
    holder: str,
    recover_after: timedelta | None,
    per_tick: int = FIRE_PER_TICK,
    jobs_per_tick: int = FIRE_JOBS_PER_TICK,
) -> TickResult:
    """Fire the due recurrences, send their runs, and recover runs left unsent.

    Due recurrences are claimed and their runs inserted ``limit`` at a time, one transaction each, up to
    ``per_tick`` recurrences or ``jobs_per_tick`` jobs, whichever comes first; only then are the runs
    sent. With the store's writes done before the first run reaches a worker, they do not compete with
    the work those runs start: where beat, the store and the workers share a machine, the last of a
    thousand runs due together leaves sooner (the first ones leave a little later).
    """
    store, clock = runtime.store, runtime.clock
    started = time.perf_counter()
    result = fire_due(store, clock.now(), grace=grace, limit=limit, holder=holder)
    plans: list[RunPlan] = list(result.plans)
    claimed = result.claimed
    jobs = sum(len(plan.jobs) for plan in result.plans)
    while result.leader and result.more_due and claimed < per_tick and jobs < jobs_per_tick:
        result = fire_due(store, clock.now(), grace=grace, limit=limit, holder=holder)
        plans += result.plans
        claimed += result.claimed
        jobs += sum(len(plan.jobs) for plan in result.plans)
    if result.leader and recover_after is not None:
        plans += recover_unsent(store, clock.now(), older_than=recover_after)
    if plans:
        inserted = time.perf_counter()
        send(runtime, plans)
        logger.debug(
            "beat: %d run(s) inserted in %.0f ms, then sent and marked sent in %.0f ms",
            len(plans),
            (inserted - started) * 1000,
            (time.perf_counter() - inserted) * 1000,
        )
    return replace(result, plans=tuple(plans), claimed=claimed)


def send(runtime: Runtime, plans: Sequence[RunPlan], *, chunk: int = SEND_CHUNK) -> None:
    """Send committed runs, then mark them sent; a run the broker refuses is recorded FAILED by the runtime.

    Where the transport has publish batches (Kombu ≥ 5.7 on Redis), ``chunk`` runs at a time go out in one
    pipelined round trip — their messages and their task-sent events — instead of two round trips each.
    Each chunk's runs are marked with the time it reached the broker, all in one transaction at the end.
    A chunk whose batch fails is left unmarked: its runs are replaced by ``recover_unsent``, as if beat
    had died.
    """
    sent: list[tuple[list[int], datetime]] = []
    for start in range(0, len(plans), chunk):
        part = plans[start : start + chunk]
        try:
            with publish_batch(runtime.app) as producer:
                for plan in part:
                    try:
                        runtime.dispatch(plan, producer=producer)
                    except JQMError as exc:
                        logger.error("%s", exc)
        except Exception:
            logger.exception(
                "beat: %d run(s) may not have reached the broker; they are replaced once unsent for %s",
                len(part),
                "the recovery delay",
            )
            continue
        sent.append(([plan.run_id for plan in part], runtime.clock.now()))
    mark_sent(runtime.store, sent)


def start_scheduled_run(runtime: Runtime, name: str, trigger: str) -> int | None:
    """Start a run of an ACTIVE package for an external scheduler; the run id, or None if it was skipped.

    The package's overlap rule applies, as for beat's own fires. A fire of a package that is not ACTIVE
    (held or stopped in a process whose change the scheduler has not followed yet) starts nothing and is
    logged as a warning: it is a race with that change, not a failure.
    """
    try:
        plan, start_now = start_package_run(runtime.store, name, trigger, runtime.clock.now())
    except StateError as exc:
        logger.warning("%s", exc)
        return None
    if plan is None:
        if not start_now and not _exists(runtime, name):
            raise NotFoundError(f"package '{name}' does not exist; {trigger} has a stale schedule for it")
        return None
    if start_now:
        runtime.dispatch(plan)
    return plan.run_id


def _exists(runtime: Runtime, name: str) -> bool:
    return name in runtime.store.package_names()
