"""A database error of the CLI as one line: the store (password hidden), the cause, the fix."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from jqm_celery.cli.database import describe

URL = "postgresql+psycopg://ann:secret@db.example.com:5433/billing"


def error(cls: type[OperationalError] | type[ProgrammingError], message: str) -> OperationalError:
    return cls("SELECT 1", {}, Exception(message))


@pytest.mark.parametrize(
    ("cls", "cause", "fix"),
    [
        (
            OperationalError,
            'connection failed: connection to server at "1.2.3.4", port 5433 failed: FATAL:  database '
            '"billing" does not exist',
            "create it (createdb -h db.example.com -p 5433 -U ann billing), "
            "then run `jqm --app b:app db upgrade`",
        ),
        (ProgrammingError, 'relation "jqm_package" does not exist', "run `jqm --app b:app db upgrade`"),
        (
            OperationalError,
            'FATAL:  password authentication failed for user "ann"',
            "check the user and password",
        ),
        (OperationalError, "connection refused", "is the database server running and reachable?"),
        (OperationalError, "disk I/O error", "check jqm_database_url on your Celery app"),
    ],
)
def test_each_cause_gets_its_fix_on_one_line_without_the_password(
    cls: type[OperationalError], cause: str, fix: str
) -> None:
    line = describe(error(cls, cause), URL, " --app b:app")

    assert line.startswith("the jqm store postgresql+psycopg://ann:***@db.example.com:5433/billing: ")
    assert fix in line
    assert "secret" not in line
    assert "\n" not in line


def test_a_store_that_was_never_opened_is_described_without_its_url() -> None:
    line = describe(error(OperationalError, "connection refused"), None, "")
    assert line.startswith("the jqm store: connection refused; ")
