"""``jqm log``: log entries, filtered by package, run and status."""

from __future__ import annotations

import click
from rich.table import Table

from jqm_celery.cli.base import ID, CliContext, pass_cli, styled
from jqm_celery.records import LogEntry


@click.command("log")
@click.option("--package", metavar="NAME", help="Only this package's log entries.")
@click.option("--run", "run_id", type=ID, help="Only this run's log entries.")
@click.option("--status", metavar="S", help="Only entries with this status (DONE, FAILED, ERROR, SKIPPED…).")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@pass_cli
def log(cli: CliContext, package: str | None, run_id: int | None, status: str | None, limit: int) -> None:
    """Log entries, oldest first: one per attempt, plus run and package events."""
    print_log(cli, cli.jqm.log_entries(package=package, run_id=run_id, status=status, limit=limit))


def print_log(cli: CliContext, entries: list[LogEntry]) -> None:
    table = Table(
        "id", "time (UTC)", "package", "run", "event", "task", "status", "retry", "worker", "error / message"
    )
    for entry in entries:
        table.add_row(
            str(entry.id),
            entry.started_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            entry.package or "",
            f"#{entry.run_id}" if entry.run_id else "",
            entry.kind.lower().replace("_", " "),
            entry.entry_task or "",
            styled(entry.status),
            str(entry.retry) if entry.kind == "ATTEMPT" else "",
            entry.worker or "",
            entry.error or entry.message or "",
        )
    cli.console.print(table)


def register(root: click.Group) -> None:
    root.add_command(log)
