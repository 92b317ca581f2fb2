"""The run lifecycle, the same on every backend: how a run starts, moves on and ends, with a real worker.

Each test runs on the embedded default, Redis + PostgreSQL and RabbitMQ + PostgreSQL (the ``backend``
fixture). A check that something never happens waits for a positive signal that would have come after it
(the run's end, a mail), never for a fixed time.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from jqm_celery import (
    AttemptStatus,
    Entry,
    JobQueueManager,
    JobStatus,
    JQMError,
    LogKind,
    Notify,
    OnError,
    Package,
    PackageStatus,
    Recurrence,
    RetryPolicy,
    Run,
    RunStatus,
    Scenario,
)
from jqm_celery.compiler import CHUNK_STAGES
from jqm_celery.recovery import MAX_INTERRUPTIONS
from jqm_celery.store.schedule import fire_due
from tests.integration.conftest import Backend, Worker
from tests.integration.mailserver import MailServer
from tests.integration.test_jobqueue import labels, wait_for
from tests.integration.test_packages import ON_ERROR_OUTCOMES
from tests.integration.testapp import make_app, read_marks

ONE_RETRY = RetryPolicy(max_retries=1, base_delay=timedelta(milliseconds=100), max_delay=timedelta(seconds=1))
#: How often a run is queued while the run before it closes.
RACES = 50
#: How long the one-process worker is kept busy while the next job's message waits for it (seconds): less
#: than the hand-over's FRESH_S, so the message still counts as fresh when it runs.
BUSY_S = 0.6
#: Unreachable brokers, one per kind of transport: nothing listens on port 1.
OFFLINE_BROKERS = {
    "redis-pg": "redis://127.0.0.1:1/0",
    "rabbitmq-pg": "amqp://guest:guest@127.0.0.1:1//",
}


@pytest.fixture(scope="module")
def solo_backend(backend: Backend, mail: MailServer) -> Backend:
    """The session backend's broker and store, with a notification queue of its own and SMTP."""
    conf = {
        **backend.conf,
        "jqm_notification_queue": f"{backend.queue}-lifecycle-notify",
        "jqm_smtp_url": mail.url,
        "jqm_mail_from": "jqm@example.com",
    }
    return Backend(backend.name, conf, backend.tmp)


@pytest.fixture(scope="module")
def solo(solo_backend: Backend) -> Iterator[str]:
    """A worker with one process on a queue of its own (and the notification queue); yields the queue."""
    queue = f"{solo_backend.queue}-solo"
    notify = solo_backend.conf["jqm_notification_queue"]
    # Activation refuses an entry's queue that nobody defined.
    JobQueueManager.of(solo_backend.app()).define_queue(queue, pool_size=1)
    running = Worker(solo_backend, ["--pool=prefork", "--concurrency=1", "-Q", f"{queue},{notify}"]).start()
    yield queue
    running.stop()


@pytest.fixture
def solo_jqm(solo_backend: Backend, solo: str, worker: Worker) -> JobQueueManager:
    """A manager on the solo backend's app; the session worker runs the jobs of the default queue."""
    return JobQueueManager.of(solo_backend.app())


def _record(marks: Path, label: str, run_order: int, sleep_s: float = 0.0, queue: str | None = None) -> Entry:
    return Entry("tests.record", args=[str(marks), label, sleep_s], run_order=run_order, queue=queue)


def _span(marks: Path, label: str) -> tuple[float, float]:
    times = {m["event"]: float(m["t"]) for m in read_marks(marks) if m["label"] == label}
    return times["start"], times["end"]


def _run_active(jqm: JobQueueManager, package: Package) -> Run:
    """Save and activate the package, run it now and wait for the run's end."""
    jqm.save(package)
    jqm.activate(package.name)
    return jqm.run_now(package.name).wait(timeout=60)


def _kinds(jqm: JobQueueManager, run_id: int) -> list[LogKind]:
    return [e.kind for e in jqm.log_entries(run_id=run_id)]


# -- hold and cancel ---------------------------------------------------------------------------


