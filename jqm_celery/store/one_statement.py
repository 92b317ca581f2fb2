"""PostgreSQL: an attempt's start and its end as one autocommitted statement each.

PostgreSQL runs a data-modifying CTE atomically as one statement, so claiming a job and logging its
attempt (UPDATE … RETURNING, then INSERT) needs one round trip instead of four (BEGIN, two statements,
COMMIT), and so does ending the attempt (two UPDATEs). The rows written and the conditions checked are
the store's own statements, only combined: SQLite, which has no DML in CTEs, runs them as a two-statement
transaction instead.

The claim's commit does not wait for its WAL record to reach the disk (``synchronous_commit`` off for
that one transaction): the attempt's end, a normal commit, flushes it, so an end is never durable
without its start, and a claim lost in a server crash is a job that had not started, which the worker
then fails to end (its wrapper's error callback records the job as failed). A job's two commits wait for
one disk flush instead of two.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Update, bindparam, func, insert, literal, select

from jqm_celery.statuses import AttemptStatus, LogKind
from jqm_celery.store.models import LogEntryRow


def claim_and_log(claim: Update) -> Select[Any]:
    """``claim`` (UPDATE of the job … RETURNING its columns) plus the INSERT of the RUNNING attempt.

    Bound parameters, shared with ``claim``: p_job_id, p_worker, p_celery_task_id, p_now. The result has
    the claim's returned columns and ``log_id``, or no row if the job was not claimed.
    """
    claimed = claim.cte("claimed")
    logged = (
        insert(LogEntryRow)
        .from_select(
            [
                LogEntryRow.kind,
                LogEntryRow.status,
                LogEntryRow.package_name,
                LogEntryRow.run_id,
                LogEntryRow.job_id,
                LogEntryRow.task,
                LogEntryRow.run_order,
                LogEntryRow.celery_task_id,
                LogEntryRow.worker,
                LogEntryRow.retry,
                LogEntryRow.started_at,
            ],
            select(
                literal(LogKind.ATTEMPT.value),
                literal(AttemptStatus.RUNNING.value),
                claimed.c.package_name,
                claimed.c.run_id,
                bindparam("p_job_id", type_=LogEntryRow.job_id.type),
                claimed.c.task,
                claimed.c.run_order,
                bindparam("p_celery_task_id", type_=LogEntryRow.celery_task_id.type),
                bindparam("p_worker", type_=LogEntryRow.worker.type),
                claimed.c.retry,
                bindparam("p_now", type_=LogEntryRow.started_at.type),
            ),
        )
        .returning(LogEntryRow.id)
        .cte("logged")
    )
    statement = select(claimed, select(logged.c.id).scalar_subquery().label("log_id"))
    # Local to this statement's transaction; evaluated only when a job was claimed (see above).
    no_flush_wait = func.set_config("synchronous_commit", "off", True).label("synchronous_commit")
    return statement.add_columns(no_flush_wait)


def both(first: Update, then: Update) -> Update:
    """Two UPDATEs as one statement (``first`` runs as a CTE of ``then``)."""
    return then.add_cte(first.cte("first_update"))
