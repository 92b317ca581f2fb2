"""The ``jqm`` command, run as a user runs it: a real process against the store a real worker uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jqm_celery import Entry, JobQueueManager, OnError, Package, Recurrence
from tests.integration.conftest import ROOT, Backend, Worker

pytestmark = pytest.mark.parametrize("backend", ["embedded"], indirect=True)


def jqm_cli(backend: Backend, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JQM_TEST_CONF": json.dumps(backend.conf), "JQM_APP": "tests.integration.cliapp:app"}
    return subprocess.run(
        [sys.executable, "-m", "jqm_celery.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_package_is_activated_run_and_read_back_from_the_command_line(
    backend: Backend, worker: Worker, jqm: JobQueueManager, name: str, marks: Path
) -> None:
    jqm.save(
        Package(
            name, entries=[Entry("tests.record", args=[str(marks), "cli"]), Entry("tests.noop", run_order=20)]
        )
    )

    activated = jqm_cli(backend, "packages", "activate", name)
    assert activated.returncode == 0, activated.stderr
    assert f"{name}: ACTIVE" in activated.stdout

    listed = jqm_cli(backend, "packages", "list")
    assert name in listed.stdout
    assert "ACTIVE" in listed.stdout

    ran = jqm_cli(backend, "packages", "run", name, "--wait", "--timeout", "60")
    assert ran.returncode == 0, ran.stderr
    assert "SUCCEEDED" in ran.stdout
    run_id = jqm.runs(package=name)[0].id

    shown = jqm_cli(backend, "runs", "show", str(run_id))
    assert "tests.record" in shown.stdout
    assert "tests.noop" in shown.stdout

    log = jqm_cli(backend, "log", "--run", str(run_id))
    assert log.stdout.count("attempt") == 2
    assert "run finished" in log.stdout

    held = jqm_cli(backend, "packages", "hold", name)
    assert f"{name}: ON_HOLD" in held.stdout


def test_the_log_filters_by_status(backend: Backend, worker: Worker, jqm: JobQueueManager, name: str) -> None:
    jqm.save(
        Package(
            name,
            entries=[Entry("tests.boom", args=["kaput"]), Entry("tests.noop", run_order=20)],
            on_error=OnError.CONTINUE,
        )
    )
    jqm.run_now(name).wait(timeout=60)

    errors = jqm_cli(backend, "log", "--package", name, "--status", "error")
    assert "ValueError: kaput" in errors.stdout
    assert "tests.noop" not in errors.stdout


def test_a_domain_error_prints_one_line_and_exits_1(backend: Backend, jqm: JobQueueManager) -> None:
    result = jqm_cli(backend, "packages", "show", "no-such-package")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: package 'no-such-package' does not exist"
    assert result.stdout == ""


def test_editing_an_active_package_from_the_command_line_is_refused(
    backend: Backend, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop")]))
    jqm.activate(name)
    result = jqm_cli(backend, "packages", "delete", name, "--yes")
    assert result.returncode == 1
    assert "put it on hold first" in result.stderr


def test_an_unknown_run_id_exits_1(backend: Backend, jqm: JobQueueManager) -> None:
    result = jqm_cli(backend, "runs", "show", "987654")
    assert result.returncode == 1
    assert "run 987654 does not exist" in result.stderr


@pytest.mark.parametrize(
    "args",
    [("packages", "frobnicate"), ("runs", "show", "not-a-number"), ("log", "--limit", "0")],
)
def test_a_usage_error_exits_2(backend: Backend, args: tuple[str, ...]) -> None:
    assert jqm_cli(backend, *args).returncode == 2


def test_an_app_that_cannot_be_imported_is_a_usage_error(backend: Backend) -> None:
    result = jqm_cli(backend, "--app", "no_such_module:app", "packages", "list")
    assert result.returncode == 2
    assert "cannot import module 'no_such_module'" in result.stderr


def test_waiting_for_a_run_that_failed_exits_3(
    backend: Backend, worker: Worker, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.boom", args=["kaput"])], on_error=OnError.CONTINUE))

    ran = jqm_cli(backend, "packages", "run", name, "--wait", "--timeout", "60")

    assert ran.returncode == 3, ran.stdout + ran.stderr
    assert "FAILED" in ran.stdout
    assert ran.stderr.strip().endswith("FAILED (exit code 3)")


def test_the_exit_codes_of_a_run_are_in_its_help(backend: Backend) -> None:
    helped = jqm_cli(backend, "packages", "run", "--help")
    assert "3 it FAILED" in " ".join(helped.stdout.split())


def test_show_canvas_prints_the_chain_a_package_runs_as(
    backend: Backend, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(
        Package(
            name,
            entries=[
                Entry("tests.noop", run_order=10),
                Entry("tests.boom", args=["kaput"], run_order=20),
                Entry("tests.noop", run_order=20),
            ],
        )
    )

    shown = jqm_cli(backend, "packages", "show", name, "--canvas")

    assert shown.returncode == 0, shown.stderr
    assert (
        shown.stdout
        == "chain(\n    tests.noop.si(),\n    group(tests.boom.si('kaput'), tests.noop.si()),\n)\n"
    )


def test_preview_lists_the_next_fire_times_in_utc_and_in_the_recurrences_zone(
    backend: Backend, jqm: JobQueueManager, name: str
) -> None:
    # 08:00 in Tokyo (no daylight saving time) is 23:00 UTC the evening before.
    jqm.save(
        Package(
            name, entries=[Entry("tests.noop")], recurrences=[Recurrence.cron("0 8 * * *", tz="Asia/Tokyo")]
        )
    )

    shown = jqm_cli(backend, "packages", "preview", name, "--count", "3")

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("23:00:00") == 3
    assert shown.stdout.count("08:00:00 JST") == 3
    assert f"{name} is DRAFT: these times apply once it is activated" in shown.stdout


def test_preview_of_a_package_without_recurrences_says_how_it_runs(
    backend: Backend, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop")]))

    shown = jqm_cli(backend, "packages", "preview", name)

    assert shown.returncode == 0, shown.stderr
    # One line, however long the name: piped output is not wrapped.
    assert (
        shown.stdout == f"{name} has no recurrences; it runs only when started (`jqm packages run {name}`)\n"
    )
