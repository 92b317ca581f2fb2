"""With ``jqm_run_retention_days`` set, a worker deletes old finished runs on its own, once a day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from jqm_celery import Entry, JobQueueManager, Package, RunStatus
from jqm_celery.queue_records import AuditAction
from jqm_celery.store.models import RunRow
from tests.integration.conftest import Backend, Worker
from tests.integration.test_jobqueue import wait_for


@pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)
def test_a_worker_with_the_retention_setting_deletes_old_finished_runs_and_keeps_recent_ones(
    backend: Backend, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop")]))
    old = jqm.run_now(name).wait(timeout=30)
    recent = jqm.run_now(name).wait(timeout=30)
    assert (old.status, recent.status) == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED)
    with jqm._store.transaction() as s:
        assert old.finished_at is not None
        s.execute(
            update(RunRow).where(RunRow.id == old.id).values(finished_at=old.finished_at - timedelta(days=31))
        )
    conf = {**backend.conf, "jqm_run_retention_days": 30}
    worker = Worker(Backend(backend.name, conf, backend.tmp), ["--pool=solo", "-Q", "retention-idle"])
    try:
        worker.start()
        wait_for(lambda: [r.id for r in jqm.runs(name)] == [recent.id])
    finally:
        worker.stop()
    cleaned = [e for e in jqm.audit(limit=20) if e.action is AuditAction.CLEAN_RUNS]
    assert cleaned[-1].actor == "scheduler"
    assert "1 run(s)" in cleaned[-1].detail
