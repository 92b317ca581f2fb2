"""``jqm db``: the store's schema."""

from __future__ import annotations

import click

from jqm_celery.cli.base import CliContext, pass_cli
from jqm_celery.store.engine import redact


@click.group("db")
def db() -> None:
    """The jqm store (SQLite or PostgreSQL)."""


@db.command("upgrade")
@pass_cli
def upgrade(cli: CliContext) -> None:
    """Create or migrate the store's tables to this version's schema (the store of --app's Celery app)."""
    if not cli.app_path:
        # Without an app this would migrate a bare ./jqm.sqlite, which migrates itself anyway: a user who
        # typed this meant their own store.
        raise click.UsageError(
            "which store? name your Celery app: `jqm --app MODULE:ATTR db upgrade` from your project's "
            "folder (or set JQM_APP=MODULE:ATTR)"
        )
    jqm = cli.jqm
    before, after = jqm.upgrade_db()
    where = redact(jqm.settings.database_url)
    if before == after:
        cli.console.print(f"{where}: already at revision {after}")
    else:
        cli.console.print(f"{where}: migrated from {before or 'an empty database'} to revision {after}")


def register(root: click.Group) -> None:
    root.add_command(db)
