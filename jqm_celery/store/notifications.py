"""The notification ledger: rules per queue, and one row per (event, target) that makes sending idempotent.

A notification is claimed (PENDING → SENDING) by one conditional UPDATE before it is sent, so a
``jqm.notify`` message delivered twice, or two workers retrying the same event, send it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Update, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from jqm_celery.errors import NotFoundError
from jqm_celery.notifications.records import Channel, Notification, NotificationStatus
from jqm_celery.notifications.rules import Rule, rule_from_dict
from jqm_celery.records import Job
from jqm_celery.statuses import LogKind
from jqm_celery.store import convert, log, writers
from jqm_celery.store.log import LogLine
from jqm_celery.store.models import JobRow, LogEntryRow, PackageRow
from jqm_celery.store.notification_models import NotificationRow, NotificationRuleRow
from jqm_celery.store.store import Store

#: A SENDING row older than this belongs to a worker that died while sending; it may be tried again.
SENDING_LEASE = timedelta(minutes=10)


class NotificationLedger:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- rules ------------------------------------------------------------------------------

    def package_rules(self, package: str) -> tuple[Rule, ...]:
        query = (
            select(NotificationRuleRow.definition)
            .join(PackageRow, PackageRow.id == NotificationRuleRow.package_id)
            .where(PackageRow.name == package)
            .order_by(NotificationRuleRow.position)
        )
        with self.store.transaction() as s:
            return tuple(rule_from_dict(d) for d in s.scalars(query))

    def job_rules(self, job_id: int) -> tuple[Rule, ...]:
        """The rules of the queue a stand-alone job was sent to."""
        with self.store.transaction() as s:
            queue = s.scalar(select(JobRow.queue).where(JobRow.id == job_id))
            return _queue_rules(s, queue) if queue else ()

    def queue_rules(self, queue: str) -> tuple[Rule, ...]:
        with self.store.transaction() as s:
            return _queue_rules(s, queue)

    def set_queue_rules(self, queue: str, rules: Sequence[Rule]) -> None:
        """Replace the rules of the queue's stand-alone jobs."""
        with self.store.transaction() as s:
            s.execute(delete(NotificationRuleRow).where(NotificationRuleRow.queue == queue))
            for position, rule in enumerate(rules, start=1):
                s.add(NotificationRuleRow(queue=queue, position=position, definition=rule.to_dict()))

    def job(self, job_id: int) -> Job:
        with self.store.transaction() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFoundError(f"job {job_id} does not exist")
            attempts = s.scalars(
                select(LogEntryRow)
                .where(LogEntryRow.job_id == job_id, LogEntryRow.kind == LogKind.ATTEMPT)
                .order_by(LogEntryRow.id)
            ).all()
            return convert.job(row, attempts)

    # -- notifications ----------------------------------------------------------------------

    def open(
        self,
        event_key: str,
        targets: Iterable[tuple[Channel, str]],
        *,
        scenario: str,
        package: str | None,
        run_id: int | None,
        job_id: int | None,
        subject: str,
        now: datetime,
    ) -> None:
        """A PENDING row per target, unless the event already has one for it."""
        rows = [
            {
                "event_key": event_key,
                "channel": channel,
                "target": target,
                "scenario": scenario,
                "package_name": package,
                "run_id": run_id,
                "job_id": job_id,
                "subject": subject,
                "status": NotificationStatus.PENDING,
                "tries": 0,
                "created_at": now,
            }
            for channel, target in targets
        ]
        if not rows:
            return
        with self.store.transaction() as s:
            writers.of(s).add_new_rows(s, NotificationRow, rows)

    def claim(self, event_key: str, target: str, now: datetime) -> bool:
        """PENDING (or abandoned SENDING) → SENDING; False if it is sent, failed or being sent elsewhere."""
        with self.store.transaction() as s:
            claimed = s.execute(
                update(NotificationRow)
                .where(
                    NotificationRow.event_key == event_key,
                    NotificationRow.target == target,
                    or_(
                        NotificationRow.status == NotificationStatus.PENDING,
                        and_(
                            NotificationRow.status == NotificationStatus.SENDING,
                            NotificationRow.claimed_at < now - SENDING_LEASE,
                        ),
                    ),
                )
                .values(status=NotificationStatus.SENDING, claimed_at=now, tries=NotificationRow.tries + 1)
                .returning(NotificationRow.id)
            ).one_or_none()
            return claimed is not None

    def sent(self, event_key: str, target: str, now: datetime) -> None:
        with self.store.transaction() as s:
            s.execute(
                _row(event_key, target).values(status=NotificationStatus.SENT, finished_at=now, error=None)
            )

    def refused(self, event_key: str, target: str, now: datetime, error: str, *, final: bool) -> None:
        """The server refused it: PENDING for the next retry, or FAILED with a log entry when ``final``."""
        with self.store.transaction() as s:
            if not final:
                s.execute(_row(event_key, target).values(status=NotificationStatus.PENDING, error=error))
                return
            row = s.execute(
                _row(event_key, target)
                .values(status=NotificationStatus.FAILED, finished_at=now, error=error)
                .returning(NotificationRow)
            ).scalar_one()
            _log_failure(s, row, now)

    def notifications(
        self,
        *,
        package: str | None = None,
        status: NotificationStatus | None = None,
        run_id: int | None = None,
        limit: int = 100,
    ) -> list[Notification]:
        """Newest first."""
        query = select(NotificationRow).order_by(NotificationRow.id.desc()).limit(limit)
        if package is not None:
            query = query.where(NotificationRow.package_name == package)
        if status is not None:
            query = query.where(NotificationRow.status == status)
        if run_id is not None:
            query = query.where(NotificationRow.run_id == run_id)
        with self.store.transaction() as s:
            return [_record(row) for row in s.scalars(query)]


def _queue_rules(s: Session, queue: str) -> tuple[Rule, ...]:
    query = (
        select(NotificationRuleRow.definition)
        .where(NotificationRuleRow.queue == queue)
        .order_by(NotificationRuleRow.position)
    )
    return tuple(rule_from_dict(d) for d in s.scalars(query))


def _row(event_key: str, target: str) -> Update:
    return update(NotificationRow).where(
        NotificationRow.event_key == event_key, NotificationRow.target == target
    )


def _log_failure(s: Session, row: NotificationRow, now: datetime) -> None:
    message = (
        f"{row.channel.lower()} notification '{row.subject}' to {row.target} failed after {row.tries} tries"
    )
    failed = LogLine(
        LogKind.NOTIFICATION_FAILED,
        NotificationStatus.FAILED,
        now,
        row.package_name,
        row.run_id,
        row.job_id,
        error=row.error,
        message=message,
        started_at=row.created_at,
    )
    log.write(s, [failed])


def _record(row: NotificationRow) -> Notification:
    return Notification(
        id=row.id,
        event_key=row.event_key,
        channel=Channel(row.channel),
        target=row.target,
        scenario=row.scenario,
        package=row.package_name,
        run_id=row.run_id,
        job_id=row.job_id,
        subject=row.subject,
        status=NotificationStatus(row.status),
        tries=row.tries,
        error=row.error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )
