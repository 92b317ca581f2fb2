"""``jqm worker``: Celery workers for the defined queues, each with its queue's pool size.

A Celery worker's concurrency is one number for everything it consumes, so a pool size per queue means one
worker per queue: ``jqm worker`` starts them (plus one for the app's default queue, where jqm's own
bookkeeping tasks go) and stops them together; ``jqm worker --queue NAME`` is one of them, in-process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

import click

from jqm_celery.cli.base import CliContext, pass_cli


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
@pass_cli
def worker(cli: CliContext, only: str | None, default_pool_size: int, loglevel: str, dry_run: bool) -> None:
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
    children = [subprocess.Popen(_child(cli, queue, loglevel)) for queue in sizes]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    sys.exit(max(codes, default=0))


def _command(cli: CliContext, queue: str, pool_size: int, loglevel: str, also: Sequence[str]) -> str:
    app = cli.app_path or "your_module:app"
    return " ".join(["celery", "-A", app, *celery_args(queue, pool_size, loglevel, also)])


def _child(cli: CliContext, queue: str, loglevel: str) -> list[str]:
    app = ["--app", cli.app_path] if cli.app_path else []
    return [sys.executable, "-m", "jqm_celery.cli", *app, "worker", "--queue", queue, "--loglevel", loglevel]


def register(root: click.Group) -> None:
    root.add_command(worker)
