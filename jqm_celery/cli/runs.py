"""``jqm runs``: the runs of packages, one run with its jobs and attempts, cancel and clean."""

from __future__ import annotations

from datetime import timedelta

import click
from rich.table import Table

from jqm_celery.cli.base import ID, CliContext, pass_cli, styled, when
from jqm_celery.cli.jobs import Duration, with_progress
from jqm_celery.records import Run
from jqm_celery.statuses import RunStatus


@click.group("runs")
def runs() -> None:
    """Runs of packages."""


@runs.command("list")
@click.option("--package", "package", metavar="NAME", help="Only this package's runs.")
@click.option("--status", type=click.Choice([s.value for s in RunStatus], case_sensitive=False))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@pass_cli
def list_runs(cli: CliContext, package: str | None, status: str | None, limit: int) -> None:
    """The newest runs first."""
    table = Table("run", "package", "status", "trigger", "started", "finished")
    for run in cli.jqm.runs(package=package, status=status, limit=limit):
        table.add_row(
            f"#{run.id}",
            run.package,
            styled(run.status),
            run.trigger,
            when(run.started_at),
            when(run.finished_at),
        )
    cli.console.print(table)


@runs.command("show")
@click.argument("run_id", type=ID)
@pass_cli
def show(cli: CliContext, run_id: int) -> None:
    """One run: its jobs in run order and every attempt."""
    print_run(cli, cli.jqm.run(run_id))


def print_run(cli: CliContext, run: Run) -> None:
    cli.console.print(
        f"run #{run.id} of [bold]{run.package}[/]: {styled(run.status)} ({run.trigger}); "
        f"started {when(run.started_at)}, finished {when(run.finished_at)}"
    )
    if run.stop_reason:
        cli.console.print(f"stopped: {run.stop_reason}")
    table = Table("job", "run order", "task", "status", "retry", "worker", "error")
    for job in run.jobs:
        table.add_row(
            str(job.id),
            str(job.run_order),
            job.task,
            styled(job.status),
            f"{job.retry}/{job.max_retries}",
            job.worker or "—",
            job.error or "",
        )
    cli.console.print(table)
    attempts = Table(
        "job", "retry", "status", "started", "finished", "planned delay", "error", title="attempts"
    )
    for attempt in run.attempts:
        attempts.add_row(
            str(attempt.job_id),
            str(attempt.retry),
            styled(attempt.status),
            when(attempt.started_at),
            when(attempt.finished_at),
            "" if attempt.planned_delay is None else str(attempt.planned_delay),
            attempt.error or "",
        )
    cli.console.print(attempts)


@runs.command("clean")
@click.option("--older-than", required=True, type=Duration(), help="e.g. 90d, 12h.")
@pass_cli
def clean_runs(cli: CliContext, older_than: timedelta) -> None:
    """Delete finished runs older than --older-than, with their jobs and log entries, in batches."""
    cleaned = with_progress(cli, lambda advance: cli.jqm.clean_runs(older_than, progress=advance))
    cli.console.print(f"deleted {cleaned.runs} finished run(s) and {cleaned.log_entries} log entries")


@runs.command("cancel")
@click.argument("run_id", type=ID)
@pass_cli
def cancel_run(cli: CliContext, run_id: int) -> None:
    """Cancel a run: its queued jobs never start, its running job is aborted."""
    print_run(cli, cli.jqm.cancel_run(run_id))


def register(root: click.Group) -> None:
    root.add_command(runs)
