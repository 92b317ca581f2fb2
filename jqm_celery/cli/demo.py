"""``jqm demo``: a real package on a real worker, with no servers."""

from __future__ import annotations

import time
from pathlib import Path

import click

from jqm_celery.cli.base import CliContext, pass_cli, styled
from jqm_celery.cli.log import print_log
from jqm_celery.demo import DemoWorker, check, prepare


@click.command("demo")
@click.option(
    "--data-dir",
    default=".jqm-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the demo's SQLite store, broker and results (emptied first).",
)
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the run.")
@pass_cli
def demo(cli: CliContext, data_dir: Path, timeout: float) -> None:
    """Run the example package from examples/demo.py on a real worker, on SQLite files only."""
    started = time.monotonic()
    console = cli.console
    jqm = prepare(data_dir)
    console.print(f"store, broker and results: SQLite files in {data_dir.resolve()}")
    package = jqm.packages()[0]
    console.print(
        f"package [bold]{package.name}[/]: {len(package.definition.entries)} entries, "
        f"On Error {package.definition.on_error}, {styled(package.status)}"
    )
    with DemoWorker(data_dir), console.status("starting a worker and running the package…"):
        run = jqm.run_now(package.name).wait(timeout=timeout)
    console.print(f"run #{run.id}: {styled(run.status)} in {time.monotonic() - started:.1f} s")
    print_log(cli, jqm.log_entries(run_id=run.id))
    problems = check(run)
    for problem in problems:
        console.print(f"[red]unexpected:[/] {problem}")
    if problems:
        raise SystemExit(1)
    console.print(
        "upload_to_bank failed once and was retried; notify_finance and mark_paid ran in parallel; "
        "archive_pdfs failed for good and, under On Error CONTINUE, the run went on."
    )


def register(root: click.Group) -> None:
    root.add_command(demo)
