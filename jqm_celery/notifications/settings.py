"""The notification settings (``jqm_smtp_url``, ``jqm_mail_from``, ``jqm_notification_*``), read once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jqm_celery.definitions import RetryPolicy
from jqm_celery.errors import ConfigError, ValidationError
from jqm_celery.notifications.rules import is_address
from jqm_celery.notifications.smtp import SmtpSettings, parse_smtp_url

DEFAULT_QUEUE = "jqm.notifications"
#: About a quarter of an hour of retries: 30 s, 1 min, 2 min, 4 min, 8 min.
DEFAULT_RETRY = RetryPolicy(
    max_retries=5, base_delay=timedelta(seconds=30), factor=2.0, max_delay=timedelta(minutes=15)
)


@dataclass(frozen=True)
class NotificationSettings:
    #: None: no SMTP server configured; e-mail notifications are recorded as failed.
    smtp: SmtpSettings | None = None
    mail_from: str | None = None
    #: The queue ``jqm.notify`` messages go to; workers consume it unless started with ``-Q`` without it.
    queue: str = DEFAULT_QUEUE
    retry: RetryPolicy = DEFAULT_RETRY

    @classmethod
    def from_conf(cls, conf: Any) -> NotificationSettings:
        smtp_url = conf.get("jqm_smtp_url")
        smtp = None if smtp_url is None else parse_smtp_url(smtp_url)
        mail_from = conf.get("jqm_mail_from")
        if mail_from is not None and not is_address(mail_from):
            raise ConfigError(
                f"jqm_mail_from must be an e-mail address such as 'jqm@example.com', got {mail_from!r}"
            )
        if smtp is not None and mail_from is None:
            raise ConfigError(
                f"jqm_smtp_url is set ({smtp.redacted()}) but jqm_mail_from is not; "
                "set app.conf.jqm_mail_from = 'jqm@example.com'"
            )
        queue = conf.get("jqm_notification_queue")
        if queue is not None and (not isinstance(queue, str) or not queue.strip()):
            raise ConfigError(f"jqm_notification_queue must be a queue name, got {queue!r}")
        return cls(
            smtp=smtp,
            mail_from=mail_from,
            queue=queue or DEFAULT_QUEUE,
            retry=_retry(conf.get("jqm_notification_retry")),
        )


def _retry(value: object) -> RetryPolicy:
    """A RetryPolicy, or a mapping of its fields in seconds (JSON-friendly, for config files)."""
    if value is None:
        return DEFAULT_RETRY
    if isinstance(value, RetryPolicy):
        return value
    if isinstance(value, Mapping):
        known = {"max_retries", "base_delay_s", "factor", "max_delay_s", "jitter"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(
                f"jqm_notification_retry: unknown key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        merged = {**DEFAULT_RETRY.to_dict(), **value}
        try:
            return RetryPolicy.from_dict(merged)
        except (ValidationError, TypeError, ValueError) as exc:
            raise ConfigError(f"jqm_notification_retry: {exc}") from None
    raise ConfigError(
        f"jqm_notification_retry must be a RetryPolicy or a dict such as "
        f"{{'max_retries': 5, 'base_delay_s': 30}}, got {value!r}"
    )
