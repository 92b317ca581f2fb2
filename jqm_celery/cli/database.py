"""A database error of any command as one line: which database (password hidden), what failed, the fix."""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from jqm_celery.store.engine import redact


def describe(exc: DBAPIError, database_url: str | None, app_option: str) -> str:
    """``exc`` (raised while talking to the store at ``database_url``) as one line that names the fix.

    ``app_option`` is how the user named their app (``--app proj:app`` or ``""``), so the commands the
    message suggests run against the same store.
    """
    where = "" if database_url is None else f" {redact(database_url)}"
    reason = _first_line(exc.orig if exc.orig is not None else exc)
    missing = re.search(r'database "([^"]+)" does not exist', reason)
    if missing:
        create = _createdb(database_url or "", missing.group(1))
        fix = f"create it ({create}), then run `jqm{app_option} db upgrade`"
    elif re.search(r"relation .* does not exist|no such table|undefined table", reason, re.IGNORECASE):
        fix = f"run `jqm{app_option} db upgrade`"
    elif re.search(r"password authentication failed|authentication failed", reason, re.IGNORECASE):
        fix = "check the user and password in jqm_database_url"
    elif re.search(r"connection refused|could not connect|timeout|name or service", reason, re.IGNORECASE):
        fix = "is the database server running and reachable? check the host and port in jqm_database_url"
    else:
        fix = "check jqm_database_url on your Celery app"
    return f"the jqm store{where}: {reason}; {fix}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    # psycopg's "connection failed: connection to server at …, port … failed: FATAL:  …" keeps the cause.
    return re.sub(r"\s+", " ", line.rsplit("FATAL:", 1)[-1]).strip()


def _createdb(database_url: str, name: str) -> str:
    try:
        url = make_url(database_url)
    except ArgumentError:
        return f'CREATE DATABASE "{name}"'
    options = [f"-h {url.host}" if url.host else "", f"-p {url.port}" if url.port else ""]
    options.append(f"-U {url.username}" if url.username else "")
    return " ".join(["createdb", *(o for o in options if o), name])
