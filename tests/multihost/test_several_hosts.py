"""Workers on several machines: two worker hosts and a beat host in network namespaces, broker and
database reached over their links (tests/multihost/netns.py), all of them real processes.

The servers are the test's own (a Redis and a PostgreSQL cluster on the bridge's address), never the
shared ones. The module skips with the reason when this machine does not permit network namespaces.
``JQM_MULTIHOST_SOAK=N`` repeats the link-cut scenario N times with a run ten times as large.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jqm_celery import (
    AttemptStatus,
    Entry,
    JobQueueManager,
    JobStatus,
    Package,
    Recurrence,
    Run,
    RunStatus,
)
from jqm_celery.store.models import JobRow
from tests.integration.testapp import make_app, read_marks
from tests.multihost.netns import Host, NamespacesUnavailable, Network
from tests.multihost.servers import PostgresServer, RedisServer
from tests.processes import Process, wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
APP = ["--app", "tests.integration.cliapp:app"]
JQM = [sys.executable, "-m", "jqm_celery.cli", *APP]
#: The reconciler's interval: a worker with no heartbeat for three of them is gone.
RECONCILE_INTERVAL_S = 2
VISIBILITY_TIMEOUT_S = 20
POOL_SIZE = 2
SOAK_ROUNDS = int(os.environ.get("JQM_MULTIHOST_SOAK", "0"))


@dataclass
class Cluster:
    network: Network
    hosts: dict[str, Host]
    conf: dict[str, Any]
    jqm: JobQueueManager
    tmp: Path
    workers: dict[str, Process]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "JQM_TEST_CONF": json.dumps(self.conf)}

    def start_worker(self, host: str, *args: str) -> Process:
        log = self.tmp / f"{host}-{uuid.uuid4().hex[:6]}.log"
        command = [*JQM, "worker", "--default-pool-size", str(POOL_SIZE), "--restart-delay", "0.5", *args]
        process = self.hosts[host].start(command, log, cwd=ROOT, env=self.env)
        return process.wait_for(" ready.", timeout=180)

    def cli(self, host: str, *args: str) -> str:
        return self.hosts[host].run([*JQM, *args], cwd=ROOT, env=self.env)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        network = Network()
    except NamespacesUnavailable as reason:
        if os.environ.get("CI"):
            pytest.fail(f"several-hosts tests need network namespaces: {reason}")
        pytest.skip(f"several-hosts tests need network namespaces: {reason}")
    tmp = tmp_path_factory.mktemp("multihost")
    redis = postgres = None
    workers: dict[str, Process] = {}
    try:
        hosts = {name: network.add_host(name) for name in ("w1", "w2", "beat")}
        redis = RedisServer(network.server_address).start()
        postgres = PostgresServer(network.server_address).start()
        conf = {
            "broker_url": f"{redis.url}/0",
            "jqm_database_url": postgres.create_database("jqm"),
            "jqm_auto_migrate": True,
            "task_default_queue": "jqm-multihost",
            "jqm_reconcile_interval_s": RECONCILE_INTERVAL_S,
            # A message a cut-off worker had received but not yet claimed is put back by Redis after
            # this (the reconciler recovers the claimed, RUNNING ones); far above the jobs' length.
            "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
        }
        jqm = JobQueueManager.of(make_app(conf))  # migrates the store before any worker starts
        cluster = Cluster(network, hosts, conf, jqm, tmp, workers)
        for name in ("w1", "w2"):
            workers[name] = cluster.start_worker(name)
        yield cluster
    finally:
        for process in workers.values():
            process.stop()
        network.close()
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()


def _hosts_of(run: Run) -> set[str]:
    return {str(job.worker).split("@", 1)[1] for job in run.jobs if job.worker}


def _package(cluster: Cluster, name: str, size: int, sleep_s: float, marks: Path, **kwargs: Any) -> Package:
    entries = [Entry("tests.record", args=[str(marks), f"e{i}", sleep_s], run_order=10) for i in range(size)]
    return Package(name, entries=entries, **kwargs)


def test_a_package_run_spread_over_two_worker_hosts_finishes(cluster: Cluster) -> None:
    marks = cluster.tmp / "spread.jsonl"
    name = f"spread-{uuid.uuid4().hex[:6]}"
    cluster.jqm.save(_package(cluster, name, 8, 1.0, marks))
    cluster.jqm.activate(name)
    run = cluster.jqm.run_now(name).wait(timeout=120)
    assert run.status is RunStatus.SUCCEEDED
    assert {job.status for job in run.jobs} == {JobStatus.DONE}
    assert _hosts_of(run) == {"jqmh-w1", "jqmh-w2"}
    starts = Counter(m["job_id"] for m in read_marks(marks) if m["event"] == "start")
    assert sorted(starts.values()) == [1] * 8


def _deferred(jqm: JobQueueManager, job_id: int) -> bool:
    with jqm._store.transaction() as s:
        return s.scalar(select(JobRow.deferred_at).where(JobRow.id == job_id)) is not None


@pytest.fixture
def w2_only(cluster: Cluster) -> Iterator[str]:
    """A queue that only a worker on host w2 consumes."""
    queue = f"w2only-{uuid.uuid4().hex[:6]}"
    cluster.jqm.define_queue(queue, pool_size=1)
    worker = cluster.start_worker("w2", "--queue", queue)
    yield queue
    worker.stop()


def test_an_abort_from_one_host_reaches_the_job_on_the_other(cluster: Cluster, w2_only: str) -> None:
    marks = cluster.tmp / "abort.jsonl"
    job = cluster.jqm.enqueue("tests.record", args=[str(marks), "long", 120.0], queue=w2_only)
    wait_until(lambda: cluster.jqm.job(job.id).status is JobStatus.RUNNING, 60, "the job never started")
    assert str(cluster.jqm.job(job.id).worker).endswith("@jqmh-w2")

    cluster.cli("w1", "jobs", "abort", str(job.id))

    aborted = cluster.jqm.job(job.id)
    assert aborted.status is JobStatus.ABORTED
    assert [a.status for a in aborted.attempts] == [AttemptStatus.ABORTED]
    # w2's worker got the revoke and killed the process that ran the body.
    terminating = f"Terminating {aborted.celery_task_id} (9)"
    wait_until(lambda: terminating in _logs_of(cluster, "w2"), 60, "w2's worker never terminated the job")
    assert [m["event"] for m in read_marks(marks)] == ["start"]


def _logs_of(cluster: Cluster, host: str) -> str:
    return "".join(p.read_text(errors="replace") for p in cluster.tmp.glob(f"{host}-*.log"))


def test_a_queue_paused_from_one_host_holds_the_job_on_the_other(cluster: Cluster, w2_only: str) -> None:
    marks = cluster.tmp / "pause.jsonl"
    cluster.cli("w1", "queues", "pause", w2_only)
    job = cluster.jqm.enqueue("tests.record", args=[str(marks), "paused"], queue=w2_only)

    wait_until(lambda: _deferred(cluster.jqm, job.id), 60, "the worker on w2 never refused the job")
    assert cluster.jqm.job(job.id).status is JobStatus.QUEUED
    assert not marks.exists()

    cluster.cli("w1", "queues", "resume", w2_only)
    wait_until(lambda: cluster.jqm.job(job.id).status is JobStatus.DONE, 60, "the job never ran after resume")
    assert str(cluster.jqm.job(job.id).worker).endswith("@jqmh-w2")


def test_beat_on_one_host_fires_a_recurrence_that_workers_on_others_run(cluster: Cluster) -> None:
    marks = cluster.tmp / "beat.jsonl"
    name = f"beat-{uuid.uuid4().hex[:6]}"
    every_2_s = Recurrence.every(timedelta(seconds=2))
    cluster.jqm.save(_package(cluster, name, 2, 0.0, marks, recurrences=[every_2_s]))
    command = [sys.executable, "-m", "celery", *APP, "beat", "-S", "beat_schedules:PackageScheduler"]
    command += ["--loglevel=INFO"]
    beat = cluster.hosts["beat"].start(command, cluster.tmp / "beat.log", cwd=ROOT, env=cluster.env)
    with beat:
        beat.wait_for("beat: Starting", timeout=120)
        cluster.jqm.activate(name)

        def finished() -> list[Run]:
            return [r for r in cluster.jqm.runs(name) if r.status is RunStatus.SUCCEEDED]

        wait_until(finished, 120, "no fired run finished", beat)
        cluster.jqm.hold(name)
    run = cluster.jqm.run(finished()[0].id)
    assert run.trigger == "recurrence"
    assert _hosts_of(run)
    assert _hosts_of(run) <= {"jqmh-w1", "jqmh-w2"}


def _cut_one_host_mid_run(cluster: Cluster, size: int, sleep_s: float, *, restart: bool) -> dict[str, Any]:
    """Cut w1's link while both hosts run jobs of one run; the figures of what happened."""
    jqm = cluster.jqm
    marks = cluster.tmp / f"cut-{uuid.uuid4().hex[:6]}.jsonl"
    name = f"cut-{uuid.uuid4().hex[:6]}"
    jqm.save(_package(cluster, name, size, sleep_s, marks))
    jqm.activate(name)
    run = jqm.run_now(name)

    def running(host: str) -> set[int]:
        jobs = jqm.run(run.id).jobs
        return {j.id for j in jobs if j.status is JobStatus.RUNNING and str(j.worker).endswith(f"@{host}")}

    # w1's pool is full of claimed jobs (so it holds no message it has not claimed) and w2 runs too.
    both = "the run never ran on both hosts at once"
    wait_until(lambda: len(running("jqmh-w1")) == POOL_SIZE and running("jqmh-w2"), 120, both)
    on_w1 = running("jqmh-w1")
    cut_wall = datetime.now(UTC)
    cut_at = time.monotonic()
    cluster.network.cut(cluster.hosts["w1"])
    try:
        ended = run.wait(timeout=60 + VISIBILITY_TIMEOUT_S + 10 * RECONCILE_INTERVAL_S + size * sleep_s)
        ended_after_s = time.monotonic() - cut_at
    finally:
        # w1 comes back (for the next round) as a freshly started machine would: its old processes
        # gone, the link mended.
        cluster.network.kill_processes(cluster.hosts["w1"])
        cluster.workers["w1"].stop()
        cluster.network.mend(cluster.hosts["w1"])
        if restart:
            cluster.workers["w1"] = cluster.start_worker("w1")

    jobs = [jqm.job(j.id) for j in ended.jobs]  # with their attempts
    done_attempts = {j.id: sum(a.status == AttemptStatus.DONE for a in j.attempts) for j in jobs}
    interrupted = {j.id for j in jobs if any(a.status == AttemptStatus.INTERRUPTED for a in j.attempts)}
    recovered_at = [j.finished_at for j in jobs if j.id in interrupted and j.finished_at is not None]
    recovered_s = (max(recovered_at) - cut_wall).total_seconds() if recovered_at else float("nan")
    starts = Counter(m["job_id"] for m in read_marks(marks) if m["event"] == "start")
    return {
        "status": ended.status,
        "jobs": len(jobs),
        "running_on_w1_at_cut": on_w1,
        "lost": [j.id for j in jobs if j.status is not JobStatus.DONE],
        "done_twice": [i for i, n in done_attempts.items() if n != 1],
        "interrupted": interrupted,
        "doubled": {i for i, n in starts.items() if n > 1},
        "time_to_end_s": ended_after_s,
        "recovered_s": recovered_s,
    }


