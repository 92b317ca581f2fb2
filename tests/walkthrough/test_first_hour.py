"""A Celery user's first hour, as real processes: their own project folder and Celery app on Redis or
RabbitMQ and PostgreSQL, ``jqm db upgrade``, ``jqm worker``, Flower, a package with a mail rule and a
failing entry, ``jqm packages run --wait`` from a script.

Everything runs from the user's venv (see conftest.py) in the project folder, with no PYTHONPATH: only
what the README tells a user to install and type.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from celery import Celery

from tests.integration.mailserver import MailServer, free_port
from tests.processes import Process, wait_until
from tests.services import RABBITMQ_URL, REDIS_WALKTHROUGH_DB, postgres_database, redis_url, require

pytestmark = [pytest.mark.walkthrough, pytest.mark.timeout(600)]

PACKAGE = "nightly-billing"
OPS = "ops@myproj.example"

MYPROJ = """
import os

from celery import Celery, chain

from jqm_celery import JobError, JobQueueManager, Notify, OnError, Package, Scenario

app = Celery("myproj", broker=os.environ["MYPROJ_BROKER_URL"])
app.conf.task_default_queue = os.environ["MYPROJ_QUEUE"]
app.conf.jqm_notification_queue = os.environ["MYPROJ_QUEUE"] + ".notifications"
app.conf.jqm_database_url = os.environ["MYPROJ_DATABASE_URL"]
app.conf.jqm_smtp_url = os.environ["MYPROJ_SMTP_URL"]
app.conf.jqm_mail_from = "jqm@myproj.example"
jqm = JobQueueManager(app)


@app.task(name="myproj.export_invoices")
def export_invoices(region: str) -> int:
    return 128


@app.task(name="myproj.upload_to_bank")
def upload_to_bank(batch: int) -> None:
    raise JobError(f"the bank refused batch {batch}")


@app.task(name="myproj.ping")
def ping() -> str:
    return "pong"


NIGHTLY = Package.from_canvas(
    "nightly-billing",
    chain(export_invoices.si(region="eu"), upload_to_bank.si(7)),
    on_error=OnError.CONTINUE,
    notifications=[Notify("ops@myproj.example", on={Scenario.RUN_FAILED})],
)
"""

SETUP = """
from myproj import NIGHTLY, jqm

jqm.save(NIGHTLY)
print(jqm.activate(NIGHTLY.name).status)
"""


@dataclass
class Walk:
    """What the user saw at each step."""

    broker: str
    upgrade: subprocess.CompletedProcess[str]
    setup: subprocess.CompletedProcess[str]
    run: subprocess.CompletedProcess[str]
    mails: list[EmailMessage] = field(default_factory=list)
    flower_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)


class Project:
    """The user's project folder, and the commands they type in it (from their venv's bin folder)."""

    def __init__(self, folder: Path, bin_dir: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.bin = bin_dir
        self.env = env

    def run(self, *command: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / command[0]), *command[1:]],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, log_name: str, *command: str, env: dict[str, str] | None = None) -> Process:
        return Process(
            [self.bin / command[0], *command[1:]],
            self.folder / log_name,
            cwd=self.folder,
            env={**self.env, **(env or {})},
        )


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _flower_get(url: str) -> Any:
    try:
        return _get(url)
    except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
        return None


def _user_env(bin_dir: Path, **values: str) -> dict[str, str]:
    """The user's shell: their venv first on PATH, nothing of the test run's Python set-up."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JQM_APP", "VIRTUAL_ENV")}
    return {**inherited, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **values}


def _broker_url(broker: str) -> str:
    if broker == "redis":
        require("redis")
        return redis_url(REDIS_WALKTHROUGH_DB)
    require("rabbitmq")
    return RABBITMQ_URL