def test_a_hold_landing_while_the_next_jobs_message_is_on_its_way_starts_no_other_job(
    jqm: JobQueueManager, backend: Backend, solo: str, name: str, marks: Path
) -> None:
    # Every job runs on the one-process worker. While the first one runs, a plain task is queued there:
    # when the first job ends, the next job's message waits behind it for BUSY_S, and the hold lands then.
    entries = [_record(marks, "first", 1, sleep_s=0.5, queue=solo)]
    entries += [_record(marks, f"later{order}", order, queue=solo) for order in (2, 3, 4)]
    jqm.save(Package(name, entries=entries))
    jqm.activate(name)
    run = jqm.run_now(name)
    wait_for(lambda: labels(marks, "start") == ["first"])
    backend.app().send_task("tests.sleep", args=[BUSY_S], queue=solo)
    wait_for(lambda: jqm.job(run.jobs[0].id).status is JobStatus.DONE)

    jqm.hold(name)
    # Queued behind the next job's message on the one-process worker: once it has started, that message
    # has been dealt with.
    backend.app().send_task("tests.record", args=[str(marks), "after the hold"], queue=solo)
    wait_for(lambda: "after the hold" in labels(marks, "start"))
    run = run.wait(timeout=60)

    assert labels(marks, "start") == ["first", "after the hold"], "no job started after the hold"
    assert run.status is RunStatus.STOPPED
    assert [j.status for j in run.jobs] == [JobStatus.DONE] + [JobStatus.SKIPPED] * 3
    assert [len(j.attempts) for j in run.jobs] == [1, 0, 0, 0]
    assert jqm.package(name).status is PackageStatus.ON_HOLD


