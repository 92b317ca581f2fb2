"""Persistence: SQLAlchemy models, Alembic migrations and the Store that runs every transaction."""

import jqm_celery.store.queue_models  # noqa: F401  (registers the job queue tables on Base)
from jqm_celery.store import (
    beat_models,  # noqa: F401  (registers the beat tables on Base)
    web_models,  # noqa: F401  (registers the web UI tables on Base)
)
from jqm_celery.store.store import Store

__all__ = ["Store"]
