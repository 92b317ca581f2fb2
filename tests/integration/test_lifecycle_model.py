"""A model of the run lifecycle: random sequences of lifecycle actions against a real worker (hypothesis).

The actions are the ones users and operators take: save, activate, hold, run now, run now queued, cancel a
run, and a crash of the worker (SIGKILL; a new worker starts). After each step, once it has settled, no
package has a QUEUED run while none is RUNNING; at the end of each example every run ends, no job of a
held or cancelled run started after the hold or cancel, no job has two successful attempts, and each
attempt has exactly one log entry.

Size: ``JQM_MODEL_EXAMPLES`` examples (default 4) of up to ``JQM_MODEL_STEPS`` steps (default 8) on each
backend, under a minute in all. For a long soak, raise them, e.g.
``JQM_MODEL_EXAMPLES=200 JQM_MODEL_STEPS=30 pytest tests/integration/test_lifecycle_model.py``.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from jqm_celery import (
    AttemptStatus,
    Entry,
    JobQueueManager,
    LogKind,
    Package,
    PackageStatus,
    RetryPolicy,
    Run,
    RunStatus,
    RunTimeoutError,
    StateError,
)
from jqm_celery.store.models import JobRow
from tests.integration.conftest import Backend, Worker
from tests.integration.testapp import read_marks

EXAMPLES = int(os.environ.get("JQM_MODEL_EXAMPLES", "4"))
STEPS = int(os.environ.get("JQM_MODEL_STEPS", "8"))
#: Worker crashes in one example at the most (each one costs a worker start, about 2 s).
KILLS_PER_EXAMPLE = 1
#: A package may show a QUEUED run and no RUNNING one only while a run closes: for milliseconds.
SETTLE_S = 10.0
#: Long enough for a crashed worker's jobs to be recovered (a broker's visibility timeout, the reconciler's
#: stale window, the wait for a handed-over job no worker has named) and their runs to end.
RUN_ENDS_S = 45.0
RETRY = RetryPolicy(max_retries=2, base_delay=timedelta(milliseconds=100), max_delay=timedelta(seconds=1))


def _shape(name: str, shape: str, marks: Path) -> Package:
    def record(entry: str, run_order: int, sleep_s: float = 0.0) -> Entry:
        return Entry("tests.record", args=[str(marks), f"{name}.{entry}", sleep_s], run_order=run_order)

    entries = {
        "chain": [record("a", 10, 0.3), record("b", 20, 0.3), record("c", 30)],
        "group": [record("a", 10, 0.1), record("b", 20, 0.3), record("c", 20, 0.3), record("d", 30)],
        "retry": [
            Entry("tests.flaky", args=[str(marks), f"{name}.flaky", 1], run_order=10, retry=RETRY),
            record("b", 20, 0.3),
        ],
    }[shape]
    return Package(name, entries=entries)


SHAPES = ("chain", "group", "retry")


@dataclass
class Fleet:
    """The worker the model crashes, and the one that replaces it (started in the background)."""

    backend: Backend
    worker: Worker
    starting: threading.Thread | None = None

    def crash_and_replace(self) -> None:
        self.ready()
        self.worker.kill()
        self.worker = Worker(self.backend, self.worker.args)
        self.starting = threading.Thread(target=self.worker.start, daemon=True)
        self.starting.start()

    def ready(self) -> None:
        if self.starting is not None:
            self.starting.join()
            self.starting = None

    def stop(self) -> None:
        self.ready()
        self.worker.stop()


@pytest.fixture
def model_backend(backend: Backend) -> Backend:
    """The backend on a queue of its own, with a reconciler that beats every half second (a worker is gone
    after 1.5 s) and a short visibility timeout: a crashed worker's messages come back after 3 s. (Redis
    gives them back only when a consumer sweeps for them: by default every 100 s, here every second.)"""
    transport = {
        **backend.conf.get("broker_transport_options", {}),
        "visibility_timeout": 3,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
    conf = {
        **backend.conf,
        "task_default_queue": f"{backend.queue}-model",
        "jqm_reconcile_interval_s": 0.5,
        "broker_transport_options": transport,
    }
    return replace(backend, conf=conf, _app=None)


@pytest.fixture
def fleet(model_backend: Backend) -> Iterator[Fleet]:
    running = Fleet(model_backend, Worker(model_backend, ["--pool=prefork", "--concurrency=2"]).start())
    yield running
    running.stop()


@pytest.mark.timeout(max(300, 10 * EXAMPLES * STEPS))
@pytest.mark.parametrize("backend", ["embedded", "redis-pg"], indirect=True)
def test_random_lifecycle_actions_keep_the_run_lifecycle_invariants(
    model_backend: Backend, fleet: Fleet, tmp_path: Path
) -> None:
    jqm = JobQueueManager.of(model_backend.app())

    class Lifecycle(RuleBasedStateMachine):
        """One package per example; each rule is one action on it."""

        def __init__(self) -> None:
            super().__init__()
            self.name = f"model-{uuid.uuid4().hex[:8]}"
            self.marks = tmp_path / f"{self.name}.jsonl"
            #: (when it returned, the runs it stopped): a hold or a cancel; no job of those starts later.
            self.stops: list[tuple[float, set[int]]] = []
            self.kills = 0
            #: What each step did, for the failure message: a replay of a concurrent system may differ.
            self.story: list[str] = []
            self.t0 = time.monotonic()

        def did(self, what: str) -> None:
            self.story.append(f"{time.monotonic() - self.t0:6.2f} s  {what}")

        def told(self, message: str) -> str:
            return "\n".join([message, "steps:", *self.story])

        def runs(self) -> list[Run]:
            """The package's runs, newest first."""
            return jqm.runs(self.name, limit=1000)

        # -- actions ------------------------------------------------------------------------

        @initialize(shape=st.sampled_from(SHAPES))
        def create(self, shape: str) -> None:
            jqm.save(_shape(self.name, shape, self.marks))
            self.did(f"create({shape!r})")

        @rule(shape=st.sampled_from(SHAPES))
        def save(self, shape: str) -> None:
            try:
                jqm.save(_shape(self.name, shape, self.marks))
            except StateError:
                self.did(f"save({shape!r}): refused")
                assert jqm.package(self.name).status is PackageStatus.ACTIVE
                return
            self.did(f"save({shape!r})")

        @rule()
        def activate(self) -> None:
            jqm.activate(self.name)
            self.did("activate()")

        @rule()
        def hold(self) -> None:
            before = {run.id for run in self.runs()}
            try:
                jqm.hold(self.name)
            except StateError:
                self.did("hold(): refused")
                assert jqm.package(self.name).status is not PackageStatus.ACTIVE
                return
            self.stops.append((time.time(), before))
            self.did(f"hold(): runs {sorted(before)} existed")

        @rule(queue=st.booleans())
        def run_now(self, queue: bool) -> None:
            asked = time.time()
            try:
                run = jqm.run_now(self.name, queue=queue)
            except StateError:
                self.did(f"run_now(queue={queue}): refused")
                assert not queue
                in_flight = [
                    r for r in self.runs() if r.finished_at is None or r.finished_at.timestamp() >= asked
                ]
                assert in_flight, "run_now was refused with no run in flight"
                return
            self.did(f"run_now(queue={queue}): run {run.id} {run.status}")
            assert run.status in (RunStatus.RUNNING, RunStatus.QUEUED)

        @rule(oldest=st.booleans())
        def cancel_run(self, oldest: bool) -> None:
            """Cancel the oldest unfinished run (the running one) or the newest (one queued behind it)."""
            open_runs = [run for run in self.runs() if not run.status.finished]
            if not open_runs:
                self.did(f"cancel_run(oldest={oldest}): no run in flight")
                return
            run_id = open_runs[-1 if oldest else 0].id
            try:
                jqm.cancel_run(run_id)
            except StateError:
                self.did(f"cancel_run(oldest={oldest}): run {run_id} had finished")
                assert jqm.run(run_id).status.finished
                return
            self.stops.append((time.time(), {run_id}))
            self.did(f"cancel_run(oldest={oldest}): run {run_id}, of {[r.id for r in open_runs]} in flight")

        @precondition(lambda self: self.kills < KILLS_PER_EXAMPLE)
        @rule()
        def crash_the_worker(self) -> None:
            self.kills += 1
            fleet.crash_and_replace()
            self.did("crash_the_worker()")

        @rule()
        def let_a_job_start(self) -> None:
            """Time passes: until the next attempt starts, or every run has ended (at most 5 s)."""
            started = self._attempts()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self._attempts() == started and self._open_runs():
                time.sleep(0.02)
            self.did("let_a_job_start()")

        # -- invariants ---------------------------------------------------------------------

        @invariant()
        def no_queued_run_while_none_is_running(self) -> None:
            deadline = time.monotonic() + SETTLE_S
            while queued := self._queued_behind_nothing():
                assert time.monotonic() < deadline, self.told(f"runs {queued} are QUEUED and none is RUNNING")
                time.sleep(0.05)

        def teardown(self) -> None:
            fleet.ready()
            try:
                runs = [run.wait(timeout=RUN_ENDS_S) for run in self.runs()]
            except RunTimeoutError as exc:
                raise AssertionError(self.told(str(exc))) from None
            self._no_job_started_after_its_run_stopped(runs)
            self._no_attempt_succeeded_twice(runs)
            self._one_log_entry_per_attempt(runs)

        # -- helpers ------------------------------------------------------------------------

        def _attempts(self) -> int:
            return len(jqm.log_entries(package=self.name, kind=LogKind.ATTEMPT, limit=10_000))

        def _open_runs(self) -> bool:
            return any(not run.status.finished for run in self.runs())

        def _queued_behind_nothing(self) -> list[int]:
            runs = self.runs()
            if any(run.status is RunStatus.RUNNING for run in runs):
                return []
            return [run.id for run in runs if run.status is RunStatus.QUEUED]

        def _no_job_started_after_its_run_stopped(self, runs: list[Run]) -> None:
            by_id = {run.id: run for run in runs}
            for stopped_at, run_ids in self.stops:
                for run_id in run_ids:
                    late = [
                        (job.task, a.started_at.timestamp() - stopped_at)
                        for job in by_id[run_id].jobs
                        for a in job.attempts
                        if a.started_at.timestamp() > stopped_at
                    ]
                    assert not late, self.told(
                        f"run {run_id}: attempts started after its hold or cancel: {late}"
                    )

        def _no_attempt_succeeded_twice(self, runs: list[Run]) -> None:
            for run in runs:
                for job in run.jobs:
                    done = [a for a in job.attempts if a.status is AttemptStatus.DONE]
                    assert len(done) <= 1, self.told(
                        f"job {job.id} of run {run.id} succeeded {len(done)} times"
                    )
                    assert all(a.status is not AttemptStatus.RUNNING for a in job.attempts), (
                        f"job {job.id} of run {run.id} has an attempt still RUNNING after its run ended"
                    )

        def _one_log_entry_per_attempt(self, runs: list[Run]) -> None:
            jobs = {job.id: job for run in runs for job in run.jobs}
            with jqm._store.transaction() as s:
                counted = dict(s.execute(select(JobRow.id, JobRow.attempts).where(JobRow.id.in_(jobs))).all())
            logged = {job_id: len(job.attempts) for job_id, job in jobs.items()}
            assert logged == counted, self.told(f"attempts logged {logged}, counted {counted}")
            started: dict[int, int] = {}
            for mark in read_marks(self.marks):
                if mark["event"] in ("start", "call") and mark.get("job_id") in jobs:
                    started[int(mark["job_id"])] = started.get(int(mark["job_id"]), 0) + 1
            over = {job_id: n for job_id, n in started.items() if n > logged[job_id]}
            assert not over, self.told(f"jobs whose task started more often than they have attempts: {over}")

    run_state_machine_as_test(
        Lifecycle,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            # No shrinking: a replay of a concurrent system does not fail the same way, so hypothesis would
            # only report it as flaky. The failure message tells each step of the sequence that failed.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
