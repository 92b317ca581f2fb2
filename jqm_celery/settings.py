"""``jqm_*`` settings, read once from the Celery app's ``conf`` into a frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from jqm_celery.errors import ConfigError
from jqm_celery.notifications.settings import NotificationSettings
from jqm_celery.store.engine import parse_url

DEFAULT_DATABASE_URL = "sqlite:///jqm.sqlite"
#: ``jqm_retry_delays``: wait the retry policy's delay before a retry ("real"), or retry at once ("skip",
#: for tests: the delay is still computed and recorded, only not waited for).
RETRY_DELAYS = ("real", "skip")
#: ``jqm_store_retry_s``: how long a job's claim or end retries a database outage before the job's message
#: is sent again for later (see docs/job-queue.md, "Guarantees").
DEFAULT_STORE_RETRY_S = 60.0


@dataclass(frozen=True)
class Settings:
    database_url: str
    #: The queue jqm's own bookkeeping tasks (closing runs, error callbacks) go to; None: the app's default.
    control_queue: str | None
    #: Migrate the store automatically at first use; None: only the embedded SQLite store.
    auto_migrate: bool | None
    #: Base URLs used in links (notifications, CLI output), or None.
    flower_url: str | None
    web_url: str | None
    #: "real": a retry waits its delay; "skip": it is sent at once (tests, see jqm_celery.testing).
    retry_delays: str = "real"
    #: Seconds a job's claim or end retries a database outage, with backoff, before it gives up for now.
    store_retry_s: float = DEFAULT_STORE_RETRY_S
    #: SMTP server, sender, queue and retry of notifications.
    notifications: NotificationSettings = field(default_factory=NotificationSettings)

    @classmethod
    def from_conf(cls, conf: Any) -> Settings:
        url = conf.get("jqm_database_url")
        url = DEFAULT_DATABASE_URL if url is None else url
        parsed = parse_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
            # Every process (worker, CLI, beat) must open the same file, wherever it was started from.
            url = parsed.set(database=os.path.abspath(parsed.database)).render_as_string(hide_password=False)
        auto_migrate = conf.get("jqm_auto_migrate")
        if auto_migrate is not None and not isinstance(auto_migrate, bool):
            raise ConfigError(f"jqm_auto_migrate must be True, False or None, got {auto_migrate!r}")
        retry_delays = conf.get("jqm_retry_delays") or "real"
        if retry_delays not in RETRY_DELAYS:
            raise ConfigError(
                f"jqm_retry_delays must be one of {', '.join(map(repr, RETRY_DELAYS))}, got {retry_delays!r}"
            )
        return cls(
            database_url=url,
            store_retry_s=_store_retry_s(conf),
            control_queue=_optional_str(conf, "jqm_control_queue"),
            auto_migrate=auto_migrate,
            flower_url=_optional_str(conf, "jqm_flower_url"),
            web_url=_optional_str(conf, "jqm_web_url"),
            retry_delays=retry_delays,
            notifications=NotificationSettings.from_conf(conf),
        )


def _optional_str(conf: Any, key: str) -> str | None:
    value = conf.get(key)
    if value is None or (isinstance(value, str) and value.strip()):
        return value
    raise ConfigError(f"{key} must be a non-empty string or None, got {value!r}")


def _store_retry_s(conf: Any) -> float:
    value = conf.get("jqm_store_retry_s")
    if value is None:
        return DEFAULT_STORE_RETRY_S
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ConfigError(
            f"jqm_store_retry_s must be a number of seconds greater than 0 (default "
            f"{DEFAULT_STORE_RETRY_S:g}), got {value!r}"
        )
    return float(value)
