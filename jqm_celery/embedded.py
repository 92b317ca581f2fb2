"""The embedded default: a Celery app that needs no server at all.

The store, the broker (``jqm_celery.broker``, a kombu transport) and the result backend are three SQLite
files in one folder, so a worker in another process on the same machine shares them. A publish wakes the
waiting workers at once (``jqm_celery.broker_wakeup``); ``polling_interval_s`` is how often a worker
that no wake-up can reach looks for messages instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery

from jqm_celery.broker import TRANSPORT


def embedded_conf(data_dir: str | Path, *, polling_interval_s: float = 0.05) -> dict[str, Any]:
    """Celery settings for SQLite files in ``data_dir`` (created if missing)."""
    folder = Path(data_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "broker_url": f"sqlite:///{folder / 'broker.sqlite'}",
        "broker_transport": TRANSPORT,
        "broker_transport_options": {"polling_interval": polling_interval_s},
        "result_backend": f"jqm+sqlite:///{folder / 'results.sqlite'}",
        "database_engine_options": {"connect_args": {"timeout": 30}},
        "jqm_database_url": f"sqlite:///{folder / 'jqm.sqlite'}",
    }


def embedded_app(name: str, data_dir: str | Path, *, polling_interval_s: float = 0.05) -> Celery:
    """A Celery app on SQLite files in ``data_dir``, ready for JobQueueManager."""
    app = Celery(name)
    app.conf.update(embedded_conf(data_dir, polling_interval_s=polling_interval_s))
    return app
