"""The store: packages, runs, jobs and log entries in one SQL database.

``Store`` is the sum of its parts, one module per responsibility: ``base`` (engine, transactions, schema,
listeners), ``packages``, ``runs`` (a run's status changes only in ``lifecycle``), ``attempts`` (the hot
path of a job), and ``log`` (the one writer of log entries). Every public method is one transaction; the
store knows nothing of Celery.
"""

from __future__ import annotations

from jqm_celery.store.attempts import AttemptStore
from jqm_celery.store.packages import PackageStore
from jqm_celery.store.runs import RunStore


class Store(PackageStore, RunStore, AttemptStore):
    """The store of one app (see the module's docstring for its parts)."""
