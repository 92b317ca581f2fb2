"""Runs started by a schedule rather than by a person: beat's ticks and external schedulers.

The store decides and records (one transaction each); this module sends what was committed and records
that it was sent, so a beat that dies in between is recovered by another one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from jqm_celery.errors import JQMError, NotFoundError
from jqm_celery.plans import RunPlan
from jqm_celery.publishing import publish_batch
from jqm_celery.runtime import Runtime
from jqm_celery.store.schedule import TickResult, fire_due, mark_sent, recover_unsent, start_package_run

logger = logging.getLogger("jqm_celery.beat")

#: The trigger of runs the django-celery-beat bridge starts.
DJANGO_TRIGGER = "django-celery-beat"
#: Runs sent in one batch, then marked sent together.
SEND_CHUNK = 100


def tick(
    runtime: Runtime,
    *,
    grace: timedelta,
    limit: int,
    holder: str,
    recover_after: timedelta | None,
) -> TickResult:
    """Fire every due recurrence (up to ``limit``), send the runs, and recover runs left unsent."""
    now = runtime.clock.now()
    result = fire_due(runtime.store, now, grace=grace, limit=limit, holder=holder)
    plans: list[RunPlan] = list(result.plans)
    if result.leader and recover_after is not None:
        plans += recover_unsent(runtime.store, now, older_than=recover_after)
    send(runtime, plans)
    return result


def send(runtime: Runtime, plans: Sequence[RunPlan], *, chunk: int = SEND_CHUNK) -> None:
    """Send committed runs; a run the broker refuses is recorded as FAILED by the runtime.

    Where the transport has publish batches (Kombu ≥ 5.7 on Redis), ``chunk`` runs at a time go out in one
    pipelined round trip — their messages and their task-sent events — instead of two round trips each,
    and each chunk is marked sent once it has reached the broker. A chunk whose batch fails is left
    unmarked: its runs are replaced by ``recover_unsent``, as if beat had died.
    """
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
        mark_sent(runtime.store, [plan.run_id for plan in part], runtime.clock.now())


def start_scheduled_run(runtime: Runtime, name: str, trigger: str) -> int | None:
    """Start a run of an ACTIVE package for an external scheduler; the run id, or None if it was skipped.

    The package's overlap rule applies, as for beat's own fires.
    """
    plan, start_now = start_package_run(runtime.store, name, trigger, runtime.clock.now())
    if plan is None:
        if not start_now and not _exists(runtime, name):
            raise NotFoundError(f"package '{name}' does not exist; {trigger} has a stale schedule for it")
        return None
    if start_now:
        runtime.dispatch(plan)
    return plan.run_id


def _exists(runtime: Runtime, name: str) -> bool:
    return name in runtime.store.package_names()
