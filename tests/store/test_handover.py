"""PostgreSQL: a job hands its run over to the next job (jqm_celery/handover.py).

The store's statements, and the runtime's side of a hand-over, driven with Celery request contexts as a
worker builds them; the whole path on real workers runs in tests/integration.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from celery import Celery
from celery.app.task import Context
from celery.worker import state as worker_state

from jqm_celery import Entry, JobQueueManager, JobStatus, OnError, Package
from jqm_celery.compiler import JOB_TASK, compile_run, flower_name
from jqm_celery.handover import FRESH_S, HANDED_OVER, REPORT_AFTER_S, UNNAMED_AFTER_S, report_starts
from jqm_celery.plans import ClaimedJob, RunPlan
from jqm_celery.recovery import STALE_AFTER_INTERVALS
from jqm_celery.statuses import AttemptStatus, LogKind
from jqm_celery.store import Store
from jqm_celery.store.models import RunRow
from tests.services import REDIS_RESULTS_DB, postgres_database, redis_url
from tests.store.conftest import FakeClock
from tests.store.test_driver import _RECORD_COMMIT_SETTING, _dsn
from tests.store.test_store import _writes

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
TASKS = ("h.first", "h.second", "h.third")


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_database() as database:
        yield database


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def jqm(url: str, clock: FakeClock) -> Iterator[JobQueueManager]:
    app = Celery("handover-tests", set_as_current=False)
    app.conf.jqm_database_url = url
    app.conf.jqm_auto_migrate = True
    app.conf.result_backend = redis_url(REDIS_RESULTS_DB)
    ran: list[str] = []
    for name in TASKS:
        app.task(name=name, shared=False)(_recorder(name, ran))
    manager = JobQueueManager(app, clock=clock)
    manager.ran = ran  # type: ignore[attr-defined]
    yield manager
    manager.store.dispose()


def _recorder(name: str, ran: list[str]) -> Any:
    def task(*args: Any, **kwargs: Any) -> None:
        ran.append(name)

    return task


@pytest.fixture
def store(jqm: JobQueueManager) -> Store:
    return jqm.store


def _package() -> Package:
    return Package(
        "p",
        entries=[
            Entry("h.first", run_order=10),
            Entry("h.second", args=[1, "two"], kwargs={"k": [3]}, run_order=20),
            Entry("h.third", run_order=30),
        ],
        on_error=OnError.STOP,
    )


def _start_plain(store: Store) -> RunPlan:
    """A run of the package, started in the store alone."""
    store.save_package(_package(), NOW)
    plan, started = store.create_run("p", "test", NOW, queue_if_busy=False)
    assert started
    return plan


def _start(jqm: JobQueueManager) -> RunPlan:
    """A run of the package, activated through the manager (so that it can be held)."""
    jqm.save(_package())
    jqm.activate("p")
    plan, started = jqm.store.create_run("p", "test", NOW, queue_if_busy=False)
    assert started
    return plan


def _stop(store: Store, run_id: int) -> None:
    with store.transaction() as s:
        run = s.get(RunRow, run_id)
        assert run is not None
        store.stop_run(s, run, NOW, "package held", LogKind.RUN_STOPPED_BY_HOLD)


def _claim(store: Store, plan: RunPlan, index: int, worker: str = "w1@host") -> ClaimedJob:
    claimed = store.claim_job(plan.jobs[index].id, worker, f"task-{index}", NOW, redelivered=False)
    assert claimed is not None
    return claimed


def _attempts(store: Store, run_id: int) -> list[tuple[str | None, str, str | None, datetime]]:
    """(task, status, worker, started) of every attempt of the run, oldest first."""
    entries = store.log_entries(run_id=run_id, limit=100)
    return [
        (e.entry_task, e.status, e.worker, e.started_at)
        for e in sorted(entries, key=lambda e: e.id)
        if e.kind == LogKind.ATTEMPT
    ]


def _job(store: Store, run_id: int, index: int) -> Any:
    return store.run(run_id).jobs[index]


# -- the store --------------------------------------------------------------------------------------


def test_a_hand_over_ends_the_job_and_claims_the_next_in_one_durable_statement(
    url: str, store: Store
) -> None:
    plan = _start_plain(store)
    first = _claim(store, plan, 0)
    later = NOW + timedelta(seconds=2)
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        conn.execute(_RECORD_COMMIT_SETTING)
        with _writes(store) as writes:
            second = store.hand_over(first, later, plan.jobs[1].id, "next-message")
        commits = conn.execute("SELECT operation, synchronous_commit FROM commit_setting").fetchall()

    assert writes == {"commits": 1, "statements": 1}
    assert sorted(commits) == [("INSERT", "on"), ("UPDATE", "on")], (
        "it ends an attempt: it waits for the disk"
    )
    assert second is not None
    assert (second.job_id, second.task, second.args, second.kwargs) == (
        plan.jobs[1].id,
        "h.second",
        [1, "two"],
        {"k": [3]},
    )
    assert second.retry == 0
    assert second.worker is None
    jobs = store.run(plan.run_id).jobs
    assert [(j.status, j.worker, j.celery_task_id) for j in jobs[:2]] == [
        (JobStatus.DONE, "w1@host", "task-0"),
        (JobStatus.RUNNING, None, "next-message"),
    ]
    assert jobs[0].finished_at == later
    assert _attempts(store, plan.run_id) == [
        ("h.first", AttemptStatus.DONE, "w1@host", NOW),
        ("h.second", AttemptStatus.RUNNING, None, later),
    ]


def test_a_hand_over_in_a_stopped_run_ends_the_job_and_leaves_the_next_waiting(store: Store) -> None:
    plan = _start_plain(store)
    first = _claim(store, plan, 0)
    _stop(store, plan.run_id)

    assert store.hand_over(first, NOW, plan.jobs[1].id, "next-message") is None
    assert [j.status for j in store.run(plan.run_id).jobs] == [
        JobStatus.DONE,
        JobStatus.SKIPPED,
        JobStatus.SKIPPED,
    ]


def test_a_hand_over_claims_nothing_when_the_job_it_ends_was_not_running(store: Store) -> None:
    plan = _start_plain(store)
    first = _claim(store, plan, 0)
    store.fail_job(first.job_id, NOW, "recovered elsewhere")

    assert store.hand_over(first, NOW, plan.jobs[1].id, "next-message") is None
    assert [j.status for j in store.run(plan.run_id).jobs] == [
        JobStatus.ERROR,
        JobStatus.QUEUED,
        JobStatus.QUEUED,
    ]


def test_a_hand_over_never_claims_a_job_past_an_unfinished_one(store: Store) -> None:
    plan = _start_plain(store)
    first = _claim(store, plan, 0)

    assert store.hand_over(first, NOW, plan.jobs[2].id, "stale-message") is None, "the second is waiting"
    assert _job(store, plan.run_id, 2).status == JobStatus.QUEUED


def test_the_end_of_a_handed_over_attempt_records_its_worker_and_real_start(store: Store) -> None:
    plan = _start_plain(store)
    second = store.hand_over(_claim(store, plan, 0), NOW, plan.jobs[1].id, "m-1")
    assert second is not None
    started = NOW + timedelta(milliseconds=3)
    running = ClaimedJob(**{**second.__dict__, "worker": "w2@host", "started_at": started})

    third = store.hand_over(running, NOW + timedelta(seconds=1), plan.jobs[2].id, "m-2")
    assert third is not None
    store.end_attempt(
        ClaimedJob(**{**third.__dict__, "worker": "w3@host", "started_at": NOW + timedelta(seconds=2)}),
        NOW + timedelta(seconds=3),
        AttemptStatus.FAILED,
        error="boom",
        planned_delay_s=5.0,
    )

    assert _attempts(store, plan.run_id) == [
        ("h.first", AttemptStatus.DONE, "w1@host", NOW),
        ("h.second", AttemptStatus.DONE, "w2@host", started),
        ("h.third", AttemptStatus.FAILED, "w3@host", NOW + timedelta(seconds=2)),
    ]
    jobs = store.run(plan.run_id).jobs
    assert [(j.status, j.worker) for j in jobs] == [
        (JobStatus.DONE, "w1@host"),
        (JobStatus.DONE, "w2@host"),
        (JobStatus.RETRYING, "w3@host"),
    ]


def test_a_late_handed_over_job_starts_when_its_run_goes_on(store: Store) -> None:
    plan = _start_plain(store)
    second = store.hand_over(_claim(store, plan, 0), NOW, plan.jobs[1].id, "m-1")
    assert second is not None
    late = NOW + timedelta(seconds=30)

    assert store.start_handed_over(second, "w2@host", "m-1", late) is JobStatus.RUNNING
    assert _attempts(store, plan.run_id)[-1] == ("h.second", AttemptStatus.RUNNING, "w2@host", late)
    assert _job(store, plan.run_id, 1).worker == "w2@host"
    assert store.start_handed_over(second, "w3@host", "m-1", late) is None, "started once only"


def test_a_late_handed_over_job_of_a_stopped_run_is_skipped_and_leaves_no_attempt(store: Store) -> None:
    plan = _start_plain(store)
    second = store.hand_over(_claim(store, plan, 0), NOW, plan.jobs[1].id, "m-1")
    assert second is not None
    _stop(store, plan.run_id)
    assert _job(store, plan.run_id, 1).status == JobStatus.RUNNING, "handed over: it counts as running"

    assert store.start_handed_over(second, "w2@host", "m-1", NOW) is JobStatus.SKIPPED
    job = _job(store, plan.run_id, 1)
    assert (job.status, job.attempts) == (JobStatus.SKIPPED, ())
    assert [a[0] for a in _attempts(store, plan.run_id)] == ["h.first"]
    skipped = [e for e in store.log_entries(run_id=plan.run_id, limit=100) if e.kind == LogKind.JOB_SKIPPED]
    assert [e.entry_task for e in skipped] == ["h.second", "h.third"]


def test_a_late_message_of_a_job_that_is_no_longer_its_own_does_not_start_it(store: Store) -> None:
    plan = _start_plain(store)
    second = store.hand_over(_claim(store, plan, 0), NOW, plan.jobs[1].id, "m-1")
    assert second is not None

    assert store.start_handed_over(second, "w2@host", "another-message", NOW) is None
    assert _job(store, plan.run_id, 1).worker is None


def test_a_worker_names_itself_on_a_running_handed_over_job_once(store: Store) -> None:
    plan = _start_plain(store)
    second = store.hand_over(_claim(store, plan, 0), NOW, plan.jobs[1].id, "m-1")
    assert second is not None
    started = NOW + timedelta(milliseconds=5)

    assert store.record_start(second.job_id, second.log_id, "m-1", "w2@host", started)
    assert not store.record_start(second.job_id, second.log_id, "m-1", "w3@host", started), "named already"
    assert _attempts(store, plan.run_id)[-1] == ("h.second", AttemptStatus.RUNNING, "w2@host", started)
    assert _job(store, plan.run_id, 1).worker == "w2@host"


# -- the runtime ------------------------------------------------------------------------------------


class _Task:
    """What the runtime reads of a bound Celery task: its request."""

    def __init__(self, request: Context) -> None:
        self.request = request


def _request(message: dict[str, Any], hostname: str, **extra: Any) -> Context:
    """The request context a worker builds for a message sent from ``message`` (a signature's dict)."""
    options = message.get("options", {})
    return Context(
        id=options.get("task_id", "first-message"),
        args=message["args"],
        kwargs=message["kwargs"],
        chain=options.get("chain"),
        hostname=hostname,
        delivery_info={"redelivered": False},
        retries=0,
        **extra,
    )


def _first_message(jqm: JobQueueManager, plan: RunPlan) -> dict[str, Any]:
    return dict(compile_run(jqm.app, plan))


def _run_first_job(jqm: JobQueueManager, plan: RunPlan) -> dict[str, Any]:
    """Run the run's first job on "w1@host"; returns the next step's message, as the job handed it over."""
    message = _first_message(jqm, plan)
    request = _request(message, "w1@host")
    assert jqm.runtime.execute_job(_Task(request), message["args"][0]) == "DONE"
    step: dict[str, Any] = request.chain.pop()
    return step


def test_each_job_hands_the_run_over_to_the_next_and_runs_without_a_claim(
    jqm: JobQueueManager, clock: FakeClock
) -> None:
    plan = _start(jqm)
    message = _first_message(jqm, plan)
    hosts = ["w1@host", "w2@host", "w3@host"]
    writes_per_job: list[int] = []
    for index, host in enumerate(hosts):
        request = _request(message, host)
        with _writes(jqm.store) as writes:
            assert jqm.runtime.execute_job(_Task(request), message["args"][0]) == "DONE"
        writes_per_job.append(writes["statements"])
        clock.advance(timedelta(milliseconds=10))
        if index < len(hosts) - 1:
            message = request.chain.pop()
            assert message["task"] == JOB_TASK
            assert HANDED_OVER in message["kwargs"]
            shown = message["options"]["kwargsrepr"]
            assert "'task': 'h." in shown, "it shows the job's arguments…"
            assert HANDED_OVER not in shown, "…without the hand-over"
            message.setdefault("options", {})["chain"] = request.chain

    assert jqm.ran == list(TASKS)  # type: ignore[attr-defined]
    assert writes_per_job == [2, 1, 1], "a claim and a hand-over, then a hand-over, then an end"
    attempts = _attempts(jqm.store, plan.run_id)
    assert [(a[1], a[2]) for a in attempts] == [(AttemptStatus.DONE, host) for host in hosts]
    assert [a[3] for a in attempts] == [NOW + timedelta(milliseconds=10 * i) for i in range(3)]


def test_a_handed_over_message_that_arrives_late_is_checked_and_skipped_if_the_run_was_held(
    jqm: JobQueueManager, clock: FakeClock
) -> None:
    plan = _start(jqm)
    second = _run_first_job(jqm, plan)
    jqm.hold("p")
    clock.advance(timedelta(seconds=FRESH_S + 1))

    assert jqm.runtime.execute_job(_Task(_request(second, "w2@host")), second["args"][0]) == "SKIPPED"
    assert jqm.ran == ["h.first"]  # type: ignore[attr-defined]
    assert [j.status for j in jqm.store.run(plan.run_id).jobs] == [
        JobStatus.DONE,
        JobStatus.SKIPPED,
        JobStatus.SKIPPED,
    ]


def test_a_handed_over_message_that_arrives_late_in_a_running_run_is_checked_then_run(
    jqm: JobQueueManager, clock: FakeClock
) -> None:
    plan = _start(jqm)
    second = _run_first_job(jqm, plan)
    clock.advance(timedelta(seconds=FRESH_S + 1))

    with _writes(jqm.store) as writes:
        assert jqm.runtime.execute_job(_Task(_request(second, "w2@host")), second["args"][0]) == "DONE"
    assert writes["statements"] == 3, "the check (job and log entry), then the end"
    assert _attempts(jqm.store, plan.run_id)[1] == ("h.second", AttemptStatus.DONE, "w2@host", clock.now())


def test_a_redelivered_handed_over_message_claims_as_usual(jqm: JobQueueManager) -> None:
    plan = _start(jqm)
    second = _run_first_job(jqm, plan)
    # The worker that took the job over was lost; its message comes again.
    again = _request(second, "w2@host")
    again.delivery_info = {"redelivered": True}

    assert jqm.runtime.execute_job(_Task(again), second["args"][0]) == "DONE"
    assert [(a[1], a[2]) for a in _attempts(jqm.store, plan.run_id)[1:]] == [
        (AttemptStatus.INTERRUPTED, None),
        (AttemptStatus.DONE, "w2@host"),
    ]


def test_a_handed_over_job_that_fails_records_its_worker_and_applies_the_policy(
    jqm: JobQueueManager, clock: FakeClock
) -> None:
    plan = _start(jqm)
    second = _run_first_job(jqm, plan)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bank offline")

    jqm.app.tasks["h.second"].run = fail
    clock.advance(timedelta(milliseconds=10))
    assert jqm.runtime.execute_job(_Task(_request(second, "w2@host")), second["args"][0]) == "ERROR"

    attempt = [e for e in jqm.store.log_entries(run_id=plan.run_id, limit=100) if e.entry_task == "h.second"]
    assert [(e.status, e.worker, e.started_at, e.error) for e in attempt] == [
        (AttemptStatus.ERROR, "w2@host", clock.now(), "RuntimeError: bank offline")
    ]
    assert [j.status for j in jqm.store.run(plan.run_id).jobs] == [
        JobStatus.DONE,
        JobStatus.ERROR,
        JobStatus.SKIPPED,
    ], "OnError.STOP skips the rest"


# -- the worker names itself; the reconciler settles a hand-over no worker took --------------------


class _Running:
    """What the report reads of a worker's request of a running task (held by a weak set, as there)."""

    def __init__(self, **attributes: Any) -> None:
        self.__dict__.update(attributes)


def test_a_worker_names_itself_on_the_handed_over_jobs_it_has_run_for_a_while(jqm: JobQueueManager) -> None:
    plan = _start(jqm)
    second = _run_first_job(jqm, plan)
    started = datetime.now(UTC).timestamp()
    running = _Running(
        type=JOB_TASK,
        task_name=flower_name("p", "h.second"),
        id=second["options"]["task_id"],
        args=second["args"],
        kwargs=second["kwargs"],
        hostname="w2@host",
        time_start=started,
    )
    worker_state.active_requests.add(running)  # type: ignore[arg-type]
    reported: set[str] = set()
    try:
        assert report_starts(jqm.store, "w2@host", reported, now=started + REPORT_AFTER_S / 2) == 0
        assert _job(jqm.store, plan.run_id, 1).worker is None, "too early"
        assert report_starts(jqm.store, "w2@host", reported, now=started + REPORT_AFTER_S) == 1
        assert report_starts(jqm.store, "w2@host", reported, now=started + REPORT_AFTER_S * 2) == 0
    finally:
        worker_state.active_requests.discard(running)  # type: ignore[arg-type]
    assert report_starts(jqm.store, "w2@host", reported) == 0
    assert reported == set(), "forgotten once it no longer runs"
    attempt = _attempts(jqm.store, plan.run_id)[1]
    assert attempt[1:] == (AttemptStatus.RUNNING, "w2@host", datetime.fromtimestamp(started, UTC))


def test_the_reconciler_queues_again_a_handed_over_job_no_worker_started(
    jqm: JobQueueManager, clock: FakeClock
) -> None:
    plan = _start(jqm)
    late = _run_first_job(jqm, plan)
    sent: list[Any] = []
    jqm.job_queue.send = sent.append  # type: ignore[method-assign]  # no broker here: what it would send
    window = timedelta(seconds=max(jqm.reconciler.interval_s * STALE_AFTER_INTERVALS, UNNAMED_AFTER_S))

    clock.advance(window - timedelta(seconds=1))
    assert jqm.reconciler.reconcile().requeued == 0, "it may still be on its way"
    clock.advance(timedelta(seconds=2))
    assert jqm.reconciler.reconcile().requeued == 1
    job = _job(jqm.store, plan.run_id, 1)
    assert job.status == JobStatus.QUEUED
    assert job.celery_task_id != late["options"]["task_id"]
    assert len(sent) == 1
    # The message that was handed over, arriving after all, is not this job's any more.
    assert jqm.runtime.execute_job(_Task(_request(late, "w2@host")), late["args"][0]) == "NOT_RUN"
    assert jqm.ran == ["h.first"]  # type: ignore[attr-defined]
