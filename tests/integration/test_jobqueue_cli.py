"""The job queue's commands, run as a user runs them: a real process against the store a worker uses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jqm_celery import Entry, JobQueueManager, JobStatus, Package, RunStatus
from tests.integration.conftest import Backend
from tests.integration.test_cli import jqm_cli
from tests.integration.test_jobqueue import wait_for

pytestmark = pytest.mark.parametrize("backend", ["embedded"], indirect=True)


def test_jobs_are_listed_shown_cancelled_and_counted_per_queue(
    backend: Backend, jqm: JobQueueManager
) -> None:
    jqm.define_queue("cli-reports", pool_size=3)
    job = jqm.enqueue(
        "tests.noop", queue="cli-reports", delay=timedelta(hours=1), description="monthly report"
    )

    listed = jqm_cli(backend, "jobs", "list", "--queue", "cli-reports")
    assert "monthly report" in listed.stdout
    assert "DELAYED" in listed.stdout
    queues = jqm_cli(backend, "queues", "list").stdout
    (row,) = [line for line in queues.splitlines() if "cli-reports" in line]
    assert [cell.strip() for cell in row.split("│")[1:6]] == ["cli-reports", "3", "open", "0", "1"]
    cancelled = jqm_cli(backend, "jobs", "cancel", str(job.id))
    assert (cancelled.returncode, cancelled.stdout.strip()) == (0, f"job {job.id}: CANCELLED")
    again = jqm_cli(backend, "jobs", "cancel", str(job.id))
    assert again.returncode == 1
    assert f"error: job {job.id} is CANCELLED" in again.stderr
    shown = jqm_cli(backend, "jobs", "show", str(job.id)).stdout
    assert "retry / max retries" in shown
    assert jqm.job(job.id).status is JobStatus.CANCELLED


def test_a_queue_is_paused_resumed_and_shut_down_from_the_command_line(
    backend: Backend, jqm: JobQueueManager
) -> None:
    jqm.define_queue("cli-paused", pool_size=1)

    paused = jqm_cli(backend, "queues", "pause", "cli-paused")
    assert (paused.returncode, paused.stdout.split(";")[0]) == (0, "queue cli-paused: paused")
    (row,) = [line for line in jqm_cli(backend, "queues", "list").stdout.splitlines() if "cli-paused" in line]
    assert row.split("│")[3].strip() == "paused"
    assert jqm_cli(backend, "queues", "resume", "cli-paused").stdout.strip() == "queue cli-paused: resumed"
    assert not next(q for q in jqm.queues() if q.name == "cli-paused").paused
    refused = jqm_cli(backend, "queues", "shutdown", "cli-paused")
    assert refused.returncode == 2
    assert "--force" in refused.stderr
    forced = jqm_cli(backend, "queues", "shutdown", "cli-paused", "--force")
    assert forced.stdout.strip() == "queue cli-paused: paused, its running jobs aborted"
    unknown = jqm_cli(backend, "queues", "pause", "cli-pasued")
    assert "queue 'cli-pasued' is not defined; did you mean 'cli-paused'?" in unknown.stderr


def test_finished_runs_are_cleaned_from_the_command_line(
    backend: Backend, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop")]))
    run = jqm.run_now(name)
    assert run.wait(timeout=60).status is RunStatus.SUCCEEDED

    cleaned = jqm_cli(backend, "runs", "clean", "--older-than", "0s")
    assert cleaned.returncode == 0
    assert cleaned.stdout.strip().startswith("deleted ")
    assert "finished run(s)" in cleaned.stdout
    assert jqm.runs(name) == []
    bad = jqm_cli(backend, "runs", "clean", "--older-than", "ninety days")
    assert bad.returncode == 2
    assert "use a number and a unit (s, m, h, d, w), e.g. 30d" in bad.stderr


def test_clean_from_the_command_line_reports_what_it_deleted(backend: Backend, jqm: JobQueueManager) -> None:
    job = jqm.enqueue("tests.noop")
    wait_for(lambda: jqm.job(job.id).status is JobStatus.DONE)

    cleaned = jqm_cli(backend, "jobs", "clean", "--older-than", "0s")
    assert cleaned.returncode == 0, cleaned.stderr
    assert "deleted" in cleaned.stdout
    assert "log entries" in cleaned.stdout
    audit = jqm_cli(backend, "audit").stdout
    assert "clean" in audit


def test_a_run_is_cancelled_from_the_command_line(backend: Backend, jqm: JobQueueManager, name: str) -> None:
    jqm.save(Package(name, entries=[Entry("tests.sleep", args=[30.0], run_order=10), Entry("tests.noop")]))
    run = jqm.run_now(name)
    wait_for(lambda: jqm.run(run.id).jobs[0].status is JobStatus.RUNNING)

    cancelled = jqm_cli(backend, "runs", "cancel", str(run.id))
    assert cancelled.returncode == 0, cancelled.stderr
    assert jqm.run(run.id).status is RunStatus.STOPPED


def test_jqm_worker_prints_one_plain_celery_worker_per_queue_and_sends_notifications_from_the_default(
    backend: Backend, jqm: JobQueueManager
) -> None:
    jqm.define_queue("cli-pool", pool_size=4)
    out = jqm_cli(backend, "worker", "--dry-run").stdout
    app = "tests.integration.cliapp:app"
    assert f"celery -A {app} worker -Q cli-pool -c 4 -n cli-pool@%h --prefetch-multiplier=1" in out
    assert f"-Q {backend.queue},jqm.notifications -c 2" in out
