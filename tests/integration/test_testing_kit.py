"""``jqm_celery.testing``, used as a user's own unit tests would use it: no broker, no database server.

The tasks below belong to a user's app of their own; ``run_package`` runs them through the real runtime
on a temporary embedded store, in a worker thread, so the tests read what the tasks did from memory.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery

from jqm_celery import (
    AttemptStatus,
    Entry,
    JobError,
    JobStatus,
    OnError,
    Package,
    PackageStatus,
    RetryPolicy,
    RunStatus,
    ValidationError,
)
from jqm_celery.testing import package_runner, run_package, run_with
from tests.integration.conftest import ROOT

app = Celery("myproj", set_as_current=False)
calls: list[str] = []
_lock = threading.Lock()


def _called(text: str) -> None:
    with _lock:
        calls.append(text)


@app.task(name="myproj.step")
def step(label: str) -> str:
    _called(label)
    return label


@app.task(name="myproj.flaky")
def flaky(label: str, failures: int) -> None:
    _called(label)
    if calls.count(label) <= failures:
        raise ConnectionError(f"{label}: the bank is down")


@app.task(name="myproj.refuse")
def refuse(reason: str) -> None:
    _called("refuse")
    raise JobError(reason, traceback=False)


TASKS = [step, flaky, refuse]
QUICK = RetryPolicy(max_retries=2, base_delay=timedelta(seconds=30))


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    calls.clear()


def _package(on_error: OnError = OnError.STOP, *middle: Entry) -> Package:
    return Package(
        "nightly",
        entries=[
            Entry("myproj.step", args=["first"], run_order=10),
            *middle,
            Entry("myproj.step", args=["last"], run_order=30),
        ],
        on_error=on_error,
    )


def test_entries_run_in_run_order_and_the_run_succeeds() -> None:
    package = _package(OnError.STOP, Entry("myproj.step", args=["middle"], run_order=20))

    run = run_package(package, tasks=TASKS)

    assert run.status is RunStatus.SUCCEEDED
    assert calls == ["first", "middle", "last"]
    assert [job.status for job in run.jobs] == [JobStatus.DONE] * 3


def test_a_failed_attempt_is_retried_in_its_place_with_the_delay_recorded_but_skipped() -> None:
    package = _package(OnError.STOP, Entry("myproj.flaky", args=["upload", 1], run_order=20, retry=QUICK))

    run = run_package(package, tasks=TASKS, retry_delays="skip")

    assert run.status is RunStatus.SUCCEEDED
    assert calls == ["first", "upload", "upload", "last"]
    upload = run.job("myproj.flaky")
    assert [a.status for a in upload.attempts] == [AttemptStatus.FAILED, AttemptStatus.DONE]
    assert upload.attempts[0].planned_delay == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("on_error", "last", "package_status"),
    [
        (OnError.STOP, JobStatus.SKIPPED, PackageStatus.ERROR),
        (OnError.FINISH_THEN_STOP, JobStatus.DONE, PackageStatus.ERROR),
        (OnError.CONTINUE, JobStatus.DONE, PackageStatus.ACTIVE),
    ],
)
def test_a_job_that_fails_for_good_ends_the_run_by_the_on_error_policy(
    on_error: OnError, last: JobStatus, package_status: PackageStatus
) -> None:
    package = _package(on_error, Entry("myproj.flaky", args=["upload", 9], run_order=20, retry=QUICK))

    with package_runner(tasks=TASKS, retry_delays="skip") as jqm:
        run = run_with(jqm, package)
        stopped = jqm.package("nightly").status

    assert run.status is RunStatus.FAILED
    assert [job.status for job in run.jobs] == [JobStatus.DONE, JobStatus.ERROR, last]
    assert calls.count("upload") == 3
    assert ("last" in calls) is (last is JobStatus.DONE)
    assert stopped is package_status


def test_a_task_that_fails_its_own_job_is_not_retried() -> None:
    package = _package(OnError.CONTINUE, Entry("myproj.refuse", args=["no file"], run_order=20, retry=QUICK))

    run = run_package(package, tasks={"myproj.step": step, "myproj.refuse": refuse})

    refused = run.job("myproj.refuse")
    assert [a.status for a in refused.attempts] == [AttemptStatus.ERROR]
    assert refused.error == "no file"
    assert calls == ["first", "refuse", "last"]


def test_retry_delays_other_than_real_or_skip_are_refused() -> None:
    with pytest.raises(ValidationError, match="retry_delays must be 'real' or 'skip'"):
        run_package(_package(), tasks=TASKS, retry_delays="fast")  # type: ignore[arg-type]


def test_the_readme_example_runs(tmp_path: Path) -> None:
    # As its reader would run it: a test file of their own, run by pytest in a process of its own (its
    # tasks are Celery's shared ones, which every app made later in this process would get too).
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Test your packages") :]
    (code,) = re.findall(r"```python\n(.*?)```", section[: section.index("\n## ", 3)], re.S)
    (tmp_path / "test_billing.py").write_text(code)

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_billing.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
