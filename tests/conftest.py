"""Shared fixtures: integration tests are marked by folder, long folders run first; some RabbitMQ runs are
left to a switch."""

from __future__ import annotations

import os

import pytest

#: Modules whose tests run on the RabbitMQ backend by default: the run lifecycle's conformance and what
#: depends on the broker's own behaviour (redelivery, lost workers, failures). The other modules' tests
#: are the same code on another broker; ``JQM_TEST_ALL_BACKENDS=1`` runs them on RabbitMQ too.
RABBITMQ_BY_DEFAULT = (
    "test_lifecycle.py",
    "test_worker_loss.py",
    "test_celery_failures.py",
    "test_recovery.py",
    "test_job_results.py",
    "test_chord_results.py",
)


#: The folders whose modules take longest, first: the two xdist workers (``-n 2 --dist loadfile
#: --no-loadscope-reorder``) take modules in this order, so the long ones are not left for the end while
#: the other worker idles; the many short unit modules fill in last.
FIRST = ("walkthrough", "multihost", "fault", "integration", "web", "store", "unit")


def _folder_rank(item: pytest.Item) -> int:
    folder = item.path.parent.name
    return FIRST.index(folder) if folder in FIRST else len(FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    items.sort(key=_folder_rank)  # stable: each module's own order is kept
    if os.environ.get("JQM_TEST_ALL_BACKENDS") == "1":
        return
    left = [
        item
        for item in items
        if "rabbitmq-pg" in item.nodeid.split("[", 1)[-1] and item.path.name not in RABBITMQ_BY_DEFAULT
    ]
    if left:
        config.hook.pytest_deselected(items=left)
        ids = {id(item) for item in left}
        items[:] = [item for item in items if id(item) not in ids]
