"""From events to mail, off the critical path.

1. The store hands every committed event to ``Notifications.on_event``. Most events concern no one and
   cost nothing; for one that a rule asks for, one small ``jqm.notify`` message goes to the notification
   queue. Successful attempts produce no event at all.
2. ``jqm.notify`` runs on a worker: it gathers what the notice says (run, job, attempt, time zone), opens
   one ledger row per target, and sends each mail (or webhook) it can claim. Refused ones are retried by
   Celery with the notification retry policy; after the last retry they are FAILED, with a log entry.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Celery, Task
from celery.signals import celeryd_init

from jqm_celery.backoff import retry_delay
from jqm_celery.clock import Clock
from jqm_celery.errors import NotFoundError, ValidationError
from jqm_celery.events import Event
from jqm_celery.notifications.mail import FailedJob, Notice, render_mail
from jqm_celery.notifications.records import Channel, Notification, NotificationStatus
from jqm_celery.notifications.rules import (
    Notify,
    Rule,
    Scenario,
    Targets,
    Webhook,
    check_rules,
    event_key,
    scenario_of,
    targets_for,
)
from jqm_celery.notifications.webhook import WebhookError, post_notice
from jqm_celery.records import Job, LogEntry, Run
from jqm_celery.settings import Settings
from jqm_celery.statuses import JobStatus
from jqm_celery.store import Store
from jqm_celery.store.notifications import NotificationLedger

logger = logging.getLogger("jqm_celery.notifications")

NOTIFY_TASK = "jqm.notify"
_ERROR_MAX = 1000
_FAILED_JOB = frozenset({JobStatus.ERROR, JobStatus.ABORTED})


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending one test notification to one target."""

    channel: Channel
    target: str
    sent: bool
    detail: str


