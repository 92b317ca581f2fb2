"""``jqm worker``: Celery workers for the defined queues, each with its queue's pool size.

A Celery worker's concurrency is one number for everything it consumes, so a pool size per queue means one
worker per queue: ``jqm worker`` starts them (plus one for the app's default queue, where jqm's own
bookkeeping tasks go) and stops them together; ``jqm worker --queue NAME`` is one of them, in-process.

The workers it starts are supervised (``jqm_celery.supervise``): one that exits without being asked to is
started again, with a backoff, and the reason is logged. SIGTERM and SIGINT are forwarded to all of them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import click

from jqm_celery.cli.base import CliContext, pass_cli
from jqm_celery.supervise import RestartPolicy, Supervisor


def celery_args(queue: str, pool_size: int, loglevel: str, also: Sequence[str] = ()) -> list[str]:
    # Late acknowledgement with a prefetch of one: a worker holds no more messages than it runs, so a
    # crash leaves nothing else waiting on it.
    return [
        "worker",
        "-Q",
        ",".join([queue, *(q for q in also if q != queue)]),
        "-c",
        str(pool_size),
        "-n",
        f"{queue}@%h",
        "--prefetch-multiplier=1",
        f"--loglevel={loglevel}",
    ]


def _seconds(default: float, what: str) -> dict[str, Any]:
    """A supervision option in seconds (see jqm_celery.supervise)."""
    return {
        "default": default,
        "show_default": True,
        "type": click.FloatRange(0.1),
        "help": f"Seconds {what}.",
    }


@click.command("worker")
@click.option("--queue", "only", metavar="NAME", help="Run the worker of this queue only, in this process.")
@click.option(
    "--default-pool-size",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Pool size of the worker for the app's default queue (jqm's bookkeeping, jobs without a queue).",
)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the equivalent plain `celery worker` commands and exit.")
@click.option(
    "--restart-delay", "restart_delay_s", **_seconds(1.0, "before a restart, doubled per early exit")
)
@click.option("--max-restart-delay", "max_restart_delay_s", **_seconds(60.0, "at most before a restart"))
@click.option(
    "--healthy-after",
    "healthy_after_s",
    **_seconds(60.0, "a worker must stay up for its next exit to wait --restart-delay again"),
)
@pass_cli
def worker(
    cli: CliContext,
    only: str | None,
    default_pool_size: int,
    loglevel: str,
    dry_run: bool,
    restart_delay_s: float,
    max_restart_delay_s: float,
    healthy_after_s: float,
) -> None:
    """Start Celery workers for the defined queues, each with its pool size."""
    jqm = cli.jqm
    default = str(jqm.app.conf.task_default_queue)
    sizes = {default: default_pool_size, **{q.name: q.pool_size for q in jqm.queues() if q.pool_size}}
    # The default queue's worker also sends notifications (mail, webhooks), which have their own queue.
    also = {default: [jqm.settings.notifications.queue]}
    if only is not None:
        if only not in sizes:
            raise click.UsageError(
                f"queue '{only}' is not defined; define it: jqm.define_queue('{only}', pool_size=4)"
            )
        if dry_run:
            click.echo(_command(cli, only, sizes[only], loglevel, also.get(only, ())))
            return
        jqm.app.worker_main(celery_args(only, sizes[only], loglevel, also.get(only, ())))
        return
    if dry_run:
        for queue, size in sizes.items():
            click.echo(_command(cli, queue, size, loglevel, also.get(queue, ())))
        return
    if max_restart_delay_s < restart_delay_s:
        raise click.UsageError(
            f"--max-restart-delay ({max_restart_delay_s:g}) is shorter than --restart-delay "
            f"({restart_delay_s:g}); give a maximum at least as long"
        )
    policy = RestartPolicy(
        first_delay=timedelta(seconds=restart_delay_s),
        max_delay=timedelta(seconds=max_restart_delay_s),
        healthy_after=timedelta(seconds=healthy_after_s),
    )
    logging.basicConfig(
        level=loglevel.upper(),
        format="[%(asctime)s: %(levelname)s/jqm worker] %(message)s",
        stream=sys.stderr,
    )
    supervisor = Supervisor({queue: _child(cli, queue, loglevel) for queue in sizes}, policy)
    sys.exit(supervisor.run())


def _command(cli: CliContext, queue: str, pool_size: int, loglevel: str, also: Sequence[str]) -> str:
    app = cli.app_path or "your_module:app"
    return " ".join(["celery", "-A", app, *celery_args(queue, pool_size, loglevel, also)])


def _child(cli: CliContext, queue: str, loglevel: str) -> list[str]:
    app = ["--app", cli.app_path] if cli.app_path else []
    return [sys.executable, "-m", "jqm_celery.cli", *app, "worker", "--queue", queue, "--loglevel", loglevel]


def register(root: click.Group) -> None:
    root.add_command(worker)
