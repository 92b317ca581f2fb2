"""jqm's database result backend counts each chord's finished tasks, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery import Celery
from celery.result import AsyncResult, result_from_tuple
from sqlalchemy import func, select, update
from sqlalchemy.pool import NullPool

from jqm_celery.results import DatabaseResults, chord_parts, chords


@pytest.fixture
def results(database_url: str) -> Iterator[DatabaseResults]:
    app = Celery("jqm-results-test", set_as_current=False)
    backend = DatabaseResults(app=app, url=database_url, expires=timedelta(hours=1))
    yield backend
    backend.session_manager.invalidate(database_url)


def _send(results: DatabaseResults, group_id: str, size: int) -> None:
    """What Celery does when it sends a chord: ``apply_chord`` with the header's results, then, as it
    sends the group, ``set_chord_size``."""
    header = [AsyncResult(f"{group_id}-{i}", app=results.app) for i in range(size)]
    results.apply_chord((group_id, header), body=None)
    results.set_chord_size(group_id, size)


def _rows(results: DatabaseResults, table: object) -> int:
    session = results.ResultSession()
    try:
        return int(session.scalar(select(func.count()).select_from(table)))  # type: ignore[arg-type]
    finally:
        session.close()


def test_each_task_of_a_group_is_counted_once(results: DatabaseResults) -> None:
    _send(results, "g1", 3)
    first = results._count_part("g1", "g1-0")
    assert first is not None
    assert first[:2] == (1, 3)
    assert results._count_part("g1", "g1-0") is None  # delivered again: not counted twice
    assert [c[0] for c in (results._count_part("g1", "g1-1"), results._count_part("g1", "g1-2")) if c] == [
        2,
        3,
    ]


def test_the_header_is_kept_for_the_join(results: DatabaseResults) -> None:
    _send(results, "g2", 2)
    counted = results._count_part("g2", "g2-1")
    assert counted is not None
    restored = result_from_tuple(json.loads(counted[2]), app=results.app)
    assert restored.id == "g2"
    assert [r.id for r in restored.results] == ["g2-0", "g2-1"]


def test_tasks_ending_together_are_each_counted_and_one_sees_the_last_count(results: DatabaseResults) -> None:
    size = 8
    _send(results, "g3", size)
    counts: list[int | None] = []
    start = threading.Barrier(size)

    def end(i: int) -> None:
        start.wait()
        counted = results._count_part("g3", f"g3-{i}")
        counts.append(None if counted is None else counted[0])

    threads = [threading.Thread(target=end, args=(i,)) for i in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(c for c in counts if c is not None) == list(range(1, size + 1))


def test_a_chord_sent_before_counting_is_left_to_celerys_chord_unlock(results: DatabaseResults) -> None:
    assert results._count_part("unknown-group", "t1") is None
    assert _rows(results, chord_parts) == 0


def test_a_chord_sent_again_under_its_group_id_counts_anew(results: DatabaseResults) -> None:
    _send(results, "g4", 2)
    assert results._count_part("g4", "g4-0") is not None
    _send(results, "g4", 2)
    again = results._count_part("g4", "g4-0")
    assert again is not None
    assert again[0] == 1


def test_cleanup_forgets_chords_never_joined_once_results_expire(results: DatabaseResults) -> None:
    _send(results, "old", 2)
    _send(results, "new", 2)
    assert results._count_part("old", "old-0") is not None
    session = results.ResultSession()
    try:
        long_ago = datetime.now(UTC) - timedelta(hours=2)
        session.execute(update(chords).where(chords.c.group_id == "old").values(sent_at=long_ago))
        session.commit()
    finally:
        session.close()
    results.cleanup()
    session = results.ResultSession()
    try:
        assert list(session.scalars(select(chords.c.group_id))) == ["new"]
    finally:
        session.close()
    assert _rows(results, chord_parts) == 0


def test_a_part_that_ends_before_the_group_size_is_known_is_counted_and_waits(
    results: DatabaseResults,
) -> None:
    header = [AsyncResult(f"g5-{i}", app=results.app) for i in range(2)]
    results.apply_chord(("g5", header), body=None)
    early = results._count_part("g5", "g5-0")
    assert early is not None
    assert early[:2] == (1, None)
    results.set_chord_size("g5", 2)
    last = results._count_part("g5", "g5-1")
    assert last is not None
    assert last[:2] == (2, 2)


def test_a_chord_sent_twice_at_once_under_one_group_id_is_counted_once(results: DatabaseResults) -> None:
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def send() -> None:
        start.wait()
        try:
            _send(results, "g6", 2)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert _rows(results, chords) == 1
    assert [c[:2] for c in (results._count_part("g6", "g6-0"), results._count_part("g6", "g6-1")) if c] == [
        (1, 2),
        (2, 2),
    ]


def test_sqlite_results_are_written_ahead_without_a_flush_per_commit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    backend = DatabaseResults(app=Celery("jqm-results-wal", set_as_current=False), url=url)
    backend.store_result("t1", 42, "SUCCESS")
    assert backend.get_result("t1") == 42
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    session = backend.ResultSession()
    try:
        assert session.connection().exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        session.close()


def test_a_process_that_has_not_forked_keeps_one_engine_with_no_pool(results: DatabaseResults) -> None:
    # Celery's own manager builds an engine for every session there; a forked child uses Celery's.
    first, second = results.ResultSession(), results.ResultSession()
    try:
        assert first.get_bind() is second.get_bind()
        assert isinstance(first.get_bind().pool, NullPool)  # nothing kept open to cross a fork
    finally:
        first.close()
        second.close()
