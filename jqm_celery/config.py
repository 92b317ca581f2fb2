"""The drop-in configuration: what jqm needs on the user's Celery app, set without clobbering theirs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from celery import Celery
from celery.app import utils as celery_app_utils
from sqlalchemy.engine import make_url

from jqm_celery.settings import Settings

# Settings jqm turns on only while the app still has Celery's default value for them.
_EVENTS = {
    "worker_send_task_events": (False, True),  # Flower sees tasks as they start and finish
    "task_send_sent_event": (False, True),  # … and as soon as they are sent
    "broker_connection_retry_on_startup": (None, True),
}

# Kombu's Redis transport puts a lost worker's unacknowledged message back once it is older than the
# visibility timeout, but it looks only on every 10th call of its 10-second restore timer: about every
# 100 s. One look per call brings jobs back within visibility_timeout + 10 s, for one cheap query.
#
# Each look holds a lock in Redis that every worker of the database shares, and Kombu lets it expire after
# 300 s: a worker killed while it looked would stop every other worker's looks for five minutes. A look
# takes milliseconds (one short transaction per message it puts back), so a lock that expires after 30 s
# still keeps two looks apart.
_REDIS_TRANSPORT_OPTIONS = {"unacked_restore_throttle": 1, "unacked_mutex_expire": 30}
_REDIS_SCHEMES = ("redis", "rediss", "sentinel")

# Result backends whose chords do not work (a group of parallel entries needs one).
_NO_CHORDS = ("rpc", "amqp", "disabled")


# jqm settings that may hold a password and whose names Celery's own mask does not match (it masks keys
# containing API, TOKEN, KEY, SECRET, PASS, SIGNATURE, DATABASE…). jqm_database_url and jqm_web_secret
# already match.
SECRET_SETTINGS = ("jqm_smtp_url",)


def configure_app(app: Celery, settings: Settings) -> None:
    conf = app.conf
    for key, (celery_default, wanted) in _EVENTS.items():
        if conf.get(key) == celery_default:
            conf[key] = wanted
    accept = list(conf.get("accept_content") or ["json"])
    if "json" not in accept:
        conf.accept_content = [*accept, "json"]
    if _broker_scheme(app) in _REDIS_SCHEMES:
        conf.broker_transport_options = {**_REDIS_TRANSPORT_OPTIONS, **(conf.broker_transport_options or {})}
    if not conf.get("result_backend"):
        backend_url, engine_options = result_backend_for(settings.database_url)
        conf.result_backend = backend_url
        if engine_options and not conf.get("database_engine_options"):
            conf.database_engine_options = engine_options


def hide_secret_settings() -> None:
    """Have Celery mask jqm's secret settings wherever it prints the configuration.

    ``celery inspect conf`` (and Flower's worker configuration page, which asks the same of the workers)
    and ``celery report`` print ``app.conf`` through ``celery.app.utils.filter_hidden_settings``, which
    masks a key that matches the module's ``HIDDEN_SETTINGS`` pattern. Celery offers no other hook, so
    the pattern is widened, once per process, by the names it misses; it only ever masks more.
    """
    pattern = celery_app_utils.HIDDEN_SETTINGS
    missing = [key for key in SECRET_SETTINGS if not pattern.search(key)]
    if missing:
        widened = "|".join([pattern.pattern, *(re.escape(key) for key in missing)])
        celery_app_utils.HIDDEN_SETTINGS = re.compile(widened, pattern.flags)


def _broker_scheme(app: Celery) -> str:
    url = app.conf.broker_url or ""
    return str(url).split(":", 1)[0].lower() if isinstance(url, str) else ""


def result_backend_for(database_url: str) -> tuple[str, dict[str, Any]]:
    """jqm's database result backend (``jqm_celery.results``) beside the jqm store (a file of its own for
    SQLite)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "jqm.sqlite")
        results = path.with_name(f"{path.stem}-results{path.suffix or '.sqlite'}")
        return f"jqm+sqlite:///{results}", {"connect_args": {"timeout": 30}}
    return "jqm+" + url.render_as_string(hide_password=False), {}


def supports_chords(app: Celery) -> bool:
    backend = str(app.conf.get("result_backend") or "disabled")
    scheme = backend.split(":", 1)[0].lower()
    return scheme not in _NO_CHORDS
