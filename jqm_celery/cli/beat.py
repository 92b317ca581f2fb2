"""``jqm beat``: Celery beat with the jqm scheduler, in this process (it loads no other command)."""

from __future__ import annotations

import click

from jqm_celery.cli.base import CliContext, pass_cli

# By name, so the library does not import the beat side (which depends on it).
SCHEDULER = "beat_schedules:PackageScheduler"


@click.command("beat")
@click.option("--loglevel", "-l", default="INFO", show_default=True, help="Celery's log level.")
@pass_cli
def beat(cli: CliContext, loglevel: str) -> None:
    """Run Celery beat with the jqm scheduler.

    The same as `celery -A proj beat -S beat_schedules:PackageScheduler`; several may run at once.
    """
    cli.jqm.app.Beat(scheduler=SCHEDULER, loglevel=loglevel).run()


def register(root: click.Group) -> None:
    root.add_command(beat)
