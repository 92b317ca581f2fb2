"""Many rows of one table in one transaction, their ids returned in order, without the ORM's unit of work.

Two implementations, which the writers choose between (see writers): ``*_many`` for any database, and
``*_json`` for PostgreSQL.

SQLAlchemy sends an ``INSERT … RETURNING`` of many rows as one statement with a VALUES row per row
("insertmanyvalues"); with a few thousand parameters, psycopg parses that statement anew on every call,
and the parse costs more than the insert. On PostgreSQL the ids are instead taken from the table's
sequence and the rows go in as one ``INSERT … SELECT`` from a single JSON parameter, in one statement
(and one round trip), whatever the number of rows. (One typed array per column, with ``unnest``, was
measured too: psycopg adapts every element of an array in Python, about six times the JSON's cost.)
SQLite, whose statements run in-process, keeps SQLAlchemy's multi-row INSERT.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Connection,
    Dialect,
    Integer,
    Table,
    TextClause,
    bindparam,
    column,
    insert,
    text,
    update,
)
from sqlalchemy.sql.selectable import TextualSelect

from jqm_celery.store.models import Base


def insert_many(conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert ``rows`` (without ``id``, all setting the same columns); their new ids, in the same order."""
    table = _same_columns(model, rows, "insert_rows")
    if not rows:
        return []
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(conn.execute(statement, list(rows)).scalars())