def test_a_hosts_jobs_are_recovered_by_the_other_when_its_link_is_cut(cluster: Cluster) -> None:
    """Last in the module: after its last round host w1 stays down (restarting it would only cost time)."""
    rounds = max(SOAK_ROUNDS, 1)
    size, sleep_s = (40, 2.0) if SOAK_ROUNDS else (8, 4.0)
    for round_ in range(1, rounds + 1):
        figures = _cut_one_host_mid_run(cluster, size, sleep_s, restart=round_ < rounds)
        print(
            f"\nlink cut, round {round_}: run {figures['status']}, {figures['jobs']} jobs, "
            f"{len(figures['running_on_w1_at_cut'])} running on the cut host, lost {len(figures['lost'])}, "
            f"done twice {len(figures['done_twice'])}, bodies started twice {len(figures['doubled'])} "
            f"(all of them interrupted on the cut host: {figures['doubled'] <= figures['interrupted']}), "
            f"the last interrupted job DONE {figures['recovered_s']:.1f} s and the run ended "
            f"{figures['time_to_end_s']:.1f} s after the cut "
            f"(reconcile interval {RECONCILE_INTERVAL_S} s)"
        )
        assert figures["status"] is RunStatus.SUCCEEDED
        assert figures["lost"] == []
        assert figures["done_twice"] == []
        assert figures["running_on_w1_at_cut"] <= figures["interrupted"]
        # At-least-once: only a body whose attempt's end could not be written (its host cut off) runs again.
        assert figures["doubled"] <= figures["interrupted"]