def _clear(broker_url: str, queues: list[str]) -> None:
    app = Celery("walkthrough-cleanup", broker=broker_url, set_as_current=False)
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in queues:
            with suppress(Exception):  # a queue that was never declared has nothing to delete
                channel.queue_delete(queue)


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def walk(
    request: pytest.FixtureRequest, user_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Walk]:
    broker = str(request.param)
    broker_url = _broker_url(broker)
    queue = f"jqm-walk-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp(f"myproj-{broker}")
    (folder / "myproj.py").write_text(textwrap.dedent(MYPROJ).lstrip())
    (folder / "setup_packages.py").write_text(textwrap.dedent(SETUP).lstrip())
    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_database())
        mail = MailServer().start()
        stack.callback(mail.stop)
        stack.callback(_clear, broker_url, [queue, f"{queue}.notifications"])
        env = _user_env(
            user_venv,
            MYPROJ_BROKER_URL=broker_url,
            MYPROJ_QUEUE=queue,
            MYPROJ_DATABASE_URL=database_url,
            MYPROJ_SMTP_URL=mail.url,
        )
        project = Project(folder, user_venv, env)

        upgrade = project.run("jqm", "--app", "myproj:app", "db", "upgrade")
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
        setup = project.run("python", "setup_packages.py")
        assert setup.returncode == 0, setup.stdout + setup.stderr

        worker = stack.enter_context(project.start("worker.log", "jqm", "--app", "myproj:app", "worker"))
        worker.wait_for(" ready.")
        port = free_port()
        flower = f"http://127.0.0.1:{port}"
        flower_process = project.start(
            "flower.log",
            "celery",
            "-A",
            "myproj",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
            env={"FLOWER_UNAUTHENTICATED_API": "true"},
        )
        stack.enter_context(flower_process)
        wait_until(lambda: _flower_get(f"{flower}/api/workers"), 60, "flower did not answer", flower_process)
        _wait_until_flower_sees_events(broker_url, queue, flower, flower_process)

        run = project.run(
            "jqm", "--app", "myproj:app", "packages", "run", PACKAGE, "--wait", "--timeout", "120"
        )
        walked = Walk(broker, upgrade, setup, run)
        walked.mails = cast(
            list[EmailMessage], wait_until(lambda: mail.inbox.to(OPS), 60, f"no mail reached {OPS}", worker)
        )
        walked.flower_jobs = cast(
            dict[str, dict[str, Any]],
            wait_until(
                lambda: _finished_jobs(flower, queue),
                30,
                "flower never showed both jobs finished",
                flower_process,
            ),
        )
        yield walked


def _wait_until_flower_sees_events(broker_url: str, queue: str, flower: str, process: Process) -> None:
    """Flower's HTTP server answers before its event receiver listens: send pings until one shows."""
    sender = Celery("walkthrough-probe", broker=broker_url, set_as_current=False)

    def seen() -> bool:
        probe = sender.send_task("myproj.ping", queue=queue)
        for _ in range(15):
            if _flower_get(f"{flower}/api/task/info/{probe.id}"):
                return True
            time.sleep(0.2)
        return False

    wait_until(seen, 60, "flower never saw a task event", process)


def _finished_jobs(flower: str, queue: str) -> dict[str, dict[str, Any]] | None:
    """The package's jobs that this walk's worker ran (on RabbitMQ, Flower also sees other apps' events)."""
    query = urllib.parse.urlencode({"search": f"kwargs:package={PACKAGE}"})
    tasks = _flower_get(f"{flower}/api/tasks?{query}") or {}
    ours = [task for task in tasks.values() if str(task.get("worker") or "").startswith(f"{queue}@")]
    jobs = {str(task["name"]): task for task in ours}
    done = len(jobs) == 2 and all(task.get("state") in ("SUCCESS", "FAILURE") for task in jobs.values())
    return jobs if done else None


def test_db_upgrade_from_the_project_folder_migrates_the_apps_store(walk: Walk) -> None:
    assert "migrated from an empty database to revision" in walk.upgrade.stdout
    assert walk.setup.stdout.strip() == "ACTIVE"


def test_a_run_that_failed_exits_3_from_the_script(walk: Walk) -> None:
    assert walk.run.returncode == 3, walk.run.stdout + walk.run.stderr
    assert "FAILED" in walk.run.stdout
    assert "the bank refused batch 7" in walk.run.stdout


def test_the_failure_mail_arrives_through_jqm_worker(walk: Walk) -> None:
    (mail,) = walk.mails
    assert PACKAGE in str(mail["Subject"])
    assert "failed" in str(mail["Subject"]).lower()


def test_flower_shows_every_job_of_the_run_under_the_package_name(walk: Walk) -> None:
    assert set(walk.flower_jobs) == {
        f"{PACKAGE} › myproj.export_invoices",
        f"{PACKAGE} › myproj.upload_to_bank",
    }


def test_flower_shows_the_failed_job_as_a_failure(walk: Walk) -> None:
    assert walk.flower_jobs[f"{PACKAGE} › myproj.upload_to_bank"]["state"] == "FAILURE"


def test_jqm_web_without_the_web_extra_says_what_to_install(user_venv: Path, tmp_path: Path) -> None:
    web = subprocess.run(
        [str(user_venv / "jqm"), "web"],
        cwd=tmp_path,
        env=_user_env(user_venv),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert web.returncode == 1
    (line,) = web.stderr.strip().splitlines()
    assert "pip install 'jqm-celery[web]'" in line


def test_the_quick_start_demo_runs_from_a_fresh_checkout(user_venv: Path, tmp_path: Path) -> None:
    checkout = user_venv.parents[1] / "jqm-celery"  # the copy the venv was installed from (conftest.py)

    demo = subprocess.run(
        [str(user_venv / "jqm"), "demo", "--data-dir", str(tmp_path / "demo")],
        cwd=checkout,
        env=_user_env(user_venv),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Where to look next" in demo.stdout
