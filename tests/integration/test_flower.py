"""Flower, as users run it, against the test broker: a run's jobs are found by run id, named by package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from jqm_celery import Entry, JobQueueManager, Package, RunStatus
from tests.integration.conftest import ROOT, Backend
from tests.integration.mailserver import free_port


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def flower(backend: Backend) -> Iterator[str]:
    port = free_port()
    log = (backend.tmp / f"flower-{port}.log").open("wb")
    env = {**os.environ, "JQM_TEST_CONF": json.dumps(backend.conf), "FLOWER_UNAUTHENTICATED_API": "true"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.integration.flower_app",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(f"{base}/api/tasks?limit=1")
                break
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"flower did not start: {(backend.tmp / f'flower-{port}.log').read_text()}"
                    ) from None
                time.sleep(0.2)
        _wait_until_flower_sees_events(backend, base)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait_until_flower_sees_events(backend: Backend, base: str) -> None:
    """Flower's HTTP server answers before its event receiver listens: probe with tasks until one shows."""
    noop = backend.app().tasks["tests.noop"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        probe = noop.apply_async()
        seen_by = time.monotonic() + 3
        while time.monotonic() < seen_by:
            try:
                _get(f"{base}/api/task/info/{probe.id}")
                return
            except urllib.error.HTTPError:
                time.sleep(0.1)
    raise AssertionError("flower never saw a task event")


@pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)
def test_flower_finds_every_job_of_a_run_by_its_run_id_under_the_package_name(
    jqm: JobQueueManager, flower: str, name: str
) -> None:
    jqm.save(
        Package(
            name,
            entries=[Entry("tests.noop", run_order=10), Entry("tests.sleep", args=[0.05], run_order=20)],
        )
    )
    run = jqm.run_now(name).wait(timeout=60)
    assert run.status is RunStatus.SUCCEEDED

    query = urllib.parse.urlencode({"search": f"kwargs:run_id={run.id}"})
    deadline = time.monotonic() + 30
    while True:
        tasks = _get(f"{flower}/api/tasks?{query}")
        names = sorted(task["name"] for task in tasks.values())
        if len(names) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert names == [f"{name} › tests.noop", f"{name} › tests.sleep"]
    assert {task["state"] for task in tasks.values()} == {"SUCCESS"}
    by_package = _get(f"{flower}/api/tasks?{urllib.parse.urlencode({'search': f'kwargs:package={name}'})}")
    assert set(by_package) == set(tasks)
