"""Notifications over a real SMTP server (aiosmtpd on loopback), sent by a real worker, on each backend."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from jqm_celery import (
    Entry,
    JobQueueManager,
    LogKind,
    Notify,
    OnError,
    Package,
    Recurrence,
    RetryPolicy,
    RunStatus,
    Scenario,
    Webhook,
)
from jqm_celery.cli import base as cli_base
from jqm_celery.cli import cli
from jqm_celery.notifications.records import Notification, NotificationStatus
from tests.integration.conftest import Backend, Worker
from tests.integration.mailserver import PASSWORD, MailServer

ONE_RETRY = RetryPolicy(max_retries=1, base_delay=timedelta(milliseconds=100), max_delay=timedelta(seconds=1))


@pytest.fixture(scope="module")
def mail_backend(backend: Backend, mail: MailServer) -> Backend:
    """The session backend's broker and store, with SMTP configured and queues of its own."""
    conf = {
        **backend.conf,
        "task_default_queue": f"{backend.queue}-mail",
        "jqm_notification_queue": f"{backend.queue}-notify",
        "jqm_smtp_url": mail.url,
        "jqm_mail_from": "jqm@example.com",
        # Fast retries: about 6 s before a refused mail is given up.
        "jqm_notification_retry": {"max_retries": 8, "base_delay_s": 0.3, "max_delay_s": 1.0},
        "jqm_web_url": "http://jqm.test/",
        "jqm_flower_url": "http://flower.test:5555",
    }
    return Backend(backend.name, conf, backend.tmp)


@pytest.fixture(scope="module")
def mail_worker(mail_backend: Backend) -> Iterator[Worker]:
    # No -Q: the worker must pick up the notification queue by itself.
    running = Worker(mail_backend, ["--pool=prefork", "--concurrency=2"]).start()
    yield running
    running.stop()


@pytest.fixture
def mjqm(mail_backend: Backend, mail_worker: Worker) -> JobQueueManager:
    return JobQueueManager.of(mail_backend.app())


@pytest.fixture
def at() -> Callable[[str], str]:
    """Addresses unique to the test: ``at("ops")`` → ``ops@t1a2b3c.example.com``."""
    domain = f"t{uuid.uuid4().hex[:8]}.example.com"
    return lambda local: f"{local}@{domain}"


def _settled(jqm: JobQueueManager, package: str, count: int, timeout: float = 30.0) -> list[Notification]:
    """Wait until the package has ``count`` notifications and none is still pending or being sent."""
    deadline = time.monotonic() + timeout
    while True:
        items = jqm.notifications.history(package=package)
        open_ = [n for n in items if n.status in (NotificationStatus.PENDING, NotificationStatus.SENDING)]
        if len(items) >= count and not open_:
            return items
        if time.monotonic() > deadline:
            raise AssertionError(f"notifications of {package} did not settle: {items}")
        time.sleep(0.05)


def test_a_failing_run_mails_each_scenario_to_exactly_its_recipients(
    mjqm: JobQueueManager, mail: MailServer, name: str, at: Callable[[str], str], tmp_path: Any
) -> None:
    marks = tmp_path / "marks.jsonl"
    mjqm.save(
        Package(
            name,
            entries=[
                Entry("tests.flaky", args=[str(marks), "flaky", 1], run_order=10, retry=ONE_RETRY),
                Entry("tests.boom", args=["bank unreachable"], run_order=20),
                Entry("tests.noop", run_order=30),
            ],
            on_error=OnError.STOP,
            notifications=[
                Notify(at("started"), on={Scenario.RUN_STARTED}),
                Notify(at("retrying"), on={Scenario.JOB_RETRYING}),
                Notify(at("jobfailed"), on={Scenario.JOB_FAILED}),
                Notify([at("runfailed"), at("ops")], on={Scenario.RUN_FAILED}),
                Notify(at("stopped"), on={Scenario.PACKAGE_STOPPED}),
                Notify(at("succeeded"), on={Scenario.RUN_SUCCEEDED}),
                Notify(at("stale"), on={Scenario.RUN_STALE}),
            ],
        )
    )
    mjqm.activate(name)
    run = mjqm.run_now(name).wait(timeout=60)
    assert run.status is RunStatus.FAILED

    expected = ["jobfailed", "ops", "retrying", "runfailed", "started", "stopped"]
    for local in expected:
        mail.inbox.wait_for(at(local))
    _settled(mjqm, name, len(expected))
    domain = at("")
    assert mail.inbox.recipients(containing=name) == sorted(at(x) for x in expected)
    assert all(a.endswith(domain) for a in mail.inbox.recipients(containing=name))

    failed = mail.inbox.to(at("jobfailed"))[0]
    assert failed["Subject"] == f"[jqm] {name} #{run.id}: job failed: tests.boom"
    text = failed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "ValueError: bank unreachable" in text
    assert "Traceback (last lines):" in text
    assert f"http://jqm.test/runs/{run.id}" in text
    assert f"http://flower.test:5555/task/{run.job('tests.boom').celery_task_id}" in text
    assert failed.get_body(("html",)) is not None


