"""A package beat cannot start (a bad definition stored before today's checks) stops on its own; the good
package beside it still fires and its run reaches a real worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest
from sqlalchemy import select, update

from jqm_celery import Entry, LogKind, PackageStatus, RunStatus
from jqm_celery.store.models import EntryRow, PackageRow
from tests.integration.conftest import Backend
from tests.integration.test_beat import MINUTE, Beat, _every_minute, _package


@pytest.fixture
def beat(backend: Backend, worker: object) -> Iterator[Beat]:
    with closing(Beat(backend)) as started:
        yield started


def _poison(beat: Beat, name: str) -> None:
    """Store an entry whose args hold a NUL character, bypassing the checks (as an older version could)."""
    bad = {**Entry("tests.sleep").to_dict(), "args": ["\u0000"]}
    with beat.jqm._store.transaction() as s:
        package_id = s.scalar(select(PackageRow.id).where(PackageRow.name == name))
        s.execute(update(EntryRow).where(EntryRow.package_id == package_id).values(definition=bad))


def _status(beat: Beat, name: str) -> PackageStatus:
    with beat.jqm._store.transaction() as s:
        return PackageStatus(s.scalar(select(PackageRow.status).where(PackageRow.name == name)))


@pytest.mark.parametrize("backend", ["embedded", "redis-pg"], indirect=True)
def test_a_bad_package_stops_with_its_reason_and_the_good_one_beside_it_runs(beat: Beat, name: str) -> None:
    good, bad = f"{name}-good", f"{name}-bad"
    for each in (good, bad):
        beat.jqm.save(_package(each, _every_minute()))
        beat.jqm.activate(each)
    _poison(beat, bad)
    beat.clock.advance(MINUTE)

    beat.tick()

    [run] = beat.runs(good)
    assert run.wait(timeout=30).status is RunStatus.SUCCEEDED
    assert _status(beat, bad) is PackageStatus.ERROR
    stops = beat.jqm.log_entries(kind=LogKind.PACKAGE_STOPPED, limit=10_000)
    [stopped] = [entry for entry in stops if entry.package == bad]
    assert "NUL character" in (stopped.message or "")
    assert _status(beat, good) is PackageStatus.ACTIVE
