"""SMTP settings and what a notification mail says: pure parsing and rendering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jqm_celery import ConfigError
from jqm_celery.notifications.mail import FailedJob, Notice, render_mail
from jqm_celery.notifications.rules import Scenario
from jqm_celery.notifications.settings import NotificationSettings
from jqm_celery.notifications.smtp import Security, parse_smtp_url

SECRET = "s3cr3t-Pa55"


def test_an_smtp_url_with_starttls_is_parsed_into_settings() -> None:
    smtp = parse_smtp_url(f"smtp://user:{SECRET}@mail.example.com:587?starttls=true")
    assert (smtp.host, smtp.port, smtp.security, smtp.username, smtp.password) == (
        "mail.example.com",
        587,
        Security.STARTTLS,
        "user",
        SECRET,
    )


@pytest.mark.parametrize(
    ("url", "port", "security"),
    [
        ("smtps://mail.example.com", 465, Security.SSL),
        ("smtp://mail.example.com?ssl=true", 465, Security.SSL),
        ("smtp://mail.example.com", 25, Security.NONE),
        ("smtp://mail.example.com:2525", 2525, Security.NONE),
    ],
)
def test_ssl_and_default_ports(url: str, port: int, security: Security) -> None:
    smtp = parse_smtp_url(url)
    assert (smtp.port, smtp.security) == (port, security)


def test_the_password_is_never_in_the_settings_repr_or_their_redacted_form() -> None:
    smtp = parse_smtp_url(f"smtp://user:{SECRET}@mail.example.com:587?starttls=true")
    assert SECRET not in repr(smtp)
    assert smtp.redacted() == "smtp://user:***@mail.example.com:587?starttls=true"
    assert smtp.scrub(f"login failed for {SECRET}") == "login failed for ***"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"http://user:{SECRET}@mail.example.com", "scheme 'http' is not supported"),
        (f"smtp://user:{SECRET}@mail.example.com:99999", "is not a valid URL"),
        (f"smtp://user:{SECRET}@mail.example.com:abc", "is not a valid URL"),
        (f"smtp://user:{SECRET}@", "names no server"),
        (f"smtp://user:{SECRET}@mail.example.com?tls=1", "unknown parameter"),
        (f"smtps://user:{SECRET}@mail.example.com?starttls=true", "exclude each other"),
        (f"smtp://user:{SECRET}@mail.example.com?starttls=maybe", "must be true or false"),
        (f"smtp://user:{SECRET}@mail.example.com?timeout=-1", "timeout must be > 0"),
    ],
)
def test_a_malformed_smtp_url_is_refused_at_start_up_without_the_password(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        NotificationSettings.from_conf({"jqm_smtp_url": url, "jqm_mail_from": "jqm@example.com"})
    assert SECRET not in str(caught.value)
    assert "jqm_smtp_url" in str(caught.value)


def test_an_smtp_url_without_a_sender_is_refused() -> None:
    with pytest.raises(ConfigError, match="jqm_mail_from is not") as caught:
        NotificationSettings.from_conf({"jqm_smtp_url": f"smtp://u:{SECRET}@mail.example.com"})
    assert SECRET not in str(caught.value)


def test_the_notification_retry_can_be_given_as_plain_seconds() -> None:
    settings = NotificationSettings.from_conf(
        {"jqm_notification_retry": {"max_retries": 2, "base_delay_s": 0.5}}
    )
    assert settings.retry.max_retries == 2
    assert settings.retry.base_delay.total_seconds() == 0.5


def _failed_notice(**fields: object) -> Notice:
    values: dict[str, object] = {
        "scenario": Scenario.JOB_FAILED,
        "event_key": "attempt:9:job_failed",
        "package": "nightly-billing",
        "run_id": 12,
        "run_status": "RUNNING",
        "trigger": "recurrence",
        "job_id": 40,
        "entry": "billing.upload_to_bank",
        "status": "ERROR",
        "retry": 2,
        "max_retries": 2,
        "error": "ConnectionError: bank <down>",
        "traceback": "Traceback (most recent call last):\n" + "".join(f"  line {i}\n" for i in range(60)),
        "started_at": datetime(2026, 7, 1, 22, 0, 5, tzinfo=UTC),
        "finished_at": datetime(2026, 7, 1, 22, 0, 9, tzinfo=UTC),
        "tz": "Europe/Amsterdam",
        "run_url": "https://jqm.example.com/runs/12",
        "task_url": "https://flower.example.com/task/abc",
    }
    values.update(fields)
    return Notice(**values)  # type: ignore[arg-type]


def test_a_mail_has_a_plain_text_and_an_html_part_naming_package_run_entry_status_and_error() -> None:
    mail = render_mail(_failed_notice(), sender="jqm@example.com", to="ops@example.com")
    assert mail["Subject"] == "[jqm] nightly-billing #12: job failed: billing.upload_to_bank"
    assert mail["To"] == "ops@example.com"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    page = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for expected in (
        "nightly-billing",
        "#12",
        "billing.upload_to_bank",
        "ERROR",
        "ConnectionError: bank <down>",
    ):
        assert expected in text
    assert "ConnectionError: bank &lt;down&gt;" in page
    assert '<a href="https://jqm.example.com/runs/12">' in page
    assert '<a href="https://flower.example.com/task/abc">' in page


def test_times_are_shown_in_the_package_time_zone() -> None:
    text = render_mail(_failed_notice(), sender="j@example.com", to="o@example.com").get_body(("plain",))
    assert "2026-07-02 00:00:05 (Europe/Amsterdam, UTC+0200)" in text.get_content()  # type: ignore[union-attr]


def test_the_traceback_is_cut_to_its_last_lines_and_left_out_when_suppressed() -> None:
    with_trace = _failed_notice().traceback_excerpt() or ""
    assert with_trace.splitlines()[-1] == "  line 59"
    assert "line 10\n" not in with_trace
    mail = render_mail(_failed_notice(traceback=None), sender="j@example.com", to="o@example.com")
    assert "Traceback" not in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_links_are_left_out_when_no_base_url_is_configured() -> None:
    notice = _failed_notice(run_url=None, task_url=None)
    labels = [label for label, _ in notice.facts()]
    assert "Run in the web UI" not in labels
    assert "Task in Flower" not in labels


def test_a_failed_run_lists_its_failed_jobs() -> None:
    notice = _failed_notice(
        scenario=Scenario.RUN_FAILED,
        failed_jobs=(FailedJob("billing.upload_to_bank", "ERROR", "bank down"),),
    )
    assert notice.subject == "[jqm] nightly-billing #12: run failed"
    text = render_mail(notice, sender="j@example.com", to="o@example.com").get_body(("plain",))
    assert "  - billing.upload_to_bank: ERROR — bank down" in text.get_content()  # type: ignore[union-attr]
