"""``jqm packages preview`` (when a package will run, and why) and ``jqm beat`` (the scheduler)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import click
from rich.table import Table

from jqm_celery.cli.base import CliContext, pass_cli, when
from jqm_celery.cli.packages import packages
from jqm_celery.recurrence import next_runs

# By name, so the library does not import the beat side (which depends on it).
SCHEDULER = "beat_schedules:PackageScheduler"


@packages.command("preview")
@click.argument("name")
@click.option("--count", default=10, show_default=True, type=click.IntRange(min=1), help="How many times.")
@pass_cli
def preview(cli: CliContext, name: str, count: int) -> None:
    """The next fire times of a package, merged across its recurrences, with the one that produces each."""
    state = cli.jqm.package(name)
    recurrences = state.definition.recurrences
    if not recurrences:
        cli.console.print(f"{name} has no recurrences; it runs only when started (`jqm packages run {name}`)")
        return
    table = Table("#", "fire time (UTC)", "local time", "recurrence", title=f"next runs of {name}")
    for number, (at, recurrence) in enumerate(next_runs(recurrences, cli.jqm.clock.now(), count), start=1):
        local = at.astimezone(ZoneInfo(recurrence.tz)).strftime("%Y-%m-%d %H:%M:%S %Z")
        table.add_row(str(number), when(at), local, recurrence.describe())
    cli.console.print(table)
    if state.status != "ACTIVE":
        cli.console.print(f"{name} is {state.status}: these times apply once it is activated")


@click.command("beat")
@click.option("--loglevel", "-l", default="INFO", show_default=True, help="Celery's log level.")
@pass_cli
def beat(cli: CliContext, loglevel: str) -> None:
    """Run Celery beat with the jqm scheduler.

    The same as `celery -A proj beat -S beat_schedules:PackageScheduler`; several may run at once.
    """
    cli.jqm.app.Beat(scheduler=SCHEDULER, loglevel=loglevel).run()


def register(root: click.Group) -> None:
    # ``preview`` attached itself to the ``packages`` group when this module was imported.
    root.add_command(beat)
