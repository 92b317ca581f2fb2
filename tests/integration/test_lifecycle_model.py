"""A model of the run lifecycle: random sequences of lifecycle actions against a real worker (hypothesis).

The actions are the ones users and operators take: save, activate, hold, run now, run now queued, cancel a
run, and a crash of the worker (SIGKILL; a new worker starts). After each step, once it has settled, no
package has a QUEUED run while none is RUNNING; at the end of each example every run ends, no job of a
held or cancelled run started after the hold or cancel, no job has two successful attempts, and each
attempt has exactly one log entry.

Size: ``JQM_MODEL_EXAMPLES`` examples (default 4) of up to ``JQM_MODEL_STEPS`` steps (default 8) on each
backend, about a minute in all. For a long soak, raise them, e.g.
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
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
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
    after 1.5 s) and a short visibility timeout (a crashed worker's messages come back after 3 s)."""
    transport = {**backend.conf.get("broker_transport_options", {}), "visibility_timeout": 3}
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


@pytest.mark.parametrize("backend", ["embedded", "redis-pg"], indirect=True)
def test_random_lifecycle_actions_keep_the_run_lifecycle_invariants(
    model_backend: Backend, fleet: Fleet, tmp_path: Path
) -> None:
    jqm = JobQueueManager.of(model_backend.app())

    class Lifecycle(RuleBasedStateMachine):
        saved = Bundle("saved")

        def __init__(self) -> None:
            super().__init__()
            self.tag = uuid.uuid4().hex[:6]
            self.marks = tmp_path / f"marks-{self.tag}.jsonl"
            self.names: set[str] = set()
            #: (when it returned, the runs it stopped): a hold or a cancel; no job of those starts later.
            self.stops: list[tuple[float, set[int]]] = []
            self.kills = 0

        def runs(self, name: str) -> list[Run]:
            return jqm.runs(name, limit=1000)

        # -- actions ------------------------------------------------------------------------

        @initialize(target=saved, shapes=st.tuples(st.sampled_from(SHAPES), st.sampled_from(SHAPES)))
        def create(self, shapes: tuple[str, str]) -> MultipleResults[str]:
            names = [f"model-{self.tag}-{which}" for which in "ab"]
            for name, shape in zip(names, shapes, strict=True):
                jqm.save(_shape(name, shape, self.marks))
            self.names.update(names)
            return multiple(*names)

        @rule(name=saved, shape=st.sampled_from(SHAPES))
        def save(self, name: str, shape: str) -> None:
            try:
                jqm.save(_shape(name, shape, self.marks))
            except StateError:
                assert jqm.package(name).status is PackageStatus.ACTIVE

        @rule(name=saved)
        def activate(self, name: str) -> None:
            jqm.activate(name)

        @rule(name=saved)
        def hold(self, name: str) -> None:
            before = {run.id for run in self.runs(name)}
            try:
                jqm.hold(name)
            except StateError:
                assert jqm.package(name).status is not PackageStatus.ACTIVE
                return
            self.stops.append((time.time(), before))

        @rule(name=saved)
        def run_now(self, name: str) -> None:
            asked = time.time()
            try:
                jqm.run_now(name)
            except StateError:
                in_flight = [
                    run
                    for run in self.runs(name)
                    if run.finished_at is None or run.finished_at.timestamp() >= asked
                ]
                assert in_flight, "run_now was refused with no run in flight"

        @rule(name=saved)
        def run_now_queued(self, name: str) -> None:
            run = jqm.run_now(name, queue=True)
            assert run.status in (RunStatus.RUNNING, RunStatus.QUEUED)

        @rule(name=saved, oldest=st.booleans())
        def cancel_run(self, name: str, oldest: bool) -> None:
            """Cancel the package's oldest (the running one) or newest (a queued one) unfinished run."""
            open_runs = [run for run in self.runs(name) if not run.status.finished]
            if not open_runs:
                return
            run_id = open_runs[-1 if oldest else 0].id
            try:
                jqm.cancel_run(run_id)
            except StateError:
                assert jqm.run(run_id).status.finished
                return
            self.stops.append((time.time(), {run_id}))

        @precondition(lambda self: self.kills < KILLS_PER_EXAMPLE)
        @rule()
        def crash_the_worker(self) -> None:
            self.kills += 1
            fleet.crash_and_replace()

        @rule()
        def let_a_job_start(self) -> None:
            """Time passes: until the next attempt starts, or every run has ended (at most 5 s)."""
            started = self._attempts()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self._attempts() == started and self._open_runs():
                time.sleep(0.02)

        # -- invariants ---------------------------------------------------------------------

        @invariant()
        def no_package_has_a_queued_run_and_none_running(self) -> None:
            deadline = time.monotonic() + SETTLE_S
            while wedged := self._wedged():
                assert time.monotonic() < deadline, f"QUEUED runs with none RUNNING: {wedged}"
                time.sleep(0.05)

        def teardown(self) -> None:
            fleet.ready()
            runs = [run.wait(timeout=RUN_ENDS_S) for name in sorted(self.names) for run in self.runs(name)]
            self._no_job_started_after_its_run_stopped(runs)
            self._no_attempt_succeeded_twice(runs)
            self._one_log_entry_per_attempt(runs)

        # -- helpers ------------------------------------------------------------------------

        def _attempts(self) -> int:
            return sum(
                len(jqm.log_entries(package=name, kind=LogKind.ATTEMPT, limit=10_000)) for name in self.names
            )

        def _open_runs(self) -> bool:
            return any(not run.status.finished for name in self.names for run in self.runs(name))

        def _wedged(self) -> dict[str, list[int]]:
            wedged = {}
            for name in self.names:
                runs = self.runs(name)
                queued = [run.id for run in runs if run.status is RunStatus.QUEUED]
                if queued and not any(run.status is RunStatus.RUNNING for run in runs):
                    wedged[name] = queued
            return wedged

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
                    assert not late, f"run {run_id}: attempts started after its hold or cancel: {late}"

        def _no_attempt_succeeded_twice(self, runs: list[Run]) -> None:
            for run in runs:
                for job in run.jobs:
                    done = [a for a in job.attempts if a.status is AttemptStatus.DONE]
                    assert len(done) <= 1, f"job {job.id} of run {run.id} succeeded {len(done)} times"
                    assert all(a.status is not AttemptStatus.RUNNING for a in job.attempts), (
                        f"job {job.id} of run {run.id} has an attempt still RUNNING after its run ended"
                    )

        def _one_log_entry_per_attempt(self, runs: list[Run]) -> None:
            jobs = {job.id: job for run in runs for job in run.jobs}
            with jqm.store.transaction() as s:
                counted = dict(s.execute(select(JobRow.id, JobRow.attempts).where(JobRow.id.in_(jobs))).all())
            logged = {job_id: len(job.attempts) for job_id, job in jobs.items()}
            assert logged == counted, "each attempt has one log entry"
            started: dict[int, int] = {}
            for mark in read_marks(self.marks):
                if mark["event"] in ("start", "call") and mark.get("job_id") in jobs:
                    started[int(mark["job_id"])] = started.get(int(mark["job_id"]), 0) + 1
            over = {job_id: n for job_id, n in started.items() if n > logged[job_id]}
            assert not over, f"jobs whose task started more often than they have attempts: {over}"

    run_state_machine_as_test(
        Lifecycle,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        ),
    )
