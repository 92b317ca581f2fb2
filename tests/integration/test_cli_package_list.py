"""``jqm packages list`` over 10,000 packages on PostgreSQL: one page, filtered, fast, as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from benchmarks.web import fill_packages
from jqm_celery import JobQueueManager, PackageStatus
from tests.integration.conftest import ROOT
from tests.integration.testapp import make_app
from tests.services import postgres_database

PACKAGES = 10_000


@pytest.fixture(scope="module")
def many_packages() -> Iterator[dict[str, object]]:
    """A PostgreSQL store with 10,000 packages (2 entries and a recurrence each, a third ACTIVE, one run)."""
    with postgres_database() as url:
        conf = {"jqm_database_url": url, "jqm_auto_migrate": True, "task_default_queue": "jqm-test-list"}
        JobQueueManager.of(make_app(conf)).upgrade_db()
        fill_packages(url, PACKAGES)
        yield conf


def _list(conf: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JQM_TEST_CONF": json.dumps(conf), "JQM_APP": "tests.integration.cliapp:app"}
    return subprocess.run(
        [sys.executable, "-m", "jqm_celery.cli", "packages", "list", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_list_shows_one_page_and_says_how_to_get_the_next(many_packages: dict[str, object]) -> None:
    listed = _list(many_packages, "--limit", "20", "--page", "3")
    assert listed.returncode == 0, listed.stderr
    assert "pkg-00041" in listed.stdout
    assert "pkg-00060" in listed.stdout
    assert "pkg-00061" not in listed.stdout
    assert "packages 41–60 of 10000; next page: --page 4" in listed.stdout


def test_the_list_filters_by_status_and_name(many_packages: dict[str, object]) -> None:
    listed = _list(many_packages, "--status", "active", "--name", "pkg-0999")
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if "pkg-0" in line]
    assert rows
    assert all("ACTIVE" in row for row in rows)
    assert "packages 1–4 of 4" in listed.stdout  # ACTIVE among 9990…9999: 9990, 9993, 9996, 9999


def test_a_page_of_the_list_takes_well_under_a_second_at_10000_packages(
    many_packages: dict[str, object],
) -> None:
    jqm = JobQueueManager.of(make_app(dict(many_packages)))
    jqm.package_list(limit=50)  # connect once
    started = time.perf_counter()
    page = jqm.package_list(status=PackageStatus.ACTIVE, limit=50, offset=3000)
    elapsed_s = time.perf_counter() - started
    assert page.total == PACKAGES // 3
    assert len(page.packages) == 50
    assert elapsed_s < 0.5, f"one page of the package list took {elapsed_s:.3f} s"


def test_the_whole_command_answers_within_a_few_seconds(many_packages: dict[str, object]) -> None:
    started = time.perf_counter()
    listed = _list(many_packages)
    elapsed_s = time.perf_counter() - started
    assert listed.returncode == 0, listed.stderr
    assert elapsed_s < 10, f"`jqm packages list` took {elapsed_s:.1f} s"
