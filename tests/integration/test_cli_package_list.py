"""``jqm packages list`` over 10,000 packages on PostgreSQL: one page, filtered, fast, as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    """A PostgreSQL store with 10,000 packages (2 entries and a recurrence each, every fourth ACTIVE, one
    run each): the web benchmark's fill."""
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
    assert "packages 1–2 of 2" in listed.stdout  # ACTIVE among 9990…9999: 9992, 9996


def test_a_filtered_page_deep_in_the_list_holds_the_page_size_and_counts_the_whole_filter(
    many_packages: dict[str, object],
) -> None:
    jqm = JobQueueManager.of(make_app(dict(many_packages)))
    page = jqm.package_list(status=PackageStatus.ACTIVE, limit=50, offset=2000)
    assert page.total == PACKAGES // 4
    assert [p.name for p in page.packages] == [f"pkg-{4 * i:05d}" for i in range(2001, 2051)]
