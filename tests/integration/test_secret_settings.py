"""Celery's own tools print the configuration with jqm's secret settings masked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.mailserver import free_port
from tests.processes import Process, wait_until
from tests.services import REDIS_BROKER_DB, redis_url, require

PASSWORD = "hunter2-smtp-password"
DATABASE_PASSWORD = "db-password-42"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("redis")
    folder = tmp_path_factory.mktemp("secretproj")
    queue = f"jqm-secret-{uuid.uuid4().hex[:8]}"
    (folder / "secretproj.py").write_text(
        textwrap.dedent(
            f"""
            from celery import Celery
            from jqm_celery import JobQueueManager

            app = Celery("secretproj", broker={redis_url(REDIS_BROKER_DB)!r})
            app.conf.task_default_queue = {queue!r}
            app.conf.jqm_database_url = "sqlite:///{folder / "jqm.sqlite"}"
            app.conf.jqm_auto_migrate = True
            app.conf.jqm_smtp_url = "smtp://mailer:{PASSWORD}@127.0.0.1:2525"
            app.conf.jqm_mail_from = "jqm@example.com"
            app.conf.jqm_web_secret = "{DATABASE_PASSWORD}"
            jqm = JobQueueManager(app)
            """
        )
    )
    return folder


def _env(project: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), os.getcwd()])}


def _celery(project: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "secretproj", *args],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def worker(project: Path) -> Iterator[str]:
    name = f"secret-{uuid.uuid4().hex[:6]}@localhost"
    command = [sys.executable, "-m", "celery", "-A", "secretproj", "worker", "-n", name, "--pool=solo"]
    command += ["--without-mingle", "--without-gossip", "--loglevel=INFO"]
    with Process(command, project / "worker.log", cwd=project, env=_env(project)) as process:
        process.wait_for(" ready.")
        yield name


def test_celery_inspect_conf_masks_the_smtp_password(project: Path, worker: str) -> None:
    printed = _celery(project, "inspect", "conf", "-d", worker, "--timeout", "10", "--json")

    assert "jqm_smtp_url" in printed
    assert PASSWORD not in printed
    assert DATABASE_PASSWORD not in printed


def test_celery_report_masks_the_smtp_password(project: Path) -> None:
    printed = _celery(project, "report")

    assert "jqm_smtp_url: '********'" in printed
    assert PASSWORD not in printed


def test_flowers_worker_page_masks_the_smtp_password(project: Path, worker: str) -> None:
    port = free_port()
    command = [sys.executable, "-m", "celery", "-A", "secretproj", "flower", f"--port={port}"]
    env = {**_env(project), "FLOWER_UNAUTHENTICATED_API": "true"}
    with Process([*command, "--address=127.0.0.1"], project / "flower.log", cwd=project, env=env) as flower:
        flower.wait_for("Visit me at")
        url = f"http://127.0.0.1:{port}/api/workers?refresh=1&workername={worker}"
        # The data of Flower's worker page, configuration included, once the worker has answered.
        conf = wait_until(lambda: _worker_conf(url, worker), 30, "flower never showed the worker", flower)

    assert "jqm_smtp_url" in conf
    assert PASSWORD not in conf


def _worker_conf(url: str, worker: str) -> str:
    with urllib.request.urlopen(url, timeout=15) as response:
        conf = json.loads(response.read()).get(worker, {}).get("conf")
    return json.dumps(conf) if conf else ""
