"""Pooled PostgreSQL connections are pinged only after being idle, and a stale one is replaced."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from jqm_celery.store import Store, engine
from tests.services import POSTGRES_ADMIN_URL, postgres_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def _pings(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    seen: list[object] = []
    ping = store.engine.dialect.do_ping

    def counting_ping(dbapi_connection: object) -> bool:
        seen.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(store.engine.dialect, "do_ping", counting_ping)
    return seen


def test_a_connection_used_a_moment_ago_is_not_pinged(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "PING_AFTER_IDLE_S", 3600.0)
    store = Store(pg_url, auto_migrate=True)
    try:
        store.package_names()
        pings = _pings(store, monkeypatch)
        for _ in range(3):
            store.package_names()
        assert pings == []
    finally:
        store.dispose()


def test_a_stale_idle_connection_is_replaced_before_use(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "PING_AFTER_IDLE_S", 0.0)
    store = Store(pg_url, auto_migrate=True)
    try:
        store.ensure_schema()
        with store.engine.connect() as conn:
            backend_pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            killed = conn.connection.dbapi_connection
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))
        pings = _pings(store, monkeypatch)
        for _ in range(3):
            assert store.package_names() == []
        assert killed in pings
    finally:
        store.dispose()
