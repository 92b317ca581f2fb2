"""``jqm packages``: list, show, activate, hold, run and delete packages."""

from __future__ import annotations

import click
from rich.table import Table

from jqm_celery.cli.base import CliContext, pass_cli, styled, when
from jqm_celery.cli.runs import print_run
from jqm_celery.notifications.rules import describe_scenarios


@click.group("packages")
def packages() -> None:
    """Job queue packages."""


@packages.command("list")
@pass_cli
def list_packages(cli: CliContext) -> None:
    """Every package with its status, next run and last run."""
    table = Table("name", "status", "entries", "on error", "next run", "last run")
    for state in cli.jqm.packages():
        last = state.last_run
        table.add_row(
            state.name,
            styled(state.status),
            str(len(state.definition.entries)),
            state.definition.on_error,
            when(state.next_run_at),
            "—" if last is None else f"#{last.id} {styled(last.status)}",
        )
    cli.console.print(table)


@packages.command("show")
@click.argument("name")
@pass_cli
def show(cli: CliContext, name: str) -> None:
    """A package's card: status, entries in run order, recurrences, On Error policy."""
    state = cli.jqm.package(name)
    package = state.definition
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


@packages.command("run")
@click.argument("name")
@click.option("--queue", is_flag=True, help="If a run is in flight, queue this one instead of refusing.")
@click.option("--wait/--no-wait", default=False, help="Wait for the run to finish and show it.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait with --wait.")
@pass_cli
def run(cli: CliContext, name: str, queue: bool, wait: bool, timeout: float) -> None:
    """Start a run of the package now (any status; the status does not change)."""
    started = cli.jqm.run_now(name, queue=queue)
    cli.console.print(f"run #{started.id} of {name}: {styled(started.status)}")
    if wait:
        with cli.console.status(f"waiting for run #{started.id}…"):
            finished = started.wait(timeout=timeout)
        print_run(cli, finished)


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


def register(root: click.Group) -> None:
    root.add_command(packages)
