"""Many rows of one table in one transaction, their ids returned in order, without the ORM's unit of work.

SQLAlchemy sends an ``INSERT … RETURNING`` of many rows as one statement with a VALUES row per row
("insertmanyvalues"); with a few thousand parameters, psycopg parses that statement anew on every call,
and the parse costs more than the insert. On PostgreSQL the ids are instead taken from the table's
sequence in one round trip, and the rows go in as one ``INSERT … SELECT FROM unnest(…)`` with one array
parameter per column: one short statement, whatever the number of rows. SQLite, whose statements run
in-process, keeps SQLAlchemy's multi-row INSERT.
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
    _unnest(conn, table, rows, ids)
    return ids


def add_rows(conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``model``'s table when their ids are not needed.

    Rows may set different columns (the others keep their defaults): they go in one statement per set of
    columns.
    """
    table = cast(Table, model.__table__)
    by_columns: dict[frozenset[str], list[Mapping[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(frozenset(row), []).append(row)
    for batch in by_columns.values():
        if conn.dialect.name == "postgresql":
            _unnest(conn, table, batch, None)
        else:
            conn.execute(insert(table), batch)


def _unnest(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], ids: list[int] | None) -> None:
    """PostgreSQL: one INSERT of all ``rows`` (all setting the same columns), a typed array per column.

    Each value goes through its column's bind processing (aware datetimes, JSON) as in any INSERT, and a
    column the rows leave out gets its scalar default, as SQLAlchemy would give it.
    """
    dialect = conn.dialect
    columns: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in rows[0]}
    if ids is not None:
        columns["id"] = ids
    for column in table.columns:
        if column.name not in columns and column.default is not None:
            if not getattr(column.default, "is_scalar", False):
                raise ValueError(f"{table.name}.{column.name}: only scalar defaults can be filled in")
            columns[column.name] = [column.default.arg] * len(rows)  # type: ignore[attr-defined]
    quote = dialect.identifier_preparer.quote
    params: dict[str, list[Any]] = {}
    arrays = []
    for index, (name, values) in enumerate(columns.items()):
        column_type = table.c[name].type
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        params[f"p{index}"] = values if process is None else [process(value) for value in values]
        arrays.append(f"CAST(:p{index} AS {column_type.compile(dialect=dialect)}[])")
    names = ", ".join(quote(name) for name in columns)
    conn.execute(
        text(f"INSERT INTO {quote(table.name)} ({names}) SELECT * FROM unnest({', '.join(arrays)})"),
        params,
    )
