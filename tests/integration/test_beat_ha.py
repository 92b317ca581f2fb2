"""Several real ``celery beat`` processes on one store: each due instant fires exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select

from jqm_celery import Entry, JobQueueManager, Package, Recurrence, RunStatus
from jqm_celery.store.beat_models import FireRow
from tests.integration.conftest import ROOT, Backend


class BeatProcess:
    def __init__(self, backend: Backend) -> None:
        self.log_path = backend.tmp / f"beat-{uuid.uuid4().hex[:6]}.log"
        self.schedule = backend.tmp / f"beat-{uuid.uuid4().hex[:6]}.schedule"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.beat",
                    json.dumps(backend.conf),
                    "-l",
                    "INFO",
                    "-s",
                    str(self.schedule),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def beats(backend: Backend) -> Iterator[list[BeatProcess]]:
    started = [BeatProcess(backend) for _ in range(3)]
    yield started
    for beat in started:
        beat.stop()


def _fires(jqm: JobQueueManager, name: str) -> list[FireRow]:
    with jqm._store.transaction() as s:
        return list(s.scalars(select(FireRow).where(FireRow.package_name == name).order_by(FireRow.due_at)))


def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_three_beats_fire_each_instant_exactly_once_even_when_one_is_killed(
    jqm: JobQueueManager, name: str, beats: list[BeatProcess]
) -> None:
    every_second = Recurrence.every(timedelta(seconds=1))
    jqm.save(Package(name, entries=[Entry("tests.noop")], recurrences=[every_second]))
    jqm.activate(name)

    _wait_for(lambda: len(_fires(jqm, name)) >= 3, timeout=60)
    beats[0].kill()
    _wait_for(lambda: len(_fires(jqm, name)) >= 8, timeout=30)
    # A fire the killed beat committed but never sent is replaced once it is old enough.
    _wait_for(lambda: all(f.sent_at is not None for f in _fires(jqm, name)), timeout=40)
    jqm.hold(name)

    fires = _fires(jqm, name)
    instants = [f.due_at for f in fires]
    assert len(instants) == len(set(instants)), "an instant fired twice"
    # A late tick covers every instant up to its own time with one run (never a storm), so the next fire
    # is the first instant after the previous tick: anything else is a lost instant.
    lost = [
        (a.due_at, b.due_at) for a, b in pairwise(fires) if b.due_at != every_second.next_after(a.fired_at)
    ]
    assert lost == [], f"instants lost between fires: {lost}"
    run_ids = [f.run_id for f in fires if f.run_id is not None]
    assert len(run_ids) == len(set(run_ids))
    recurrence_runs = [r for r in jqm.runs(name, limit=1000) if r.id in set(run_ids)]
    assert len(recurrence_runs) == len(run_ids)
    for run in recurrence_runs:
        assert run.wait(timeout=30).status in (RunStatus.SUCCEEDED, RunStatus.STOPPED)
