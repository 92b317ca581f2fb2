"""The command line refuses to run a package stored with a value no store can hold, with the reason."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from jqm_celery import Entry, JobQueueManager, Package
from jqm_celery.store.models import EntryRow, PackageRow, RunRow
from tests.integration.conftest import Backend
from tests.integration.test_cli import jqm_cli

pytestmark = pytest.mark.parametrize("backend", ["embedded"], indirect=True)


def test_running_a_package_stored_with_a_nul_character_exits_1_with_the_reason(
    backend: Backend, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop")]))
    jqm.activate(name)
    bad = {**Entry("tests.noop").to_dict(), "args": ["\u0000"]}
    with jqm._store.transaction() as s:
        package_id = s.scalar(select(PackageRow.id).where(PackageRow.name == name))
        s.execute(update(EntryRow).where(EntryRow.package_id == package_id).values(definition=bad))

    result = jqm_cli(backend, "packages", "run", name)

    assert result.returncode == 1
    assert "args[0] contains a NUL character" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with jqm._store.transaction() as s:
        assert s.scalar(select(func.count()).where(RunRow.package_name == name)) == 0