def test_a_succeeding_run_mails_only_the_success_recipients(
    mjqm: JobQueueManager, mail: MailServer, name: str, at: Callable[[str], str]
) -> None:
    mjqm.save(
        Package(
            name,
            entries=[Entry("tests.noop")],
            notifications=[
                Notify([at("cfo"), at("controller")], on={Scenario.RUN_SUCCEEDED}),
                Notify(at("ops"), on={Scenario.RUN_FAILED, Scenario.JOB_FAILED, Scenario.JOB_RETRYING}),
            ],
        )
    )
    run = mjqm.run_now(name).wait(timeout=60)
    assert run.status is RunStatus.SUCCEEDED

    mail.inbox.wait_for(at("cfo"))
    mail.inbox.wait_for(at("controller"))
    _settled(mjqm, name, 2)
    assert mail.inbox.recipients(containing=name) == sorted([at("cfo"), at("controller")])
    assert mail.inbox.to(at("cfo"))[0]["Subject"] == f"[jqm] {name} #{run.id}: run succeeded"


def test_a_job_that_hides_its_traceback_sends_none(
    mjqm: JobQueueManager, mail: MailServer, name: str, at: Callable[[str], str]
) -> None:
    mjqm.save(
        Package(
            name,
            entries=[Entry("tests.fail_job", args=["customer file missing", False])],
            notifications=[Notify(at("ops"), on={Scenario.JOB_FAILED})],
        )
    )
    mjqm.run_now(name).wait(timeout=60)
    text = mail.inbox.wait_for(at("ops"))[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "JobError" not in text
    assert "customer file missing" in text
    assert "Traceback" not in text


def test_a_message_delivered_twice_sends_one_mail(
    mjqm: JobQueueManager, mail_worker: Worker, mail: MailServer, name: str, at: Callable[[str], str]
) -> None:
    message = {
        "key": f"duplicate:{name}",
        "scenario": Scenario.RUN_SUCCEEDED.value,
        "package": name,
        "run_id": None,
        "job_id": None,
        "log_id": None,
        "task": None,
        "status": "SUCCEEDED",
        "error": None,
        "message": "delivered twice on purpose",
        "at": "2026-01-01T00:00:00+00:00",
        "recipients": [at("once")],
        "webhooks": [],
    }
    queue = mjqm.settings.notifications.queue
    sent = [mjqm.notifications.task.apply_async(kwargs={"message": message}, queue=queue) for _ in range(2)]

    deadline = time.monotonic() + 30
    while not all(f"jqm.notify[{s.id}] succeeded" in mail_worker.log() for s in sent):
        assert time.monotonic() < deadline, "both copies of the message were not processed"
        time.sleep(0.05)
    assert len(mail.inbox.to(at("once"))) == 1
    assert [n.status for n in mjqm.notifications.history(package=name)] == [NotificationStatus.SENT]


def test_smtp_down_leaves_the_run_alone_and_the_mail_arrives_once_it_is_back(
    mjqm: JobQueueManager, mail: MailServer, name: str, at: Callable[[str], str]
) -> None:
    mjqm.save(
        Package(name, entries=[Entry("tests.noop")], notifications=[Notify(at("late"), on={"RUN_SUCCEEDED"})])
    )
    mail.stop()
    try:
        run = mjqm.run_now(name).wait(timeout=30)
        assert run.status is RunStatus.SUCCEEDED
        deadline = time.monotonic() + 30
        while not any(n.tries >= 1 and n.error for n in mjqm.notifications.history(package=name)):
            assert time.monotonic() < deadline, "the notification was never tried"
            time.sleep(0.05)
        (pending,) = mjqm.notifications.history(package=name)
        assert pending.status in (NotificationStatus.PENDING, NotificationStatus.SENDING)
    finally:
        mail.start()
    mail.inbox.wait_for(at("late"))
    (sent,) = _settled(mjqm, name, 1)
    assert sent.status is NotificationStatus.SENT
    assert sent.tries >= 2


def test_a_mail_refused_after_every_retry_is_a_failed_notification_in_the_log_without_the_password(
    mjqm: JobQueueManager, mail_worker: Worker, name: str, at: Callable[[str], str], monkeypatch: Any
) -> None:
    mjqm.save(
        Package(
            name, entries=[Entry("tests.noop")], notifications=[Notify(at("refused"), on={"RUN_SUCCEEDED"})]
        )
    )
    run = mjqm.run_now(name).wait(timeout=30)

    (failed,) = _settled(mjqm, name, 1, timeout=60)
    assert failed.status is NotificationStatus.FAILED
    assert failed.tries == 9
    assert "550" in (failed.error or "")
    (entry,) = mjqm.log_entries(run_id=run.id, kind=LogKind.NOTIFICATION_FAILED)
    assert at("refused") in (entry.message or "")
    assert "mailbox unavailable" in (entry.error or "")

    monkeypatch.setattr(cli_base, "load_manager", lambda _path: mjqm)
    runner = CliRunner()
    outputs = [
        runner.invoke(cli, ["notifications", "list", "--package", name]).output,
        runner.invoke(cli, ["log", "--package", name]).output,
        runner.invoke(cli, ["packages", "show", name]).output,
    ]
    assert "FAILED" in outputs[0]
    everything = "\n".join(
        [
            *outputs,
            mail_worker.log(),
            repr(mjqm.settings),
            *(repr(e) for e in mjqm.log_entries(limit=10_000)),
            *(repr(n) for n in mjqm.notifications.history(limit=10_000)),
        ]
    )
    assert PASSWORD not in everything


def test_notifications_test_sends_to_every_recipient_and_reports_the_smtp_result(
    mjqm: JobQueueManager, mail: MailServer, name: str, at: Callable[[str], str], monkeypatch: Any
) -> None:
    mjqm.save(
        Package(
            name,
            entries=[Entry("tests.noop")],
            notifications=[
                Notify([at("a"), at("b")], on={Scenario.RUN_FAILED}),
                Notify(at("refused"), on={Scenario.RUN_SUCCEEDED}),
            ],
        )
    )
    monkeypatch.setattr(cli_base, "load_manager", lambda _path: mjqm)
    result = CliRunner().invoke(cli, ["notifications", "test", name])

    assert result.exit_code == 1, result.output
    assert re.search(
        rf"email {re.escape(at('a'))}: sent — accepted by smtp://jqm:\*\*\*@127\.0\.0\.1", result.output
    )
    assert f"email {at('refused')}: refused — SMTPRecipientsRefused" in result.output
    assert mail.inbox.wait_for(at("b"))[0]["Subject"] == f"[jqm] {name}: test notification"
    assert PASSWORD not in result.output


def test_packages_show_prints_the_notification_rules(
    mjqm: JobQueueManager, name: str, at: Callable[[str], str], monkeypatch: Any
) -> None:
    mjqm.save(
        Package(
            name,
            entries=[Entry("tests.noop")],
            notifications=[Notify(at("ops"), on={Scenario.PACKAGE_STOPPED, Scenario.RUN_FAILED})],
        )
    )
    monkeypatch.setattr(cli_base, "load_manager", lambda _path: mjqm)
    output = CliRunner().invoke(cli, ["packages", "show", name]).output
    assert re.search(rf"{re.escape(at('ops'))}\s+│\s+run failed, package stopped", output), output


class _Hooks(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


def test_a_webhook_receives_the_event_as_json(mjqm: JobQueueManager, name: str) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks/jqm"
        mjqm.save(
            Package(
                name, entries=[Entry("tests.noop")], notifications=[Webhook(url, on={Scenario.RUN_SUCCEEDED})]
            )
        )
        run = mjqm.run_now(name).wait(timeout=30)
        (sent,) = _settled(mjqm, name, 1)
    finally:
        server.shutdown()
    assert sent.status is NotificationStatus.SENT
    (hook,) = [h for h in _Hooks.received if h["package"] == name]
    assert (hook["scenario"], hook["run_id"], hook["run_status"]) == ("RUN_SUCCEEDED", run.id, "SUCCEEDED")


def test_a_run_that_a_recurrence_starts_mails_its_run_started_rule(
    mjqm: JobQueueManager, mail: MailServer, name: str, at: Callable[[str], str]
) -> None:
    due = mjqm.clock.now() + timedelta(seconds=0.5)
    mjqm.save(
        Package(
            name,
            entries=[Entry("tests.noop")],
            recurrences=[Recurrence.once(due)],
            notifications=[Notify(at("started"), on={Scenario.RUN_STARTED})],
        )
    )
    mjqm.activate(name)
    time.sleep(max((due - mjqm.clock.now()).total_seconds(), 0) + 0.05)

    fired = mjqm.fire_recurrences(grace=timedelta(seconds=30), limit=10, holder="t", recover_after=None)

    [plan] = [plan for plan in fired.plans if plan.package == name]
    assert mjqm.run(plan.run_id).wait(timeout=60).status is RunStatus.SUCCEEDED
    mail.inbox.wait_for(at("started"))
    [sent] = _settled(mjqm, name, 1)
    assert (sent.scenario, sent.run_id) == (Scenario.RUN_STARTED, plan.run_id)
