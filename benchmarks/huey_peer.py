"""The peer of ``benchmarks.embedded``: huey's ``SqliteHuey`` with the same trivial task.

The consumer imports ``benchmarks.huey_peer.HUEY``; the SQLite file comes from ``JQM_BENCH_HUEY_FILE``,
which the benchmark sets for its consumer and for itself before importing this module.
"""

from __future__ import annotations

import os
from typing import Any

from huey import SqliteHuey

#: Path of huey's SQLite file (queue and results).
FILE_ENV = "JQM_BENCH_HUEY_FILE"

# A busy timeout of 30 s, as jqm's SQLite files have (huey's default of 5 s fails under load).
HUEY = SqliteHuey("jqm-bench", filename=os.environ.get(FILE_ENV, "huey-bench.sqlite"), timeout=30)


@HUEY.task()
def noop(*args: Any) -> bool:
    """Does nothing; returns True so that huey stores a result to wait on (it drops None)."""
    return True