def test_cancelling_a_run_starts_the_run_queued_behind_it(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    jqm.save(Package(name, entries=[_record(marks, "slow", 10, sleep_s=1.0), _record(marks, "next", 20)]))
    first = jqm.run_now(name)
    queued = jqm.run_now(name, queue=True)
    assert queued.status is RunStatus.QUEUED
    wait_for(lambda: labels(marks, "start") == ["slow"])

    cancelled = jqm.cancel_run(first.id)
    queued = queued.wait(timeout=30)

    assert cancelled.status is RunStatus.STOPPED
    assert queued.status is RunStatus.SUCCEEDED
    assert queued.started_at is not None
    assert cancelled.finished_at is not None
    assert queued.started_at >= cancelled.finished_at
    assert jqm.runs(name, status=RunStatus.QUEUED) == []


def test_a_run_queued_while_the_run_before_it_closes_always_starts(jqm: JobQueueManager, name: str) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop")]))
    runs = [jqm.run_now(name)]
    for _ in range(RACES):
        previous = runs[-1]
        # Queue the next run the moment the last job of the run before has ended: while that run closes.
        deadline = time.monotonic() + 30
        while jqm.job(previous.jobs[0].id).status is not JobStatus.DONE:
            status = jqm.run(previous.id).status
            assert time.monotonic() < deadline, f"run {previous.id} is still {status} after 30 s"
        runs.append(jqm.run_now(name, queue=True))

    finished = [run.wait(timeout=30) for run in runs]

    assert [run.status for run in finished] == [RunStatus.SUCCEEDED] * (RACES + 1)
    assert jqm.runs(name, status=RunStatus.QUEUED) == []


# -- On Error ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "after_status", "package_status"), ON_ERROR_OUTCOMES)
def test_a_job_failing_for_good_after_its_retries_ends_the_run_by_the_on_error_policy(
    jqm: JobQueueManager,
    name: str,
    marks: Path,
    policy: OnError,
    after_status: JobStatus,
    package_status: PackageStatus,
) -> None:
    entries = [
        _record(marks, "before", 10),
        Entry("tests.flaky", args=[str(marks), "flaky", 99], run_order=20, retry=ONE_RETRY),
        _record(marks, "after", 30),
    ]
    run = _run_active(jqm, Package(name, entries=entries, on_error=policy))

    assert run.status is RunStatus.FAILED
    assert [j.status for j in run.jobs] == [JobStatus.DONE, JobStatus.ERROR, after_status]
    assert [a.status for a in run.jobs[1].attempts] == [AttemptStatus.FAILED, AttemptStatus.ERROR]
    assert ("after" in labels(marks, "start")) is (after_status is JobStatus.DONE)
    assert jqm.package(name).status is package_status
    kinds = _kinds(jqm, run.id)
    assert kinds.count(LogKind.RUN_STARTED) == 1
    assert kinds.count(LogKind.RUN_FINISHED) == 1
    assert kinds.count(LogKind.ATTEMPT) == sum(len(j.attempts) for j in run.jobs)
    assert kinds.count(LogKind.PACKAGE_STOPPED) == (package_status is PackageStatus.ERROR)


@pytest.mark.parametrize(("policy", "last_status", "package_status"), ON_ERROR_OUTCOMES)
def test_a_job_failing_for_good_in_a_parallel_group_lets_its_sibling_finish_and_the_run_end_once(
    jqm: JobQueueManager,
    name: str,
    marks: Path,
    policy: OnError,
    last_status: JobStatus,
    package_status: PackageStatus,
) -> None:
    # The failing job fails for good on its second attempt, after its sibling has (almost always) started.
    entries = [
        _record(marks, "first", 10),
        Entry("tests.flaky", args=[str(marks), "failing", 99], run_order=20, retry=ONE_RETRY),
        _record(marks, "sibling", 20, sleep_s=0.5),
        _record(marks, "last", 30),
    ]
    run = _run_active(jqm, Package(name, entries=entries, on_error=policy))

    assert run.status is RunStatus.FAILED
    # A sibling that had not started when the run was stopped is skipped with the rest (On Error: STOP).
    sibling_started = "sibling" in labels(marks, "start")
    assert sibling_started or policy is OnError.STOP
    sibling_status = JobStatus.DONE if sibling_started else JobStatus.SKIPPED
    assert [j.status for j in run.jobs] == [JobStatus.DONE, JobStatus.ERROR, sibling_status, last_status]
    if last_status is JobStatus.DONE:
        assert _span(marks, "sibling")[1] <= _span(marks, "last")[0], "the group settled before run order 30"
    else:
        assert "last" not in labels(marks, "start")
    assert jqm.package(name).status is package_status
    assert _kinds(jqm, run.id).count(LogKind.RUN_FINISHED) == 1


def test_a_long_run_whose_part_ends_on_a_group_runs_every_stage_in_order(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    # Stage CHUNK_STAGES is the last of the first part and stage CHUNK_STAGES + 1 the first of the next:
    # both are groups of two.
    groups = {CHUNK_STAGES, CHUNK_STAGES + 1}
    stages = list(range(1, CHUNK_STAGES + 3))
    entries = [
        _record(marks, f"s{stage}{side}", stage)
        for stage in stages
        for side in (("a", "b") if stage in groups else ("",))
    ]
    jqm.save(Package(name, entries=entries))

    run = jqm.run_now(name).wait(timeout=90)

    assert run.status is RunStatus.SUCCEEDED
    assert all(j.status is JobStatus.DONE for j in run.jobs)
    spans = {str(e.args[1]): _span(marks, str(e.args[1])) for e in entries}
    for stage in stages[1:]:
        ended = max(end for label, (_, end) in spans.items() if _stage(label) == stage - 1)
        started = min(start for label, (start, _) in spans.items() if _stage(label) == stage)
        assert ended <= started, f"stage {stage} started before stage {stage - 1} ended"


def _stage(label: str) -> int:
    return int(label[1:].rstrip("ab"))


# -- sending and recovery ----------------------------------------------------------------------


def test_a_run_the_broker_cannot_take_ends_failed_and_the_next_run_starts(
    jqm: JobQueueManager, backend: Backend, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop", run_order=10), Entry("tests.noop", run_order=20)]))
    offline = JobQueueManager.of(make_app({**backend.conf, **_offline_broker(backend)}))

    with pytest.raises(JQMError, match="could not send run"):
        offline.run_now(name)

    [failed] = jqm.runs(name)
    failed = jqm.run(failed.id)
    assert failed.status is RunStatus.FAILED
    assert [j.status for j in failed.jobs] == [JobStatus.SKIPPED, JobStatus.SKIPPED]
    assert _kinds(jqm, failed.id) == [LogKind.RUN_STARTED, LogKind.RUN_FINISHED]
    assert jqm.run_now(name).wait(timeout=30).status is RunStatus.SUCCEEDED


def _offline_broker(backend: Backend) -> dict[str, object]:
    """Broker settings that reach no broker, failing fast."""
    settings: dict[str, object] = {"broker_connection_timeout": 1, "broker_connection_max_retries": 1}
    if backend.name == "embedded":
        # A broker file whose folder cannot exist: its parent is a file.
        not_a_folder = backend.tmp / f"not-a-folder-{uuid.uuid4().hex[:6]}"
        not_a_folder.touch()
        return {**settings, "broker_url": f"sqlite:///{not_a_folder / 'broker.sqlite'}"}
    return {**settings, "broker_url": OFFLINE_BROKERS[backend.name]}


def test_a_job_whose_worker_is_lost_again_and_again_is_failed_by_the_reconciler_and_the_run_ends(
    backend: Backend, name: str, marks: Path
) -> None:
    # Workers that beat every half second (one is gone after 1.5 s); each kill is a crash of the worker
    # running the job. Another worker, on the default queue only, reconciles after the last one and runs
    # the rest of the run.
    fast = replace(backend, conf={**backend.conf, "jqm_reconcile_interval_s": 0.5}, _app=None)
    queue = f"lost-{uuid.uuid4().hex[:8]}"
    runners = [
        Worker(fast, ["--pool=prefork", "--concurrency=1", "-Q", queue]) for _ in range(MAX_INTERRUPTIONS)
    ]
    reconciler = Worker(fast, ["--pool=prefork", "--concurrency=1", "-Q", backend.queue])
    with ThreadPoolExecutor(len(runners) + 1) as pool:
        list(pool.map(Worker.start, [*runners, reconciler]))
    try:
        jqm = JobQueueManager.of(fast.app())
        jqm.save(
            Package(
                name,
                entries=[
                    _record(marks, "victim", 10, sleep_s=60.0, queue=queue),
                    _record(marks, "after", 20),
                ],
                on_error=OnError.CONTINUE,
            )
        )
        run = jqm.run_now(name)

        def victim_started(times: int) -> bool:
            return labels(marks, "start").count("victim") == times

        for loss in range(1, MAX_INTERRUPTIONS + 1):
            wait_for(functools.partial(victim_started, loss), timeout=60)
            [pid] = [int(m["pid"]) for m in read_marks(marks) if m["event"] == "start"][loss - 1 : loss]
            [running] = [w for w in runners if w.process is not None and w.process.pid == os.getpgid(pid)]
            running.kill()
        run = run.wait(timeout=60)
    finally:
        for started in [*runners, reconciler]:
            started.stop()

    assert run.status is RunStatus.FAILED
    victim, after = run.jobs
    assert victim.status is JobStatus.ERROR
    assert [a.status for a in victim.attempts] == [AttemptStatus.INTERRUPTED] * (MAX_INTERRUPTIONS - 1) + [
        AttemptStatus.ERROR
    ]
    assert after.status is JobStatus.DONE
    assert labels(marks, "start") == ["victim"] * MAX_INTERRUPTIONS + ["after"]
    assert _kinds(jqm, run.id).count(LogKind.JOB_STALE) >= 1
    assert _kinds(jqm, run.id).count(LogKind.RUN_FINISHED) == 1


def test_a_job_whose_message_a_crashed_worker_held_unstarted_runs_on_the_next_worker(
    backend: Backend, name: str, marks: Path
) -> None:
    # The message comes back at once on RabbitMQ; elsewhere only after the visibility timeout, so the
    # reconciler sends the job again once it has been due for jqm_lost_after_s with nothing moving.
    conf = {**backend.conf, "jqm_reconcile_interval_s": 0.5, "jqm_lost_after_s": 2}
    fast = replace(backend, conf=conf, _app=None)
    queue = f"held-{uuid.uuid4().hex[:8]}"
    first = Worker(fast, ["--pool=prefork", "--concurrency=1", "-Q", queue]).start()
    second = Worker(fast, ["--pool=prefork", "--concurrency=1", "-Q", f"{queue},{backend.queue}"])
    try:
        # The worker's one process is busy, so the job's message waits in the worker, received, not started.
        fast.app().send_task("tests.record", args=[str(marks), "busy", 60.0], queue=queue)
        wait_for(lambda: labels(marks, "start") == ["busy"])
        jqm = JobQueueManager.of(fast.app())
        jqm.save(Package(name, entries=[_record(marks, "held", 10, queue=queue)]))
        run = jqm.run_now(name)
        wait_for(lambda: f"{name} › tests.record" in first.log())
        first.kill()
        second.start()
        run = run.wait(timeout=15)
    finally:
        first.stop()
        second.stop()

    assert run.status is RunStatus.SUCCEEDED
    assert labels(marks, "start") == ["busy", "held"]


def test_a_run_started_by_the_recovery_of_an_unsent_fire_mails_its_run_started_rule(
    solo_jqm: JobQueueManager, mail: MailServer, name: str
) -> None:
    address = f"started@t{uuid.uuid4().hex[:8]}.example.com"
    due = solo_jqm.clock.now() + timedelta(seconds=1)
    solo_jqm.save(
        Package(
            name,
            entries=[Entry("tests.noop")],
            recurrences=[Recurrence.once(due)],
            notifications=[Notify(address, on={Scenario.RUN_STARTED})],
        )
    )
    solo_jqm.activate(name)
    time.sleep(max((due - solo_jqm.clock.now()).total_seconds(), 0) + 0.05)
    # A beat that committed its fire and died before sending the run; the next tick recovers it.
    grace = timedelta(seconds=30)
    fired = fire_due(solo_jqm._store, solo_jqm.clock.now(), grace=grace, holder="lifecycle")
    [unsent] = [plan for plan in fired.plans if plan.package == name]
    recovered = solo_jqm.fire_recurrences(
        grace=grace, limit=10, holder="lifecycle", recover_after=timedelta(0)
    )

    [replacement] = [plan for plan in recovered.plans if plan.package == name]
    assert replacement.run_id != unsent.run_id
    assert solo_jqm.run(replacement.run_id).wait(timeout=60).status is RunStatus.SUCCEEDED
    # The fire itself told the notifier it started run ``unsent``; its replacement must tell it too.
    subjects = sorted(str(m["Subject"]) for m in mail.inbox.wait_for(address, count=2))
    assert subjects == [
        f"[jqm] {name} #{run_id}: run started" for run_id in (unsent.run_id, replacement.run_id)
    ]
