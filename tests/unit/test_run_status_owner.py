"""One module owns a run's status: no other code of the library writes it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The state machine, and the PostgreSQL writer's one-statement form of its ``close`` (statements.finish_run).
OWNERS = {"jqm_celery/store/lifecycle.py", "jqm_celery/store/statements.py"}
WRITES = re.compile(
    r"update\(RunRow\)"  # a Core UPDATE of runs
    r"|\brun\w*\.status\s*=[^=]"  # an ORM run's status assigned
    r"|[\"']status[\"']\s*:\s*RunStatus\."  # a new run's column values
)


def test_only_the_lifecycle_writes_a_runs_status() -> None:
    writers = {
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("jqm_celery", "beat_schedules")
        for path in (ROOT / folder).rglob("*.py")
        if str(path.relative_to(ROOT)) not in OWNERS
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if WRITES.search(line)
    }
    assert writers == set(), "a run's status changes only through jqm_celery/store/lifecycle.py"


def test_the_lifecycle_does_write_it() -> None:
    assert WRITES.search((ROOT / "jqm_celery/store/lifecycle.py").read_text())
