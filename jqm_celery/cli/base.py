"""The root ``jqm`` group, how it finds the user's app, and how domain errors become exit code 1."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from celery import Celery
from click.core import ParameterSource
from sqlalchemy.exc import DBAPIError

from jqm_celery.cli import database
from jqm_celery.errors import JQMError
from jqm_celery.manager import JobQueueManager
from jqm_celery.storable import MAX_COLUMN_INT

if TYPE_CHECKING:
    from rich.console import Console

APP_HELP = (
    "Your Celery app as 'module:attribute' (a Celery app or a JobQueueManager); also read from JQM_APP. "
    "Without it, jqm uses a bare app on the SQLite store ./jqm.sqlite."
)


@dataclass
class CliContext:
    app_path: str | None
    _jqm: JobQueueManager | None = None
    _console: Console | None = field(default=None, repr=False)

    @property
    def jqm(self) -> JobQueueManager:
        if self._jqm is None:
            self._jqm = load_manager(self.app_path)
        return self._jqm

    @property
    def console(self) -> Console:
        """Where a command prints its tables; made on first use, so ``jqm worker`` never loads rich."""
        if self._console is None:
            self._console = _console()
        return self._console


def _console() -> Console:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        # Piped or captured output keeps whole rows instead of wrapping at 80 columns, and a line of text
        # stays one line however long (what grep and scripts read).
        console.width = 200
        console.soft_wrap = True
    return console


def load_manager(app_path: str | None) -> JobQueueManager:
    if not app_path:
        return JobQueueManager(Celery("jqm"))
    module_name, _, attribute = app_path.partition(":")
    _project_folder_on_path()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.UsageError(
            f"--app {app_path!r}: cannot import module '{module_name}' ({exc}); run jqm from your project's "
            "folder or put it on PYTHONPATH"
        ) from None
    target: Any = getattr(module, attribute or "app", None)
    if target is None:
        raise click.UsageError(
            f"--app {app_path!r}: module '{module_name}' has no attribute '{attribute or 'app'}'"
        )
    if isinstance(target, JobQueueManager):
        return target
    if isinstance(target, Celery):
        return JobQueueManager.of(target)
    raise click.UsageError(
        f"--app {app_path!r} is a {type(target).__name__}, not a Celery app or a JobQueueManager"
    )


def _project_folder_on_path() -> None:
    # As `celery -A` does: the user's module sits in the folder they run the command from.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


#: Each command of ``jqm`` and the module of ``jqm_celery.cli`` that attaches it (its ``register``). A
#: module is imported when one of its commands is asked for, so a process runs with only what its command
#: needs: a worker started by ``jqm worker`` holds neither the other commands nor rich.
COMMANDS: dict[str, str] = {
    "audit": "jobs",
    "beat": "beat",
    "db": "db",
    "demo": "demo",
    "jobs": "jobs",
    "log": "log",
    "notifications": "notifications",
    "packages": "packages",
    "queues": "jobs",
    "runs": "runs",
    "users": "web",
    "web": "web",
    "worker": "worker",
}


class JQMGroup(click.Group):
    """Attaches each command when it is asked for (``COMMANDS``); turns a JQMError or a database error into
    a one-line message on stderr and exit code 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"jqm_celery.cli.{COMMANDS[cmd_name]}").register(self)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JQMError as exc:
            click.echo(f"error: {_with_app(str(exc), ctx)}", err=True)
            sys.exit(1)
        except DBAPIError as exc:
            cli = ctx.find_object(CliContext)
            url = cli.jqm.settings.database_url if cli is not None and cli._jqm is not None else None
            click.echo(f"error: {database.describe(exc, url, _app_option(ctx))}", err=True)
            sys.exit(1)


def _app_option(ctx: click.Context) -> str:
    """`` --app proj:app`` when the user named the app with the option (JQM_APP carries over by itself)."""
    cli = ctx.find_object(CliContext)
    if cli is None or not cli.app_path or ctx.get_parameter_source("app_path") is ParameterSource.ENVIRONMENT:
        return ""
    return f" --app {cli.app_path}"


def _with_app(message: str, ctx: click.Context) -> str:
    # A message that suggests a jqm command suggests it for the same app as this one.
    return message.replace("`jqm ", f"`jqm{_app_option(ctx)} ") if _app_option(ctx) else message


@click.group(cls=JQMGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--app", "app_path", envvar="JQM_APP", metavar="MODULE:ATTR", help=APP_HELP)
@click.version_option(package_name="jqm-celery", prog_name="jqm")
@click.pass_context
def cli(ctx: click.Context, app_path: str | None) -> None:
    """jqm: job queue packages for Celery — define, activate, hold, run and read their log."""
    ctx.obj = CliContext(app_path)


pass_cli = click.make_pass_decorator(CliContext)


if TYPE_CHECKING:
    _IntParam = click.ParamType[int]
else:  # older click's ParamType is not generic at run time
    _IntParam = click.ParamType


class IdType(_IntParam):
    """A run, job or log entry id: a whole number from 1 to the largest id the store holds (2^31−1)."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip()
        if not text.isdigit():
            self.fail(f"{value!r} is not an id; ids are whole numbers from 1 to {MAX_COLUMN_INT}", param, ctx)
        number = int(text)
        if not 1 <= number <= MAX_COLUMN_INT:
            self.fail(f"{number} is not an id; ids go from 1 to {MAX_COLUMN_INT} (2^31−1)", param, ctx)
        return number


#: The type of every id argument and option (``type=ID``).
ID = IdType()


def when(value: datetime | None) -> str:
    """A timestamp as the CLI shows it: UTC, to the second."""
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


STATUS_STYLE = {
    "ACTIVE": "green",
    "SUCCEEDED": "green",
    "DONE": "green",
    "ON_HOLD": "yellow",
    "QUEUED": "cyan",
    "RUNNING": "cyan",
    "RETRYING": "yellow",
    "FAILED": "yellow",
    "STOPPED": "yellow",
    "SKIPPED": "dim",
    "DRAFT": "dim",
    "ERROR": "red",
    "ABORTED": "red",
    "INTERRUPTED": "red",
    "CANCELLED": "dim",
}


def styled(status: str) -> str:
    style = STATUS_STYLE.get(str(status))
    return f"[{style}]{status}[/]" if style else str(status)
