"""The README's example and ``jqm demo`` run for real."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import ROOT
from tests.integration.mailserver import free_port
from tests.processes import Process
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


def test_jqm_demo_says_up_front_that_its_run_ends_failed_on_purpose(demo_lines: Lines) -> None:
    lines = demo_lines
    intro = " ".join(text for _, text in lines[:4])
    assert "fails on purpose" in intro
    assert "the run ends FAILED: that is the intended outcome" in intro


def test_jqm_demo_prints_each_log_entry_as_it_happens_when_piped(demo_lines: Lines) -> None:
    lines = demo_lines
    (first_at,) = [at for at, text in lines if "run started" in text]
    (last_at,) = [at for at, text in lines if "run finished" in text]
    assert last_at - first_at > 1.0, "the log entries arrived all at once"


def test_jqm_demo_reports_within_seconds_of_the_runs_end(demo_lines: Lines) -> None:
    (finished_at,) = [at for at, text in demo_lines if "run finished" in text]
    (reported_at,) = [at for at, text in demo_lines if text.startswith("run #1 ended FAILED")]
    assert reported_at - finished_at < 3.5, "the demo went quiet after its run had ended"


def test_jqm_demo_ends_by_saying_where_to_look_next(demo_lines: Lines) -> None:
    text = "\n".join(text for _, text in demo_lines)
    ending = text[text.index("Where to look next") :]
    assert "jqm demo log" in ending
    assert "jqm demo web" in ending
    assert "pip install 'jqm-celery[web]'" in ending


def test_jqm_demo_log_prints_the_demos_log_again(demo_lines: Lines, demo_dir: Path) -> None:
    log = subprocess.run(
        [sys.executable, "-m", "jqm_celery.cli", "demo", "--data-dir", str(demo_dir), "log"],
        cwd=demo_dir.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert log.returncode == 0, log.stderr
    assert "archive volume is full" in log.stdout
    assert "upload_to_bank" in log.stdout


def test_jqm_demo_web_shows_the_demo_package_to_its_demo_user(demo_lines: Lines, demo_dir: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "jqm_celery.cli", "demo", "--data-dir", demo_dir, "web", "--port", port]
    with Process([str(part) for part in command], demo_dir.parent / "web.log", cwd=demo_dir.parent) as web:
        web.wait_for("Application startup complete")
        password = re.search(r"sign in as demo with the password (\S+)", web.log())
        assert password is not None, web.log()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            csrf = CSRF.search(client.get("/login").text)
            assert csrf is not None
            signed_in = client.post(
                "/login", data={"name": "demo", "password": password.group(1), "csrf": csrf.group(1)}
            )
            assert signed_in.status_code == 303, signed_in.text
            assert "demo-nightly-billing" in client.get("/packages").text


Lines = list[tuple[float, str]]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("piped-demo") / "demo"


@pytest.fixture(scope="module")
def demo_lines(demo_dir: Path) -> Lines:
    """``jqm demo``'s output lines, piped, each with the time it was read."""
    process = subprocess.Popen(
        [sys.executable, "-m", "jqm_celery.cli", "demo", "--data-dir", str(demo_dir)],
        cwd=demo_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = [(time.monotonic(), line.rstrip("\n")) for line in process.stdout]
    assert process.wait(120) == 0, "\n".join(text for _, text in lines)
    return lines


CSRF = re.compile(r'name="csrf" value="([^"]+)"')

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
        try:
            with Process(BILLING_COMMANDS[1].split(), tmp_path / "worker.log", cwd=folder, env=env) as worker:
                worker.wait_for(" ready.")
                example = run(BILLING_COMMANDS[2])
        finally:
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
