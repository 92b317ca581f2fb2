"""``jqm demo``: a real package on a real worker, with no servers; ``jqm demo log`` and ``jqm demo web``
read what it left behind."""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

import click
from rich.table import Table

from jqm_celery.cli.base import CliContext, pass_cli, styled
from jqm_celery.cli.web import serve
from jqm_celery.demo import DemoWorker, check, open_demo, prepare
from jqm_celery.manager import JobQueueManager
from jqm_celery.records import LogEntry, Run

DATA_DIR = Path(".jqm-demo")


@click.group("demo", invoke_without_command=True)
@click.option(
    "--data-dir",
    default=str(DATA_DIR),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the demo's SQLite store, broker and results (emptied first by a new run).",
)
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the run.")
@click.pass_context
def demo(ctx: click.Context, data_dir: Path, timeout: float) -> None:
    """Run the example package from examples/demo.py on a real worker, on SQLite files only.

    Then `jqm demo log` prints its log again and `jqm demo web` shows it in the web UI.
    """
    ctx.meta["demo_data_dir"] = data_dir
    if ctx.invoked_subcommand is None:
        run_demo(ctx.find_object(CliContext) or CliContext(None), data_dir, timeout)


def run_demo(cli: CliContext, data_dir: Path, timeout: float) -> None:
    if not sys.stdout.isatty():
        # Piped output (`jqm demo | tee demo.txt`) shows each line as it happens, not all at the end.
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    started = time.monotonic()
    console = cli.console
    worker = DemoWorker(data_dir).start()
    try:
        jqm = prepare(data_dir)
    except BaseException:
        worker.stop()
        raise
    package = jqm.packages()[0]
    console.print(
        f"[bold]jqm demo[/]: package [bold]{package.name}[/], {len(package.definition.entries)} entries, "
        f"On Error {package.definition.on_error}.\n"
        "It shows a retry, two entries in parallel, and a job that fails on purpose,\n"
        "so the run ends FAILED: that is the intended outcome.\n"
        f"Store, broker and results: SQLite files in {data_dir.resolve()}"
    )
    worker.store_ready()
    try:
        console.print("starting a worker and running the package:")
        run = _follow(cli, jqm, jqm.run_now(package.name), timeout)
        problems = _report(cli, run, time.monotonic() - started)
    finally:
        # After the report: the user reads it while the worker stops.
        with console.status("stopping the demo's worker…"):
            worker.stop()
    if problems:
        raise SystemExit(1)


def _report(cli: CliContext, run: Run, elapsed_s: float) -> list[str]:
    """Say how the run ended and where to look next; return what went other than the demo intends."""
    console = cli.console
    problems = check(run)
    outcome = "— as intended:" if not problems else "— not as the demo intends:"
    console.print(f"run #{run.id} ended {styled(run.status)} in {elapsed_s:.1f} s {outcome}")
    for problem in problems:
        console.print(f"[red]unexpected:[/] {problem}")
    if problems:
        return problems
    console.print(
        "  upload_to_bank failed once and was retried;\n"
        "  notify_finance and mark_paid ran in parallel;\n"
        "  archive_pdfs failed for good and, under On Error CONTINUE, the run went on.\n"
        "Where to look next:\n"
        "  jqm demo log       this log again, as a table\n"
        "  jqm demo web       the web UI on the demo's data\n"
        "                     (it needs the web extra: pip install 'jqm-celery\\[web]')\n"
        "  examples/demo.py   the package and its tasks\n"
        "  README.md          the same on your own Redis/RabbitMQ and PostgreSQL"
    )
    return []


def _follow(cli: CliContext, jqm: JobQueueManager, run: Run, timeout: float) -> Run:
    """Print each log entry of the run once it is final (an attempt once it has ended), until the run ends."""
    deadline = time.monotonic() + timeout
    shown: set[int] = set()
    while True:
        finished = jqm.run(run.id)
        for entry in jqm.log_entries(run_id=run.id):
            if entry.id not in shown and not (entry.kind == "ATTEMPT" and entry.finished_at is None):
                cli.console.print(_line(entry), highlight=False)
                shown.add(entry.id)
        if finished.status.finished:
            return finished
        if time.monotonic() > deadline:
            return run.wait(timeout=0)
        time.sleep(0.1)


def _line(entry: LogEntry) -> Table:
    """One log entry as a row of fixed columns; a long error wraps inside its own column."""
    row = Table.grid(padding=(0, 2, 0, 0))
    row.add_column(width=2)
    for width in (8, 15, 7, 7):
        row.add_column(min_width=width, max_width=width, no_wrap=True)
    row.add_column(overflow="fold")
    what = (entry.entry_task or entry.kind.lower().replace("_", " ")).removeprefix("demo.")
    retry = f"retry {entry.retry}" if entry.kind == "ATTEMPT" and entry.retry else ""
    detail = entry.error or ("" if entry.kind == "ATTEMPT" else entry.message or "")
    row.add_row("", entry.started_at.strftime("%H:%M:%S"), what, styled(entry.status), retry, detail)
    return row


@demo.command("log")
@click.pass_context
def log(ctx: click.Context) -> None:
    """The demo's log entries, oldest first, sized for the terminal."""
    cli = ctx.find_object(CliContext) or CliContext(None)
    jqm = open_demo(ctx.meta["demo_data_dir"])
    table = Table("time (UTC)", "run", "task / event", "status", "retry", "error / message", expand=False)
    for entry in jqm.log_entries():
        table.add_row(
            entry.started_at.strftime("%H:%M:%S.%f")[:-3],
            f"#{entry.run_id}" if entry.run_id else "",
            (entry.entry_task or entry.kind.lower().replace("_", " ")).removeprefix("demo."),
            styled(entry.status),
            str(entry.retry) if entry.kind == "ATTEMPT" else "",
            entry.error or entry.message or "",
        )
    cli.console.print(table)


@demo.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@pass_cli
@click.pass_context
def web(ctx: click.Context, cli: CliContext, host: str, port: int) -> None:
    """The web UI on the demo's data, with a demo user (its password is printed once)."""

    jqm = open_demo(ctx.meta["demo_data_dir"])
    users = jqm.users()
    if not users.users():
        password = secrets.token_urlsafe(9)
        users.add("demo", "admin", password)
        cli.console.print(f"sign in as [bold]demo[/] with the password [bold]{password}[/]")
    serve(cli, jqm, host, port)


def register(root: click.Group) -> None:
    root.add_command(demo)
