"""The ``jqm`` command as a user runs it from their own project folder: the installed script, a process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.processes import Process
from tests.services import POSTGRES_ADMIN_URL, POSTGRES_DATABASE_PREFIX, postgres_database, require

JQM = str(Path(sys.executable).with_name("jqm"))


def project(folder: Path, database_url: str) -> Path:
    """A user's project folder with its own ``myproj.py`` Celery app on the given store."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "myproj.py").write_text(
        textwrap.dedent(
            f"""
            from celery import Celery
            from jqm_celery import JobQueueManager

            app = Celery("myproj", broker="memory://")
            app.conf.jqm_database_url = {database_url!r}
            jqm = JobQueueManager(app)


            @app.task(name="myproj.hello")
            def hello() -> str:
                return "hello"
            """
        )
    )
    return folder


def jqm(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JQM, *args], cwd=folder, capture_output=True, text=True, timeout=120, env=_env_without_jqm_app()
    )


def _env_without_jqm_app() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("JQM_APP", "PYTHONPATH")}


def test_the_app_module_is_found_in_the_folder_jqm_runs_from(tmp_path: Path) -> None:
    folder = project(tmp_path / "myproj", f"sqlite:///{tmp_path / 'store.sqlite'}")

    listed = jqm(folder, "--app", "myproj:app", "packages", "list")

    assert listed.returncode == 0, listed.stderr
    assert "no packages" in listed.stdout


def test_db_upgrade_migrates_the_apps_store_and_says_which(tmp_path: Path) -> None:
    with postgres_database() as url:
        folder = project(tmp_path / "myproj", url)

        upgraded = jqm(folder, "--app", "myproj:app", "db", "upgrade")

        assert upgraded.returncode == 0, upgraded.stderr
        assert "migrated from an empty database to revision" in upgraded.stdout
        assert url.rsplit("/", 1)[1] in upgraded.stdout


def test_a_database_that_does_not_exist_is_one_line_with_the_command_that_creates_it(tmp_path: Path) -> None:
    require("postgresql")
    missing = f"{POSTGRES_DATABASE_PREFIX}missing_{uuid.uuid4().hex[:8]}"
    admin = POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://")
    url = admin.rsplit("/", 1)[0].replace("postgres@", "postgres:secret@", 1) + f"/{missing}"
    folder = project(tmp_path / "myproj", url)

    upgraded = jqm(folder, "--app", "myproj:app", "db", "upgrade")

    assert upgraded.returncode == 1
    assert upgraded.stdout == ""
    (line,) = upgraded.stderr.strip().splitlines()
    assert f'database "{missing}" does not exist' in line
    assert "secret" not in line
    assert "(createdb -h 127.0.0.1 " in line
    assert f"-U postgres {missing})" in line
    assert "then run `jqm --app myproj:app db upgrade`" in line


def test_a_database_server_that_is_down_is_one_line(tmp_path: Path) -> None:
    folder = project(tmp_path / "myproj", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")

    listed = jqm(folder, "--app", "myproj:app", "packages", "list")

    assert listed.returncode == 1
    (line,) = listed.stderr.strip().splitlines()
    assert "postgresql+psycopg://postgres@127.0.0.1:1/nowhere" in line
    assert "is the database server running" in line


def test_a_store_that_is_not_migrated_names_the_upgrade_command_for_this_app(tmp_path: Path) -> None:
    with postgres_database() as url:
        folder = project(tmp_path / "myproj", url)

        listed = jqm(folder, "--app", "myproj:app", "packages", "list")

        assert listed.returncode == 1
        (line,) = listed.stderr.strip().splitlines()
        assert "run `jqm --app myproj:app db upgrade`" in line


def test_db_upgrade_without_an_app_is_refused_instead_of_creating_a_new_store(tmp_path: Path) -> None:
    upgraded = jqm(tmp_path, "db", "upgrade")

    assert upgraded.returncode == 2
    assert "jqm --app MODULE:ATTR db upgrade" in upgraded.stderr
    assert not (tmp_path / "jqm.sqlite").exists()


def test_users_are_added_and_listed_as_a_process(tmp_path: Path) -> None:
    folder = project(tmp_path / "myproj", f"sqlite:///{tmp_path / 'store.sqlite'}")
    added = subprocess.run(
        [JQM, "--app", "myproj:app", "users", "add", "ann", "--role", "admin", "--password-stdin"],
        cwd=folder,
        input="a long enough password\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=_env_without_jqm_app(),
    )
    assert added.returncode == 0, added.stderr

    listed = jqm(folder, "--app", "myproj:app", "users", "list")

    assert listed.returncode == 0, listed.stderr
    assert "ann" in listed.stdout


def test_notifications_are_listed_and_a_test_without_rules_is_one_line(tmp_path: Path) -> None:
    folder = project(tmp_path / "myproj", f"sqlite:///{tmp_path / 'store.sqlite'}")
    (folder / "save.py").write_text(
        "from jqm_celery import Entry, Package\nfrom myproj import jqm\n"
        "jqm.save(Package('quiet', entries=[Entry('myproj.hello')]))\n"
    )
    saved = subprocess.run(
        [sys.executable, "save.py"], cwd=folder, capture_output=True, timeout=60, env=_env_without_jqm_app()
    )
    assert saved.returncode == 0, saved.stderr

    listed = jqm(folder, "--app", "myproj:app", "notifications", "list")
    tested = jqm(folder, "--app", "myproj:app", "notifications", "test", "quiet")

    assert listed.returncode == 0, listed.stderr
    assert "scenario" in listed.stdout
    assert tested.returncode == 1
    assert tested.stderr.strip() == (
        "error: package 'quiet' has no notification rules; add notifications=[Notify(...)] to it"
    )


def test_beat_at_celerys_default_log_level_says_which_run_it_started(tmp_path: Path) -> None:
    folder = project(tmp_path / "myproj", f"sqlite:///{tmp_path / 'store.sqlite'}")
    (folder / "activate.py").write_text(ACTIVATE_OFTEN)
    activated = subprocess.run(
        [sys.executable, "activate.py"],
        cwd=folder,
        capture_output=True,
        timeout=60,
        env=_env_without_jqm_app(),
    )
    assert activated.returncode == 0, activated.stderr
    beat = Process(
        [JQM, "--app", "myproj:app", "beat", "--loglevel", "WARNING"],
        tmp_path / "beat.log",
        cwd=folder,
        env=_env_without_jqm_app(),
    )
    with beat:
        beat.wait_for("beat: started run #1 of 'often'")


ACTIVATE_OFTEN = """
from datetime import timedelta

from jqm_celery import Entry, Package, Recurrence
from myproj import jqm

every_2_s = Recurrence.every(timedelta(seconds=2))
often = Package("often", entries=[Entry("myproj.hello")], recurrences=[every_2_s])
jqm.save(often)
jqm.activate("often")
"""


@pytest.mark.parametrize(
    "group", ["packages", "runs", "log", "db", "jobs", "queues", "notifications", "worker"]
)
def test_every_command_group_answers_help_as_a_process(tmp_path: Path, group: str) -> None:
    helped = jqm(tmp_path, group, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "Usage: jqm" in helped.stdout
