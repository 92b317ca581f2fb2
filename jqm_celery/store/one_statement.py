"""PostgreSQL: an attempt's start and its end as one autocommitted statement each.

PostgreSQL runs a data-modifying CTE atomically as one statement, so claiming a job and logging its
attempt (UPDATE … RETURNING, then INSERT) needs one round trip instead of four (BEGIN, two statements,
COMMIT), and so does ending the attempt (two UPDATEs). The rows written and the conditions checked are
the store's own statements, only combined: SQLite, which has no DML in CTEs, runs them as a two-statement
transaction instead.

Both commits are durable (the server's ``synchronous_commit``): a claim that returned is on disk before
the task's body runs, so a body that ran is always in the log, also after a server crash. (A claim
committed without waiting for its flush saves one disk flush per job; a crash right after it lost the
attempt of a body that ran. benchmarks/dispatch.py measures the difference, see docs/benchmarks.md.)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Update, bindparam, exists, func, insert, literal, select

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
    return select(claimed, select(logged.c.id).scalar_subquery().label("log_id"))


def end_attempt(end_job: Update, end_log: Update) -> Select[Any]:
    """``end_log`` (the attempt's log entry) then ``end_job``, which runs only if the attempt was ended.

    The result's one row counts what was ended: ``attempts`` (0 or 1) and ``jobs`` (0 or 1).
    """
    ended_log = end_log.returning(LogEntryRow.id).cte("ended_attempt")
    ended_job = end_job.where(exists(select(ended_log.c.id))).returning(end_job.table.c.id).cte("ended_job")
    return select(
        select(func.count()).select_from(ended_log).scalar_subquery().label("attempts"),
        select(func.count()).select_from(ended_job).scalar_subquery().label("jobs"),
    )
