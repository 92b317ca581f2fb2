"""Many rows of one table in one transaction, their ids returned in order, without the ORM's unit of work.

SQLAlchemy sends an ``INSERT … RETURNING`` of many rows as one statement with a VALUES row per row
("insertmanyvalues"); with a few thousand parameters, psycopg parses that statement anew on every call,
and the parse costs more than the insert. On PostgreSQL the ids are instead taken from the table's
sequence in one round trip and the rows sent as one pipelined ``executemany`` of a short, prepared
statement. SQLite, whose statements run in-process, keeps the single ``INSERT … RETURNING``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, text

from jqm_celery.store.models import Base


def insert_rows(conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert ``rows`` (without ``id``) into ``model``'s table; their new ids, in the same order."""
    table = cast(Table, model.__table__)
    if not rows:
        return []
    if len({frozenset(row) for row in rows}) > 1:
        raise ValueError(f"insert_rows: every row of {table.name} must set the same columns")
    if conn.dialect.name != "postgresql":
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(conn.execute(statement, list(rows)).scalars())
    ids = list(
        conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
            {"table": table.name, "count": len(rows)},
        ).scalars()
    )
    conn.execute(insert(table), [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)])
    return ids


def add_rows(conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``model``'s table when their ids are not needed: an ``executemany`` per shape.

    An ``executemany`` takes its columns from the first row, so rows that set different columns (the
    others keep their defaults) are sent in one batch per set of columns.
    """
    by_columns: dict[frozenset[str], list[Mapping[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(frozenset(row), []).append(row)
    for batch in by_columns.values():
        conn.execute(insert(model), batch)
