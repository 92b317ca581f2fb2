"""``jqm users``: add a user from a script, create a token that the API accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from jqm_celery.cli import cli
from jqm_celery.cli.base import load_manager
from jqm_celery.web import create_app


def test_a_user_added_with_a_password_on_stdin_gets_a_token_the_api_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    added = runner.invoke(
        cli, ["users", "add", "ops", "--role", "user", "--password-stdin"], input="s3cret-pass\n"
    )
    assert added.exit_code == 0, added.output
    assert "user 'ops' added as User" in added.output
    issued = runner.invoke(cli, ["users", "token", "ops", "--label", "nightly script"])
    token = issued.output.strip()
    assert token.startswith("jqm_")
    client = TestClient(create_app(load_manager(None)))
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "user"
    listed = runner.invoke(cli, ["users", "list"])
    assert "ops" in listed.output
    assert "User" in listed.output


def test_a_bad_role_is_refused_by_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["users", "add", "ops", "--role", "root", "--password-stdin"], input="x\n"
    )
    assert result.exit_code == 2
    assert "'root' is not one of 'admin', 'user', 'viewer'" in result.output
