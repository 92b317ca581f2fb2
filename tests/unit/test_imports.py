"""A worker or beat imports what it runs: not the web UI, the CLI, rich, Alembic or Django.

Each check runs in a fresh interpreter (``sys.modules`` of this one holds whatever other tests imported)
and compares with what Celery itself imports for a worker and beat (Celery brings click; kombu brings a
piece of Django when it is installed), so only what jqm adds is judged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

import jqm_celery
from jqm_celery.store import migrate

# The subprocess imports the jqm_celery this process tests, wherever it runs from.
_SOURCE = str(Path(jqm_celery.__file__).resolve().parents[1])
FORBIDDEN = {"fastapi", "starlette", "jinja2", "click", "rich", "alembic", "mako", "django", "smtplib"}

# What `celery worker` and `celery beat` import on their own, before the user's app is loaded.
_CELERY_ITSELF = """
import sys
from celery import Celery
import celery.bin.celery, celery.apps.worker, celery.apps.beat, celery.beat, celery.app.trace
import kombu.serialization
before = set(sys.modules)
"""
_REPORT = """
import json
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def added_modules(code: str, cwd: Path) -> set[str]:
    """The top-level packages a snippet imports beyond what Celery's worker and beat import themselves."""
    return {name.split(".", 1)[0] for name in loaded_modules(code, cwd)}


def loaded_modules(code: str, cwd: Path) -> set[str]:
    """The modules a snippet imports beyond what Celery's worker and beat import themselves."""
    return set(reported(_CELERY_ITSELF + code + _REPORT, cwd))


def reported(code: str, cwd: Path) -> Any:
    """What a snippet, run in a fresh interpreter in ``cwd``, printed as JSON on its last line."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([_SOURCE, os.environ.get("PYTHONPATH", "")])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_worker_and_beat_import_neither_the_web_ui_the_cli_alembic_nor_django(tmp_path: Path) -> None:
    # The app module as a worker imports it, then beat's scheduler; the store is at the newest revision
    # (migrated beforehand), so opening it must not load Alembic either.
    url = f"sqlite:///{tmp_path / 'jqm.sqlite'}"
    migrate.upgrade(create_engine(url))
    added = added_modules(
        f"""
from jqm_celery import Entry, JobQueueManager, Package
app = Celery("proj", broker="memory://")
app.conf.jqm_database_url = {url!r}

@app.task(name="proj.noop")
def noop():
    return None

jqm = JobQueueManager(app)
jqm.save(Package("nightly", entries=[Entry("proj.noop")]))
jqm.packages()
import beat_schedules
""",
        tmp_path,
    )
    assert "jqm_celery" in added
    assert sorted(added & FORBIDDEN) == []


def test_an_app_on_a_postgresql_store_does_not_load_sqlite(tmp_path: Path) -> None:
    # What a worker's pool process runs, on PostgreSQL: the store's engine is made, nothing connects.
    added = added_modules(
        """
from jqm_celery import JobQueueManager
import jqm_celery.tasks, jqm_celery.runtime, jqm_celery.store.writers
app = Celery("proj", broker="memory://")
app.conf.jqm_database_url = "postgresql+psycopg://jqm@127.0.0.1:1/never_connected"
jqm = JobQueueManager(app)
jqm._store.engine
""",
        tmp_path,
    )
    assert {"jqm_celery", "sqlalchemy", "psycopg"} <= added
    assert sorted(added & {"sqlite3", "_sqlite3"}) == []


def test_importing_the_package_imports_none_of_its_modules(tmp_path: Path) -> None:
    added = added_modules("import jqm_celery", tmp_path)
    assert added == {"jqm_celery"}


def test_every_public_name_resolves_and_an_unknown_one_is_an_attribute_error() -> None:
    for name in jqm_celery.__all__:
        assert getattr(jqm_celery, name).__name__ == name
    assert set(jqm_celery.__all__) <= set(dir(jqm_celery))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = jqm_celery.Nope  # type: ignore[attr-defined]


def test_the_head_revision_the_store_checks_against_is_alembics_head() -> None:
    # A new migration must move HEAD_REVISION too, or stores would be taken as up to date without it.
    assert migrate.head_revision(create_engine("sqlite://")) == migrate.HEAD_REVISION


#: What a worker or beat run by the ``jqm`` command must not load either (the command itself is click's).
_NOT_IN_A_COMMAND = FORBIDDEN - {"click"}


@pytest.mark.parametrize(
    ("args", "module"),
    [
        # `jqm worker --queue NAME` runs its Celery worker in the CLI's process, and every pool process
        # holds what that process loaded; --dry-run stops where the worker would start.
        (["worker", "--dry-run"], "worker"),
        # `jqm beat` runs Celery beat in the CLI's process; --help parses the command line as a run does.
        (["beat", "--help"], "beat"),
    ],
)
def test_a_worker_or_beat_run_by_jqm_loads_neither_rich_nor_the_other_commands(
    tmp_path: Path, args: list[str], module: str
) -> None:
    # The bare app's store (./jqm.sqlite) is at the newest revision, as at every start but the first.
    migrate.upgrade(create_engine(f"sqlite:///{tmp_path / 'jqm.sqlite'}"))
    loaded = loaded_modules(
        f"from jqm_celery.cli import cli\ncli.main({args!r}, standalone_mode=False)\n", tmp_path
    )
    commands = sorted(name for name in loaded if name.startswith("jqm_celery.cli."))
    assert commands == sorted(f"jqm_celery.cli.{name}" for name in ("base", "database", module))
    assert sorted({name.split(".", 1)[0] for name in loaded} & _NOT_IN_A_COMMAND) == []


_COMMAND_TREE = """
import json, pkgutil, importlib, sys
import click

def fresh_cli():
    # The CLI as a new process has it: its modules imported anew, none of them attached yet.
    for name in [m for m in sys.modules if m == "jqm_celery.cli" or m.startswith("jqm_celery.cli.")]:
        del sys.modules[name]
    return importlib.import_module("jqm_celery.cli").cli

def tree(command, ctx):
    if not isinstance(command, click.Group):
        return None
    found = {}
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        found[name] = tree(sub, click.Context(sub, parent=ctx))
    return found

lazily = {}
for name in fresh_cli().list_commands(None):
    cli = fresh_cli()
    command = cli.get_command(click.Context(cli), name)
    lazily[name] = None if command is None else tree(command, click.Context(command))
cli = fresh_cli()
for module in pkgutil.iter_modules(importlib.import_module("jqm_celery.cli").__path__):
    if module.name != "__main__":
        imported = importlib.import_module(f"jqm_celery.cli.{module.name}")
        if hasattr(imported, "register"):
            imported.register(cli)
print(json.dumps([lazily, tree(cli, click.Context(cli))]))
"""


def test_each_command_is_found_with_every_subcommand_when_it_is_asked_for(tmp_path: Path) -> None:
    # A command module that attaches a subcommand to another module's group must be imported with it
    # (``cli.base.COMMANDS``): the tree found command by command is the tree with every module imported.
    lazily, everything = reported(_COMMAND_TREE, tmp_path)
    assert lazily == everything
    assert {"preview", "run"} <= set(lazily["packages"])
    assert {"clean", "cancel"} <= set(lazily["runs"])
