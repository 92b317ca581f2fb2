"""``jqm notifications``: send a test notification, list sent and failed ones."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from jqm_celery.cli.base import ID, CliContext, pass_cli, styled, when


@click.group("notifications")
def notifications() -> None:
    """E-mail and webhook notifications."""


@notifications.command("test")
@click.argument("name")
@pass_cli
def test(cli: CliContext, name: str) -> None:
    """Send a test notification to every recipient of package NAME now, and show what the server said."""
    deliveries = cli.jqm.notifications.test(name)
    for delivery in deliveries:
        outcome = "[green]sent[/]" if delivery.sent else "[red]refused[/]"
        cli.console.print(
            f"{delivery.channel.lower()} {escape(delivery.target)}: {outcome} — {escape(delivery.detail)}"
        )
    if not all(d.sent for d in deliveries):
        raise SystemExit(1)


@notifications.command("list")
@click.option("--package", metavar="NAME", help="Only this package's notifications.")
@click.option("--run", "run_id", type=ID, help="Only this run's notifications.")
@click.option("--status", metavar="S", help="SENT, FAILED, PENDING or SENDING.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@pass_cli
def list_notifications(
    cli: CliContext, package: str | None, run_id: int | None, status: str | None, limit: int
) -> None:
    """Notifications, newest first: one per event and recipient, with their status."""
    table = Table("id", "created", "package", "run", "scenario", "to", "status", "tries", "subject / error")
    for item in cli.jqm.notifications.history(package=package, run_id=run_id, status=status, limit=limit):
        table.add_row(
            str(item.id),
            when(item.created_at),
            item.package or "",
            f"#{item.run_id}" if item.run_id else "",
            item.scenario.lower().replace("_", " "),
            escape(item.target),
            styled(item.status),
            str(item.tries),
            escape(item.error or item.subject),
        )
    cli.console.print(table)


def register(root: click.Group) -> None:
    root.add_command(notifications)