class _Refused(Exception):
    """A target refused a notification; ``permanent`` when retrying cannot help (no SMTP configured)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Notifications:
    """The notifier of one app: listens to the store, sends ``jqm.notify``, delivers mail and webhooks."""

    def __init__(self, app: Celery, store: Store, settings: Settings, clock: Clock) -> None:
        self.app = app
        self.store = store
        self.clock = clock
        self.config = settings.notifications
        self.web_url = settings.web_url
        self.flower_url = settings.flower_url
        self.ledger = NotificationLedger(store)
        store.listeners.append(self.on_event)
        self.task = _register(app, self)
        celeryd_init.connect(self._consume_queue, weak=False)

    # -- the public API ---------------------------------------------------------------------

    def set_queue_rules(self, queue: str, rules: Sequence[Rule]) -> None:
        """Notification rules for the stand-alone jobs of ``queue`` (replaces the queue's rules)."""
        if not isinstance(queue, str) or not queue.strip():
            raise ValidationError(f"queue must be a queue name, got {queue!r}")
        self.ledger.set_queue_rules(queue, check_rules(rules, f"queue '{queue}'"))

    def queue_rules(self, queue: str) -> tuple[Rule, ...]:
        return self.ledger.queue_rules(queue)

    def history(
        self,
        *,
        package: str | None = None,
        status: NotificationStatus | str | None = None,
        run_id: int | None = None,
        limit: int = 100,
    ) -> list[Notification]:
        """Sent, pending and failed notifications, newest first."""
        chosen = None if status is None else _status(status)
        return self.ledger.notifications(package=package, status=chosen, run_id=run_id, limit=limit)

    def test(self, package: str) -> list[Delivery]:
        """Send a test notification to every recipient and webhook of the package's rules, right now."""
        state = self.store.package(package)
        rules = state.definition.notifications
        if not rules:
            raise ValidationError(
                f"package '{package}' has no notification rules; add notifications=[Notify(...)] to it"
            )
        targets = Targets(
            tuple(dict.fromkeys(t for rule in rules if isinstance(rule, Notify) for t in rule.targets)),
            tuple(dict.fromkeys(t for rule in rules if isinstance(rule, Webhook) for t in rule.targets)),
        )
        notice = Notice(
            scenario=Scenario.RUN_SUCCEEDED,
            event_key=f"test:{uuid.uuid4().hex}",
            package=package,
            message="This is a test notification sent by `jqm notifications test`; nothing has run.",
            tz=_time_zone(state.definition.recurrences),
            test=True,
        )
        now = self.clock.now()
        pairs = _pairs(targets)
        self.ledger.open(
            notice.event_key,
            pairs,
            scenario="TEST",
            package=package,
            run_id=None,
            job_id=None,
            subject=notice.subject,
            now=now,
        )
        deliveries = []
        for channel, target in pairs:
            self.ledger.claim(notice.event_key, target, now)
            try:
                detail = self._send(channel, target, notice)
            except _Refused as exc:
                self.ledger.refused(notice.event_key, target, self.clock.now(), str(exc), final=True)
                deliveries.append(Delivery(channel, target, False, str(exc)))
            else:
                self.ledger.sent(notice.event_key, target, self.clock.now())
                deliveries.append(Delivery(channel, target, True, detail))
        return deliveries

    # -- events → jqm.notify messages (the process that recorded the event) ----------------

    def on_event(self, event: Event) -> None:
        scenario = scenario_of(event)
        if scenario is None or not event.notify:
            return
        if event.package is not None:
            rules = self.ledger.package_rules(event.package)
        elif event.job_id is not None:
            rules = self.ledger.job_rules(event.job_id)
        else:
            return
        targets = targets_for(rules, scenario)
        if not targets:
            return
        message = {
            "key": event_key(event, scenario),
            "scenario": scenario.value,
            "package": event.package,
            "run_id": event.run_id,
            "job_id": event.job_id,
            "log_id": event.log_id,
            "task": event.task,
            "status": event.status,
            "error": None if event.error is None else event.error[:_ERROR_MAX],
            "message": event.message,
            "at": event.at.isoformat(),
            "recipients": list(targets.recipients),
            "webhooks": list(targets.webhooks),
        }
        self.task.apply_async(kwargs={"message": message}, queue=self.config.queue)

    # -- jqm.notify (a worker) --------------------------------------------------------------

    def deliver(self, task: Task, message: dict[str, Any]) -> str:
        notice = self.notice(message)
        pairs = _pairs(Targets(tuple(message["recipients"]), tuple(message["webhooks"])))
        now = self.clock.now()
        self.ledger.open(
            notice.event_key,
            pairs,
            scenario=notice.scenario,
            package=notice.package,
            run_id=notice.run_id,
            job_id=notice.job_id,
            subject=notice.subject,
            now=now,
        )
        retries = int(getattr(task.request, "retries", 0) or 0)
        last_try = retries >= self.config.retry.max_retries
        sent = retry = 0
        for channel, target in pairs:
            if not self.ledger.claim(notice.event_key, target, now):
                continue
            try:
                self._send(channel, target, notice)
            except _Refused as exc:
                final = last_try or exc.permanent
                logger.warning(
                    "jqm: %s notification %s to %s refused%s: %s",
                    channel.lower(),
                    notice.event_key,
                    target,
                    "" if final else " (will retry)",
                    exc,
                )
                self.ledger.refused(notice.event_key, target, self.clock.now(), str(exc), final=final)
                retry += not final
            else:
                self.ledger.sent(notice.event_key, target, self.clock.now())
                sent += 1
        if retry:
            delay = retry_delay(self.config.retry, retries + 1)
            raise task.retry(
                countdown=delay.total_seconds(), max_retries=None, exc=None, queue=self.config.queue
            )
        return f"{sent} sent"

    def notice(self, message: dict[str, Any]) -> Notice:
        """What the notification says, read from the store now (the message itself stays small)."""
        scenario = Scenario(message["scenario"])
        run = self._run(message.get("run_id"))
        job = self._job(run, message.get("job_id"))
        attempt = _attempt(job, message.get("log_id"))
        failed = tuple(j for j in (run.jobs if run else ()) if j.status in _FAILED_JOB)
        focus = job or (failed[0] if failed else None)
        focus_attempt = attempt or (focus.attempts[-1] if focus and focus.attempts else None)
        tz = "UTC"
        if message.get("package"):
            try:
                tz = _time_zone(self.store.package(message["package"]).definition.recurrences)
            except NotFoundError:
                tz = "UTC"
        run_level = scenario in (Scenario.RUN_STARTED, Scenario.RUN_SUCCEEDED, Scenario.RUN_FAILED)
        started, finished = (
            (run.started_at, run.finished_at)
            if run_level and run is not None
            else _span(focus_attempt, focus, datetime.fromisoformat(message["at"]))
        )
        task_id = (focus_attempt.celery_task_id if focus_attempt else None) or (
            focus.celery_task_id if focus else None
        )
        return Notice(
            scenario=scenario,
            event_key=message["key"],
            package=message.get("package"),
            run_id=message.get("run_id"),
            run_status=None if run is None else run.status,
            trigger=None if run is None else run.trigger,
            job_id=None if focus is None else focus.id,
            entry=message.get("task") or (focus.task if focus else None),
            status=message.get("status") if not run_level else (run.status if run else None),
            retry=None if focus_attempt is None or run_level else focus_attempt.retry,
            max_retries=None if focus is None else focus.max_retries,
            next_retry_in_s=_seconds(focus_attempt) if scenario is Scenario.JOB_RETRYING else None,
            error=(focus_attempt.error if focus_attempt else None) or message.get("error"),
            traceback=None if focus_attempt is None else focus_attempt.traceback,
            message=message.get("message"),
            started_at=started,
            finished_at=finished,
            tz=tz,
            run_url=self._link(self.web_url, f"runs/{message['run_id']}") if message.get("run_id") else None,
            task_url=self._link(self.flower_url, f"task/{task_id}") if task_id else None,
            failed_jobs=tuple(FailedJob(j.task, j.status, j.error) for j in failed) if run_level else (),
        )

    # -- sending ----------------------------------------------------------------------------

    def _send(self, channel: Channel, target: str, notice: Notice) -> str:
        """Send to one target; returns what the server said, raises _Refused."""
        if channel is Channel.WEBHOOK:
            try:
                status = post_notice(target, notice)
            except WebhookError as exc:
                raise _Refused(str(exc)) from None
            return f"HTTP {status}"
        smtp, sender = self.config.smtp, self.config.mail_from
        if smtp is None or sender is None:
            raise _Refused(
                "no SMTP server is configured: set app.conf.jqm_smtp_url and jqm_mail_from", permanent=True
            )
        import smtplib  # only a worker that sends mail needs it

        try:
            smtp.send(render_mail(notice, sender=sender, to=target))
        except (smtplib.SMTPException, OSError) as exc:
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise _Refused(smtp.scrub(text)[:_ERROR_MAX]) from None
        return f"accepted by {smtp.redacted()}"

    def _run(self, run_id: int | None) -> Run | None:
        if run_id is None:
            return None
        try:
            return self.store.run(run_id)
        except NotFoundError:
            return None

    def _job(self, run: Run | None, job_id: int | None) -> Job | None:
        if job_id is None:
            return None
        if run is not None:
            return next((j for j in run.jobs if j.id == job_id), None)
        try:
            return self.ledger.job(job_id)
        except NotFoundError:
            return None

    @staticmethod
    def _link(base: str | None, path: str) -> str | None:
        return None if base is None else f"{base.rstrip('/')}/{path}"

    def _consume_queue(self, sender: object = None, instance: Any = None, **_: object) -> None:
        # A worker started without -Q consumes the notification queue too, so mail is not silently stuck;
        # one started with -Q consumes it only when it is named.
        if instance is None or instance.app is not self.app:
            return
        queues = self.app.amqp.queues
        if self.config.queue not in queues:
            queues.select_add(self.config.queue)


def _register(app: Celery, notifications: Notifications) -> Task:
    def notify(self: Task, message: dict[str, Any]) -> str:
        """Send the notifications of one event (one mail per recipient, once)."""
        return notifications.deliver(self, message)

    task: Task = app.task(
        name=NOTIFY_TASK,
        bind=True,
        shared=False,
        acks_late=True,
        serializer="json",
        max_retries=None,
        ignore_result=True,
    )(notify)
    return task


def _pairs(targets: Targets) -> list[tuple[Channel, str]]:
    return [(Channel.EMAIL, r) for r in targets.recipients] + [(Channel.WEBHOOK, u) for u in targets.webhooks]


def _attempt(job: Job | None, log_id: int | None) -> LogEntry | None:
    if job is None or log_id is None:
        return None
    return next((a for a in job.attempts if a.id == log_id), None)


def _span(attempt: LogEntry | None, job: Job | None, at: datetime) -> tuple[datetime | None, datetime | None]:
    if attempt is not None:
        return attempt.started_at, attempt.finished_at or at
    if job is not None:
        return job.started_at, job.finished_at or at
    return None, at


def _seconds(attempt: LogEntry | None) -> float | None:
    if attempt is None or attempt.planned_delay is None:
        return None
    return attempt.planned_delay.total_seconds()


def _time_zone(recurrences: Any) -> str:
    """The package's time zone: its first recurrence's, else UTC."""
    return str(recurrences[0].tz) if recurrences else "UTC"


def _status(value: NotificationStatus | str) -> NotificationStatus:
    try:
        return NotificationStatus(str(value).upper())
    except ValueError:
        choices = ", ".join(s.value for s in NotificationStatus)
        raise ValidationError(
            f"notification status {value!r} is not valid; choose one of {choices}"
        ) from None
