"""``jqm packages``: list, show, activate, hold, run, delete packages, and preview when one will run."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import click
from rich.table import Table

from jqm_celery.canvas import describe_canvas
from jqm_celery.cli.base import CliContext, pass_cli, styled, when
from jqm_celery.cli.runs import print_run
from jqm_celery.notifications.rules import describe_scenarios
from jqm_celery.records import RunTimeoutError
from jqm_celery.recurrence import next_runs
from jqm_celery.statuses import PackageStatus, RunStatus


@click.group("packages")
def packages() -> None:
    """Job queue packages."""


@packages.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in PackageStatus], case_sensitive=False),
    help="Only packages in this status (repeat for several).",
)
@click.option("--name", "name_contains", metavar="TEXT", help="Only packages whose name contains TEXT.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="Rows per page.")
@click.option(
    "--page", default=1, show_default=True, type=click.IntRange(1), help="Which page of --limit rows."
)
@pass_cli
def list_packages(
    cli: CliContext, statuses: tuple[str, ...], name_contains: str | None, limit: int, page: int
) -> None:
    """Packages sorted by name, one page at a time, with status, next run and last run."""
    listing = cli.jqm.package_list(
        status=statuses, name_contains=name_contains, limit=limit, offset=(page - 1) * limit
    )
    table = Table("name", "status", "entries", "on error", "next run", "last run")
    for summary in listing.packages:
        last = summary.last_run
        table.add_row(
            summary.name,
            styled(summary.status),
            str(summary.entries),
            summary.on_error,
            when(summary.next_run_at),
            "—" if last is None else f"#{last.id} {styled(last.status)}",
        )
    cli.console.print(table)
    shown = len(listing.packages)
    if listing.total == 0:
        cli.console.print("no packages" + (" match" if statuses or name_contains else " yet"))
        return
    footer = f"packages {listing.offset + 1}–{listing.offset + shown} of {listing.total}"
    if listing.offset + shown < listing.total:
        footer += f"; next page: --page {page + 1}"
    cli.console.print(footer)


@packages.command("show")
@click.argument("name")
@click.option(
    "--canvas",
    is_flag=True,
    help="Print the Celery chain the package runs as, as Python, instead of its card.",
)
@pass_cli
def show(cli: CliContext, name: str, canvas: bool) -> None:
    """A package's card: status, entries in run order, recurrences, On Error policy."""
    state = cli.jqm.package(name)
    package = state.definition
    if canvas:
        click.echo(describe_canvas(package))
        return
    cli.console.print(f"[bold]{package.name}[/]  {styled(state.status)}  version {state.version}")
    if package.description:
        cli.console.print(package.description)
    cli.console.print(f"On Error: {package.on_error}   next run: {when(state.next_run_at)}")
    entries = Table("run order", "task", "args", "kwargs", "retries", "queue", title="entries")
    for entry in sorted(package.entries, key=lambda e: e.run_order):
        entries.add_row(
            str(entry.run_order),
            entry.task,
            repr(list(entry.args)),
            repr(dict(entry.kwargs)),
            str(entry.retry.max_retries),
            entry.queue or "default",
        )
    cli.console.print(entries)
    if package.recurrences:
        recurrences = Table("recurrence", title="recurrences")
        for recurrence in package.recurrences:
            recurrences.add_row(recurrence.describe())
        cli.console.print(recurrences)
    if package.notifications:
        rules = Table("notify", "when", title="notifications")
        for rule in package.notifications:
            rules.add_row(rule.describe(), describe_scenarios(rule.scenarios))
        cli.console.print(rules)


@packages.command("activate")
@click.argument("name")
@pass_cli
def activate(cli: CliContext, name: str) -> None:
    """Validate the package and make it ACTIVE (editing is then locked)."""
    state = cli.jqm.activate(name)
    cli.console.print(f"{name}: {styled(state.status)}; next run: {when(state.next_run_at)}")


@packages.command("hold")
@click.argument("name")
@pass_cli
def hold(cli: CliContext, name: str) -> None:
    """Put the package ON_HOLD: a running job finishes, the rest of its run is skipped."""
    state = cli.jqm.hold(name)
    cli.console.print(f"{name}: {styled(state.status)}")


#: ``jqm packages run --wait``'s exit code for each way a run ends (1 and 2 are errors, as everywhere).
RUN_EXIT_CODES = {RunStatus.SUCCEEDED: 0, RunStatus.FAILED: 3, RunStatus.STOPPED: 4}
EXIT_STILL_RUNNING = 5


@packages.command(
    "run",
    epilog=(
        "Exit codes: 0 the run was started (with --wait: it SUCCEEDED); 3 it FAILED; 4 it was STOPPED; "
        "5 it was still running after --timeout; 1 an error (unknown package, a run in flight…); "
        "2 a usage error."
    ),
)
@click.argument("name")
@click.option("--queue", is_flag=True, help="If a run is in flight, queue this one instead of refusing.")
@click.option(
    "--wait/--no-wait", default=False, help="Wait for the run to finish, show it, and exit with its outcome."
)
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait with --wait.")
@pass_cli
def run(cli: CliContext, name: str, queue: bool, wait: bool, timeout: float) -> None:
    """Start a run of the package now (any status; the status does not change)."""
    started = cli.jqm.run_now(name, queue=queue)
    cli.console.print(f"run #{started.id} of {name}: {styled(started.status)}")
    if not wait:
        return
    try:
        with cli.console.status(f"waiting for run #{started.id}…"):
            finished = started.wait(timeout=timeout)
    except RunTimeoutError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_STILL_RUNNING) from None
    print_run(cli, finished)
    code = RUN_EXIT_CODES[finished.status]
    if code:
        click.echo(f"run #{finished.id} of {name} {finished.status} (exit code {code})", err=True)
        raise SystemExit(code)


@packages.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def delete(cli: CliContext, name: str, yes: bool) -> None:
    """Delete a package that is not ACTIVE (its runs and log entries are kept)."""
    cli.jqm.package(name)
    if not yes:
        click.confirm(f"delete package '{name}'?", abort=True)
    cli.jqm.delete(name)
    cli.console.print(f"{name}: deleted")


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


def register(root: click.Group) -> None:
    root.add_command(packages)
