"""Alembic environment: the engine comes from ``jqm_celery.store.migrate``, never from a config file."""

from __future__ import annotations

from alembic import context

import jqm_celery.store.queue_models  # noqa: F401  (registers the job queue tables on Base)
from jqm_celery.store import (
    beat_models,  # noqa: F401  (registers the beat tables on Base)
    web_models,  # noqa: F401  (registers the web UI tables on Base)
)
from jqm_celery.store.migrate import VERSION_TABLE
from jqm_celery.store.models import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
