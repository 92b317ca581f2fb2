"""The ``jqm`` command. Commands stay thin: each one calls the public Python API and prints the result.

Command groups live in their own modules and are attached in ``_register`` below.
"""

from __future__ import annotations

from jqm_celery.cli.base import cli


def _register() -> None:
    from jqm_celery.cli import db, demo, jobs, log, notifications, packages, runs, schedule, web, worker

    for module in (packages, runs, log, db, demo, schedule, notifications, jobs, worker, web):
        module.register(cli)


_register()


def main() -> None:
    cli()


__all__ = ["cli", "main"]
