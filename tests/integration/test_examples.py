"""The README's example and ``jqm demo`` run for real."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.conftest import ROOT
from tests.services import REDIS_EXAMPLES_DB, postgres_database, redis_url, require


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


BILLING_COMMANDS = (
    "jqm --app billing:app db upgrade",
    "jqm --app billing:app worker",
    "python billing.py",
)


def test_the_billing_example_runs_as_its_docstring_says_on_redis_and_postgresql(tmp_path: Path) -> None:
    require("redis")
    import redis

    folder = ROOT / "examples"
    docstring = ast.get_docstring(ast.parse((folder / "billing.py").read_text())) or ""
    for command in (*BILLING_COMMANDS, "pip install 'jqm-celery[redis,postgres]'", "createdb"):
        assert command in docstring, command
    bin_dir = Path(sys.executable).parent
    broker = redis_url(REDIS_EXAMPLES_DB)
    redis.Redis.from_url(broker).flushdb()
    with postgres_database() as database_url:
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("JQM_APP", "PYTHONPATH")},
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "BILLING_BROKER_URL": broker,
            "BILLING_DATABASE_URL": database_url,
        }

        def run(command: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                command.split(), cwd=folder, env=env, capture_output=True, text=True, timeout=120
            )

        upgrade = run(BILLING_COMMANDS[0])
        assert upgrade.returncode == 0, upgrade.stderr
        assert "migrated from an empty database" in upgrade.stdout
        log_path = tmp_path / "worker.log"
        with log_path.open("w") as log:
            worker = subprocess.Popen(
                BILLING_COMMANDS[1].split(),
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 60
            while " ready." not in log_path.read_text():
                assert worker.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the worker did not start in 60 s"
                time.sleep(0.1)
            example = run(BILLING_COMMANDS[2])
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
            redis.Redis.from_url(broker).flushdb()

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
