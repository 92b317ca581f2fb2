"""The README's example and ``jqm demo`` run for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.conftest import ROOT
from tests.services import REDIS_URL, postgres_database, require


def test_jqm_demo_runs_the_example_package_on_sqlite_files_only(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jqm_celery.cli", "demo", "--data-dir", str(tmp_path / "demo")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "upload_to_bank failed once and was retried" in result.stdout
    assert "unexpected" not in result.stdout
    assert (tmp_path / "demo" / "jqm.sqlite").exists()
    assert (tmp_path / "demo" / "broker.sqlite").exists()


def test_the_billing_example_runs_against_a_worker_on_redis_and_postgresql(tmp_path: Path) -> None:
    require("redis")
    import redis

    with postgres_database() as database_url:
        env = {**os.environ, "BILLING_BROKER_URL": f"{REDIS_URL}/2", "BILLING_DATABASE_URL": database_url}
        redis.Redis.from_url(f"{REDIS_URL}/2").flushdb()
        upgrade = subprocess.run(
            [
                sys.executable,
                "-m",
                "jqm_celery.cli",
                "--app",
                "jqm_celery.examples.billing:app",
                "db",
                "upgrade",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert upgrade.returncode == 0, upgrade.stderr
        assert "migrated from an empty database" in upgrade.stdout
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "jqm_celery.examples.billing",
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while " ready." not in (tmp_path / "worker.log").read_text():
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, "the worker did not start in 60 s"
                time.sleep(0.1)
            example = subprocess.run(
                [sys.executable, "-m", "jqm_celery.examples.billing"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            worker.terminate()
            worker.wait(30)
            redis.Redis.from_url(f"{REDIS_URL}/2").flushdb()

    assert example.returncode == 0, example.stderr
    assert re.search(r"run \d+: SUCCEEDED", example.stdout)
    for task in (
        "billing.export_invoices",
        "billing.upload_to_bank",
        "billing.notify_finance",
        "billing.mark_paid",
    ):
        assert f"{task} DONE 0 None" in example.stdout


def test_the_readme_shows_the_billing_example_and_its_two_set_up_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / "examples" / "billing.py").read_text()
    assert "pip install . && jqm demo" in readme
    test_command = "pip install -e '.[test]' && pytest"
    assert test_command in readme
    assert test_command in (ROOT / ".ci" / "run").read_text()
    for line in (
        'Entry("billing.export_invoices", kwargs={"region": "eu"}, run_order=10)',
        'Entry("billing.mark_paid", run_order=30)',
        "on_error=OnError.STOP",
        'jqm.activate("nightly-billing")',
        "run = run.wait(timeout=60)",
        'for log in jqm.log_entries(package="nightly-billing"):',
        'jqm.hold("nightly-billing")',
    ):
        assert line in readme, line
        assert line.split("  #")[0].strip() in example, line
