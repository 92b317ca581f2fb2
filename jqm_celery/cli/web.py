"""``jqm web`` serves the web UI and REST API; ``jqm users`` manages who may sign in, and their tokens."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from jqm_celery.cli.base import CliContext, pass_cli, when
from jqm_celery.manager import JobQueueManager
from jqm_celery.web.roles import Role


@click.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@pass_cli
def web(cli: CliContext, host: str, port: int) -> None:
    """Serve the web UI and the REST API (/api, OpenAPI at /openapi.json)."""
    serve(cli, cli.jqm, host, port)


def serve(cli: CliContext, jqm: JobQueueManager, host: str, port: int) -> None:
    """Serve ``jqm``'s web UI with uvicorn until interrupted."""
    try:
        import uvicorn

        from jqm_celery.web import create_app
        from jqm_celery.web.app import settle_heap
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"the web UI needs the web extra ('{exc.name}' is not installed): pip install 'jqm-celery[web]'"
        ) from None
    app = create_app(jqm)
    if not app.state.users.users():
        cli.console.print("[yellow]no users yet:[/] add one with `jqm users add NAME --role admin`")
    settle_heap()
    cli.console.print(f"web UI: http://{host}:{port}/  (REST API: http://{host}:{port}/api/docs)")
    uvicorn.run(app, host=host, port=port, log_level="info")


@click.group("users")
def users() -> None:
    """People who may sign in to the web UI or call the REST API, with their role."""


@users.command("add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), default=Role.USER.value, show_default=True
)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@pass_cli
def add(cli: CliContext, name: str, role: str, password_stdin: bool) -> None:
    """Add a user (admin: everything; user: no delete, abort or clean; viewer: read only)."""

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    user = cli.jqm.users().add(name, role, password)
    cli.console.print(f"user '{user.name}' added as {user.role.label}")


@users.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for, e.g. the script that uses it.")
@pass_cli
def token(cli: CliContext, name: str, label: str) -> None:
    """Create an API token for NAME; it is printed once (send it as `Authorization: Bearer TOKEN`)."""

    click.echo(cli.jqm.users().create_token(name, label))


@users.command("revoke-tokens")
@click.argument("name")
@pass_cli
def revoke_tokens(cli: CliContext, name: str) -> None:
    """Revoke every API token of NAME."""

    count = cli.jqm.users().revoke_tokens(name)
    cli.console.print(f"{count} token(s) of '{name}' revoked")


@users.command("list")
@pass_cli
def list_users(cli: CliContext) -> None:
    """Users with their role and number of API tokens."""

    table = Table("user", "role", "tokens", "created")
    for user in cli.jqm.users().users():
        table.add_row(user.name, user.role.label, str(user.tokens), when(user.created_at))
    cli.console.print(table)


@users.command("remove")
@click.argument("name")
@pass_cli
def remove(cli: CliContext, name: str) -> None:
    """Remove a user and their API tokens."""

    cli.jqm.users().remove(name)
    cli.console.print(f"user '{name}' removed")


def register(group: click.Group) -> None:
    group.add_command(web)
    group.add_command(users)
