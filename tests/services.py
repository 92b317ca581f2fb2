"""The real servers the tests talk to, on loopback; a test skips when one is absent unless CI is set."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

POSTGRES_ADMIN_URL = os.environ.get("JQM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("JQM_TEST_REDIS", "redis://127.0.0.1:6379")
#: Every PostgreSQL database a test creates is named with this prefix and dropped afterwards.
POSTGRES_DATABASE_PREFIX = os.environ.get("JQM_TEST_POSTGRES_PREFIX", "jqm_test_")
RABBITMQ_URL = os.environ.get("JQM_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")


#: The pytest-xdist worker this process is (0 for ``gw0`` or without xdist). The tests run in two
#: processes (``-n 2`` in pyproject.toml), a test module wholly in one of them (``--dist loadfile``).
XDIST_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def _redis_db(purpose: str, default: int) -> int:
    return int(os.environ.get(f"JQM_TEST_REDIS_{purpose}_DB", default))


#: What the second xdist process adds to the broker's and the results' database numbers.
XDIST_DB_STEP = 10


# The Redis database numbers the tests use, one per purpose (JQM_TEST_REDIS_<PURPOSE>_DB overrides each):
# no test names a database number of its own. The broker's and the results' databases are used by every
# integration module, so each xdist process has its own pair: the second one adds XDIST_DB_STEP (0 and 1
# become 10 and 11), so that two processes never consume, restore (a visibility timeout) or flush each
# other's messages. The others belong to one module each, which runs wholly in one process.
REDIS_BROKER_DB = _redis_db("BROKER", 0) + XDIST_DB_STEP * XDIST_WORKER
REDIS_RESULTS_DB = _redis_db("RESULTS", 1) + XDIST_DB_STEP * XDIST_WORKER
REDIS_EXAMPLES_DB = _redis_db("EXAMPLES", 2)
REDIS_WALKTHROUGH_DB = _redis_db("WALKTHROUGH", 7)
REDIS_REDELIVERY_DB = _redis_db("REDELIVERY", 8)
REDIS_PUBLISH_DB = _redis_db("PUBLISH", 9)


def redis_url(db: int) -> str:
    """The URL of one of the test Redis databases above."""
    return f"{REDIS_URL}/{db}"


_PORTS = {"postgresql": 5432, "redis": 6379, "rabbitmq": 5672}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def require(service: str) -> None:
    """Skip the test when the service is not running — or fail, when CI is set."""
    if _listening(_PORTS[service]):
        return
    message = f"{service} is not listening on 127.0.0.1:{_PORTS[service]}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must start it (.ci/run)")
    pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the duration; yields its SQLAlchemy URL."""
    require("postgresql")
    import psycopg

    name = f"{POSTGRES_DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
