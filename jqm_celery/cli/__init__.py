"""The ``jqm`` command. Commands stay thin: each one calls the public Python API and prints the result.

Command groups live in their own modules, each attached when it is first asked for (``base.COMMANDS``).
"""

from __future__ import annotations

from jqm_celery.cli.base import cli


def main() -> None:
    cli()


__all__ = ["cli", "main"]