def insert_json(conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """PostgreSQL: ``insert_many`` as one short statement (ids from the sequence, the rows as JSON)."""
    table = _same_columns(model, rows, "insert_rows")
    if not rows:
        return []
    return _from_json(conn, table, rows, with_ids=True)


def add_many(conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` when their ids are not needed; rows may set different columns (the others keep
    their defaults): one statement per set of columns."""
    for batch in _by_columns(rows):
        conn.execute(insert(cast(Table, model.__table__)), batch)


def add_json(conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """PostgreSQL: ``add_many``, each set of columns as one JSON parameter."""
    for batch in _by_columns(rows):
        _from_json(conn, cast(Table, model.__table__), batch, with_ids=False)


def update_many(
    conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]], *, key: str = "id"
) -> None:
    """Update rows of ``model``'s table by ``key``: each of ``rows`` has the key and the same other columns.

    Every table row whose ``key`` column holds a row's key gets that row's values (one executemany).
    """
    table = _same_columns(model, rows, "update_rows")
    if not rows:
        return
    conn.execute(
        update(table).where(table.c[key] == bindparam("row_key")),
        [{("row_key" if name == key else name): value for name, value in row.items()} for row in rows],
    )


def update_json(
    conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]], *, key: str = "id"
) -> None:
    """PostgreSQL: ``update_many`` as one ``UPDATE … FROM`` the rows as one JSON parameter."""
    table = _same_columns(model, rows, "update_rows")
    if not rows:
        return
    names = tuple(rows[0])
    statement = _json_update(conn.dialect, table, names, key)
    conn.execute(statement, {"rows": _json_rows(conn.dialect, table, names, rows)})


def _same_columns(model: type[Base], rows: Sequence[Mapping[str, Any]], operation: str) -> Table:
    table = cast(Table, model.__table__)
    if len({frozenset(row) for row in rows}) > 1:
        raise ValueError(f"{operation}: every row of {table.name} must set the same columns")
    return table


def _by_columns(rows: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    by_columns: dict[frozenset[str], list[Mapping[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(frozenset(row), []).append(row)
    return list(by_columns.values())


#: A column's bind processing (aware datetimes in UTC, enums), or None where its values go as they are.
Processor = Callable[[Any], Any] | None


@functools.lru_cache(maxsize=256)
def _json_columns(
    dialect: Dialect, table: Table, names: tuple[str, ...]
) -> tuple[list[Processor], list[str]]:
    """Each column's bind processing, and the SQL that reads its value back from a row ``r``.

    Built once per table and set of columns (with the statements below): what a write of one row spent
    most of its time on before."""
    processors: list[Processor] = []
    casts: list[str] = []
    for index, name in enumerate(names):
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            processors.append(None)
            casts.append(f"CAST(r -> {index} AS json)")
            continue
        processors.append(column_type.dialect_impl(dialect).bind_processor(dialect))
        casts.append(f"CAST(r ->> {index} AS {column_type.compile(dialect=dialect)})")
    return processors, casts


@functools.lru_cache(maxsize=256)
def _json_insert(
    dialect: Dialect, table: Table, names: tuple[str, ...], with_ids: bool
) -> TextClause | TextualSelect:
    """The INSERT of ``_from_json``."""
    _, selects = _json_columns(dialect, table, names)
    quote = dialect.identifier_preparer.quote
    into = f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}"
    values = "json_array_elements(CAST(:p_rows AS json)) WITH ORDINALITY AS e(r, n)"
    if not with_ids:
        return text(f"{into}) SELECT {', '.join(selects)} FROM {values}")
    statement = (
        f"WITH ids AS (SELECT nextval(pg_get_serial_sequence(:p_table, 'id')) AS id, n "
        f"FROM generate_series(1, :p_count) AS n), "
        f"inserted AS ({into}, id) SELECT {', '.join(selects)}, ids.id FROM {values} JOIN ids USING (n)) "
        "SELECT id FROM ids ORDER BY n"
    )
    return text(statement).columns(column("id", Integer))


@functools.lru_cache(maxsize=64)
def _json_update(dialect: Dialect, table: Table, names: tuple[str, ...], key: str) -> TextClause:
    """The UPDATE of ``update_json``."""
    _, casts = _json_columns(dialect, table, names)
    quote = dialect.identifier_preparer.quote
    assignments = ", ".join(
        f"{quote(name)} = {cast_}" for name, cast_ in zip(names, casts, strict=True) if name != key
    )
    return text(
        f"UPDATE {quote(table.name)} SET {assignments} "
        f"FROM json_array_elements(CAST(:rows AS json)) AS r "
        f"WHERE {quote(table.name)}.{quote(key)} = {casts[names.index(key)]}"
    )


def _json_rows(
    dialect: Dialect, table: Table, names: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
) -> str:
    """``rows`` as one JSON array, a row an array of its values after their columns' bind processing."""
    processors, _ = _json_columns(dialect, table, names)
    columns: list[Any] = []
    for name, process in zip(names, processors, strict=True):
        values = [row[name] for row in rows]
        columns.append(values if process is None else [process(value) for value in values])
    try:
        return json.dumps(list(zip(*columns, strict=True)), default=_json_default, allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"{table.name}: a value cannot be stored ({exc})") from None


def _from_json(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, with_ids: bool
) -> list[int]:
    """PostgreSQL: one INSERT of all ``rows`` (all setting the same columns), sent as one JSON array.

    Each row is a JSON array of its values; PostgreSQL takes them apart (``->>`` and a cast to the
    column's type, or ``->`` for a JSON column, whose value is nested as it is). Each value first goes
    through its column's bind processing (aware datetimes in UTC, enums) as in any INSERT; a column the
    rows leave out gets the database's default (migration 0006).

    ``with_ids``: the statement first takes one id per row from the table's sequence, inserts each row
    with its id, and returns the ids in the order of ``rows`` (a row's place in the array pairs it with
    its id: an ``INSERT … RETURNING`` does not promise its rows' order).
    """
    if not with_ids:
        names = tuple(rows[0])
        rows_json = _json_rows(conn.dialect, table, names, rows)
        conn.execute(_json_insert(conn.dialect, table, names, False), {"p_rows": rows_json})
        return []
    statement, parameters = _json_insert_with_ids(conn.dialect, table, rows)
    return list(conn.execute(statement, parameters).scalars())


def json_insert(
    dialect: Dialect, model: type[Base], rows: Sequence[Mapping[str, Any]]
) -> tuple[TextualSelect, dict[str, Any]]:
    """``insert_json``'s statement and its parameters, for a caller that runs it itself (the driver):
    it returns the new ids (column ``id``) in the order of ``rows``."""
    return _json_insert_with_ids(dialect, _same_columns(model, rows, "insert_rows"), rows)


def _json_insert_with_ids(
    dialect: Dialect, table: Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[TextualSelect, dict[str, Any]]:
    names = tuple(rows[0])
    statement = cast(TextualSelect, _json_insert(dialect, table, names, True))
    rows_json = _json_rows(dialect, table, names, rows)
    parameters = {"p_rows": rows_json, "p_table": table.name, "p_count": len(rows)}
    return statement, parameters


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not a column value jqm stores")
