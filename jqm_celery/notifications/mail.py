"""What a notification says: a ``Notice`` (pure data) rendered as a subject, plain text, HTML and JSON.

Times are shown in the package's time zone: the time zone of its first recurrence, or UTC when it has
none.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from jqm_celery.notifications.rules import Scenario

#: The last lines of a traceback are the ones that say what went wrong.
TRACEBACK_LINES = 25
TRACEBACK_CHARS = 4000

_WHAT = {
    Scenario.RUN_STARTED: "run started",
    Scenario.RUN_SUCCEEDED: "run succeeded",
    Scenario.RUN_FAILED: "run failed",
    Scenario.JOB_FAILED: "job failed",
    Scenario.JOB_RETRYING: "job failed, will retry",
    Scenario.PACKAGE_STOPPED: "package stopped",
    Scenario.RUN_STALE: "job stale",
}


@dataclass(frozen=True)
class FailedJob:
    task: str
    status: str
    error: str | None


@dataclass(frozen=True)
class Notice:
    """Everything a notification tells, gathered by the notifier when it is sent."""

    scenario: Scenario
    event_key: str
    package: str | None
    run_id: int | None = None
    run_status: str | None = None
    trigger: str | None = None
    job_id: int | None = None
    entry: str | None = None
    status: str | None = None
    retry: int | None = None
    max_retries: int | None = None
    next_retry_in_s: float | None = None
    error: str | None = None
    traceback: str | None = None
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    tz: str = "UTC"
    run_url: str | None = None
    task_url: str | None = None
    failed_jobs: tuple[FailedJob, ...] = field(default=())
    #: A test sent by ``jqm notifications test``: nothing happened.
    test: bool = False

    @property
    def subject(self) -> str:
        what = "test notification" if self.test else _WHAT[self.scenario]
        owner = self.package or f"queue job #{self.job_id}"
        run = f" #{self.run_id}" if self.run_id is not None else ""
        if self.scenario in (Scenario.JOB_FAILED, Scenario.JOB_RETRYING, Scenario.RUN_STALE) and self.entry:
            return f"[jqm] {owner}{run}: {what}: {self.entry}"
        return f"[jqm] {owner}{run}: {what}"

    def facts(self) -> list[tuple[str, str]]:
        """The labelled lines both the text and the HTML part show, in order."""
        rows: list[tuple[str, str | None]] = [
            ("Package", self.package),
            ("Run", None if self.run_id is None else f"#{self.run_id} ({self.trigger or 'run'})"),
            ("Run status", self.run_status),
            ("Entry", self.entry),
            ("Job", None if self.job_id is None else f"#{self.job_id}"),
            ("Status", self.status),
            ("Attempt", self._attempt()),
            ("Started", self._when(self.started_at)),
            ("Finished", self._when(self.finished_at)),
            ("Error", self.error),
            ("Note", self.message),
            ("Run in the web UI", self.run_url),
            ("Task in Flower", self.task_url),
        ]
        return [(label, value) for label, value in rows if value]

    def _attempt(self) -> str | None:
        if self.retry is None:
            return None
        text = f"{self.retry + 1} of {(self.max_retries or 0) + 1}"
        if self.next_retry_in_s is not None:
            text += f"; next try in {self.next_retry_in_s:g} s"
        return text

    def _when(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        return value.astimezone(ZoneInfo(self.tz)).strftime(f"%Y-%m-%d %H:%M:%S ({self.tz}, UTC%z)")

    def traceback_excerpt(self) -> str | None:
        if not self.traceback:
            return None
        lines = self.traceback.rstrip().splitlines()[-TRACEBACK_LINES:]
        return "\n".join(lines)[-TRACEBACK_CHARS:]

    def to_json(self) -> dict[str, Any]:
        """The webhook's body."""
        return {
            "scenario": self.scenario.value,
            "event_key": self.event_key,
            "subject": self.subject,
            "package": self.package,
            "run_id": self.run_id,
            "run_status": self.run_status,
            "job_id": self.job_id,
            "entry": self.entry,
            "status": self.status,
            "retry": self.retry,
            "error": self.error,
            "traceback": self.traceback_excerpt(),
            "message": self.message,
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "time_zone": self.tz,
            "run_url": self.run_url,
            "task_url": self.task_url,
            "failed_jobs": [
                {"entry": j.task, "status": j.status, "error": j.error} for j in self.failed_jobs
            ],
        }


def render_text(notice: Notice) -> str:
    width = max(len(label) for label, _ in notice.facts()) if notice.facts() else 0
    lines = [notice.subject.removeprefix("[jqm] "), ""]
    lines += [f"{label + ':':<{width + 1}} {value}" for label, value in notice.facts()]
    if notice.failed_jobs:
        lines += ["", "Failed jobs:"]
        lines += [f"  - {j.task}: {j.status}{f' — {j.error}' if j.error else ''}" for j in notice.failed_jobs]
    excerpt = notice.traceback_excerpt()
    if excerpt:
        lines += ["", "Traceback (last lines):", excerpt]
    lines += ["", "-- ", "jqm-celery"]
    return "\n".join(lines) + "\n"


def render_html(notice: Notice) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><th align="left" style="padding-right:1em">{e(label)}</th><td>{_cell(label, value)}</td></tr>'
        for label, value in notice.facts()
    )
    parts = [
        f'<h2 style="font-family:sans-serif">{e(notice.subject.removeprefix("[jqm] "))}</h2>',
        f'<table style="font-family:sans-serif;border-collapse:collapse">{rows}</table>',
    ]
    if notice.failed_jobs:
        items = "".join(
            f"<li><code>{e(j.task)}</code>: {e(j.status)}{f' — {e(j.error)}' if j.error else ''}</li>"
            for j in notice.failed_jobs
        )
        parts.append(f'<h3 style="font-family:sans-serif">Failed jobs</h3><ul>{items}</ul>')
    excerpt = notice.traceback_excerpt()
    if excerpt:
        parts.append(f'<h3 style="font-family:sans-serif">Traceback (last lines)</h3><pre>{e(excerpt)}</pre>')
    return f"<!doctype html><html><body>{''.join(parts)}</body></html>\n"


def _cell(label: str, value: str) -> str:
    if value.startswith(("http://", "https://")):
        return f'<a href="{html.escape(value, quote=True)}">{html.escape(value)}</a>'
    return html.escape(value) if label != "Entry" else f"<code>{html.escape(value)}</code>"


def render_mail(notice: Notice, *, sender: str, to: str) -> EmailMessage:
    """One e-mail to one recipient: plain text first, HTML as the alternative."""
    message = EmailMessage()
    message["Subject"] = notice.subject
    message["From"] = sender
    message["To"] = to
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["X-JQM-Event"] = notice.event_key
    message.set_content(render_text(notice))
    message.add_alternative(render_html(notice), subtype="html")
    return message
