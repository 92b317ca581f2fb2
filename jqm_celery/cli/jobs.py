"""``jqm jobs``, ``jqm queues`` and ``jqm audit``: the job queue from the shell."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from jqm_celery.cli.base import ID, CliContext, pass_cli, styled, when
from jqm_celery.records import Job
from jqm_celery.statuses import JobStatus

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_T = TypeVar("_T")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Duration(click.ParamType[timedelta]):
    """``30d``, ``12h``, ``90m``, ``45s`` or ``2w`` as a timedelta."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = _DURATION.match(str(value))
        if match is None:
            self.fail(
                f"{value!r} is not a duration; use a number and a unit (s, m, h, d, w), e.g. 30d", param, ctx
            )
        return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


@click.group("jobs")
def jobs() -> None:
    """Stand-alone jobs: list, show, cancel, abort, re-add, clean."""


@jobs.command("list")
@click.option("--queue", metavar="Q", help="Only this queue's jobs.")
@click.option("--status", type=click.Choice([s.value for s in JobStatus], case_sensitive=False))
@click.option("--all", "include_runs", is_flag=True, help="Include the jobs of package runs.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@pass_cli
def list_jobs(cli: CliContext, queue: str | None, status: str | None, include_runs: bool, limit: int) -> None:
    """The newest jobs first."""
    table = Table("job", "queue", "task", "status", "retry", "delay", "worker", "created", "description")
    for job in cli.jqm.jobs(queue=queue, status=status, stand_alone=not include_runs, limit=limit):
        table.add_row(
            str(job.id),
            job.queue or "—",
            job.task,
            styled(job.status),
            f"{job.retry}/{job.max_retries}",
            str(job.current_delay),
            job.worker or "—",
            when(job.created_at),
            job.description,
        )
    cli.console.print(table)


@jobs.command("show")
@click.argument("job_id", type=ID)
@pass_cli
def show(cli: CliContext, job_id: int) -> None:
    """One job with its fields and every attempt."""
    print_job(cli, cli.jqm.job(job_id))


@jobs.command("cancel")
@click.argument("job_id", type=ID)
@pass_cli
def cancel(cli: CliContext, job_id: int) -> None:
    """Cancel a QUEUED, DELAYED or RETRYING job: it never runs."""
    job = cli.jqm.cancel(job_id)
    cli.console.print(f"job {job.id}: {styled(job.status)}")


@jobs.command("abort")
@click.argument("job_id", type=ID)
@pass_cli
def abort(cli: CliContext, job_id: int) -> None:
    """Terminate a RUNNING job on whichever worker runs it."""
    job = cli.jqm.abort(job_id)
    cli.console.print(f"job {job.id}: {styled(job.status)}")


@jobs.command("requeue")
@click.argument("job_id", type=ID)
@pass_cli
def requeue(cli: CliContext, job_id: int) -> None:
    """Add a DONE, CANCELLED, ABORTED or ERROR job to its queue again (its retry count starts over)."""
    job = cli.jqm.requeue(job_id)
    cli.console.print(f"job {job.id}: {styled(job.status)} in queue {job.queue}")


@jobs.command("clean")
@click.option("--older-than", required=True, type=Duration(), help="e.g. 30d, 12h, 90m.")
@pass_cli
def clean(cli: CliContext, older_than: timedelta) -> None:
    """Delete finished stand-alone jobs older than --older-than, and their log entries, in batches."""
    cleaned = with_progress(cli, lambda advance: cli.jqm.clean(older_than, progress=advance))
    cli.console.print(f"deleted {cleaned.jobs} job(s) and {cleaned.log_entries} log entries")


def with_progress(cli: CliContext, clean: Callable[[Callable[[int, int], None]], _T]) -> _T:
    """Run ``clean`` with a progress bar it advances after each batch."""
    columns = (TextColumn("cleaning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=cli.console, transient=True) as progress:
        bar = progress.add_task("clean", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        return clean(advance)


def print_job(cli: CliContext, job: Job) -> None:
    owner = "stand-alone" if job.run_id is None else f"run #{job.run_id} of {job.package}"
    cli.console.print(f"job {job.id} ({owner}): [bold]{job.task}[/] {styled(job.status)}")
    if job.description:
        cli.console.print(job.description)
    fields = Table.grid(padding=(0, 2))
    for label, value in (
        ("queue", job.queue or "—"),
        ("retry / max retries", f"{job.retry} / {job.max_retries}"),
        ("current delay", str(job.current_delay)),
        ("worker", job.worker or "—"),
        ("celery task id", job.celery_task_id or "—"),
        ("created", when(job.created_at)),
        ("started", when(job.started_at)),
        ("finished", when(job.finished_at)),
        ("error", job.error or ""),
    ):
        fields.add_row(label, value)
    cli.console.print(fields)
    attempts = Table(
        "retry", "status", "worker", "started", "finished", "planned delay", "error", title="attempts"
    )
    for attempt in job.attempts:
        attempts.add_row(
            str(attempt.retry),
            styled(attempt.status),
            attempt.worker or "",
            when(attempt.started_at),
            when(attempt.finished_at),
            "" if attempt.planned_delay is None else str(attempt.planned_delay),
            attempt.error or "",
        )
    cli.console.print(attempts)


@click.group("queues")
def queues() -> None:
    """Named queues: pool sizes, pause, resume and shut down."""


@queues.command("list")
@pass_cli
def list_queues(cli: CliContext) -> None:
    """Every queue with its pool size, whether it is paused, its jobs by status and its live workers."""
    table = Table(
        "queue", "pool size", "state", "queued", "delayed", "running", "retrying", "failed", "workers"
    )
    for queue in cli.jqm.queues():
        table.add_row(
            queue.name,
            "—" if queue.pool_size is None else str(queue.pool_size),
            "paused" if queue.paused else "open",
            str(queue.queued),
            str(queue.delayed),
            str(queue.running),
            str(queue.retrying),
            str(queue.failed),
            ", ".join(queue.workers) or "—",
        )
    cli.console.print(table)


@queues.command("define")
@click.argument("name")
@click.option("--pool-size", required=True, type=int, help="How many of its jobs a worker runs at once.")
@pass_cli
def define(cli: CliContext, name: str, pool_size: int) -> None:
    """Define a queue, or change its pool size."""
    queue = cli.jqm.define_queue(name, pool_size)
    cli.console.print(f"queue {queue.name}: pool size {queue.pool_size}")


@queues.command("pause")
@click.argument("name")
@pass_cli
def pause(cli: CliContext, name: str) -> None:
    """No new job of the queue starts, on any worker, until it is resumed; running jobs finish."""
    cli.jqm.pause_queue(name)
    cli.console.print(f"queue {name}: paused; its waiting jobs start after `jqm queues resume {name}`")


@queues.command("resume")
@click.argument("name")
@pass_cli
def resume(cli: CliContext, name: str) -> None:
    """Jobs of a paused queue start again, those that waited first."""
    cli.jqm.resume_queue(name)
    cli.console.print(f"queue {name}: resumed")


@queues.command("shutdown")
@click.argument("name")
@click.option("--force", is_flag=True, required=True, help="Required: running jobs are aborted.")
@pass_cli
def shutdown(cli: CliContext, name: str, force: bool) -> None:
    """Pause the queue and abort its running jobs (resume it to start its waiting jobs again)."""
    del force
    cli.jqm.shut_down_queue(name)
    cli.console.print(f"queue {name}: paused, its running jobs aborted")


@click.command("audit")
@click.option("--package", metavar="NAME", help="Only this package's entries.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@pass_cli
def audit(cli: CliContext, package: str | None, limit: int) -> None:
    """Who changed what, and when (oldest first)."""
    table = Table("time (UTC)", "who", "action", "what", "detail")
    for entry in cli.jqm.audit(package=package, limit=limit):
        table.add_row(when(entry.at), entry.actor, entry.action.lower(), entry.target, entry.detail)
    cli.console.print(table)


def register(root: click.Group) -> None:
    root.add_command(jobs)
    root.add_command(queues)
    root.add_command(audit)
