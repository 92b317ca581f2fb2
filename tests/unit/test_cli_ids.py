"""An id past what the store holds is a usage error naming the limit, for every command that takes one."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from jqm_celery.cli import cli

COMMANDS = [
    ["runs", "show"],
    ["runs", "cancel"],
    ["jobs", "show"],
    ["jobs", "cancel"],
    ["jobs", "abort"],
    ["jobs", "requeue"],
    ["log", "--run"],
    ["notifications", "list", "--run"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("value", ["99999999999", "2147483648", "0", "seven"])
def test_an_id_out_of_the_store_s_range_is_one_error_line_naming_the_limit(
    command: list[str], value: str
) -> None:
    result = CliRunner().invoke(cli, [*command, value])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert "2147483647" in errors[0]
    assert "Traceback" not in result.output
