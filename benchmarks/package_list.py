"""``jqm packages list`` over 10,000 packages on PostgreSQL: one page against loading every package.

The store is filled with the web benchmark's own fill (10,000 packages, 2 entries and a recurrence each,
every fourth ACTIVE, one run each). Measured side by side, alternating, ``--repeat`` times:

(a) ``jqm.packages()``: every package with its definition, what the list loaded before it paged;
(b) ``jqm.package_list(status=ACTIVE, limit=50, offset=2000)``: one filtered page deep in the list;
(c) the whole ``jqm packages list`` command as a process (Python start-up and imports included);
(d) ``jqm --help`` as a process: the command's start-up alone, for scale.

    python -m benchmarks.package_list [--packages 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import Spread, postgres_database
from benchmarks.web import fill_packages
from jqm_celery import JobQueueManager, PackageStatus
from tests.integration.testapp import make_app

ROOT = Path(__file__).resolve().parents[1]


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _command(conf: dict[str, object], *args: str) -> Callable[[], object]:
    env = {**os.environ, "JQM_TEST_CONF": json.dumps(conf), "JQM_APP": "tests.integration.cliapp:app"}

    def run() -> object:
        return subprocess.run(
            [sys.executable, "-m", "jqm_celery.cli", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=True,
        )

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with postgres_database() as url:
        conf: dict[str, object] = {
            "jqm_database_url": url,
            "jqm_auto_migrate": True,
            "task_default_queue": "jqm-bench-list",
        }
        jqm = JobQueueManager.of(make_app(dict(conf)))
        jqm.upgrade_db()
        fill_packages(url, options.packages)
        jqm.package_list(limit=1)  # connect once
        shapes: dict[str, Callable[[], object]] = {
            "(a) jqm.packages(), all": jqm.packages,
            "(b) one filtered page": lambda: jqm.package_list(
                status=PackageStatus.ACTIVE, limit=50, offset=2000
            ),
            "(c) jqm packages list": _command(conf, "packages", "list"),
            "(d) jqm --help": _command(conf, "--help"),
        }
        times: dict[str, list[float]] = {label: [] for label in shapes}
        for _ in range(options.repeat):
            for label, action in shapes.items():
                times[label].append(_timed(action))
    load = os.getloadavg()[0]
    print(f"{options.packages} packages, {options.repeat} alternating repetitions, load {load:.1f}")
    spreads = {label: Spread(tuple(values)) for label, values in times.items()}
    for label, spread in spreads.items():
        print(f"{label:28} median {spread.median * 1000:9.1f} ms  ({spread.range_text('{:.3f}')} s)")
    a, b = spreads["(a) jqm.packages(), all"], spreads["(b) one filtered page"]
    c, d = spreads["(c) jqm packages list"], spreads["(d) jqm --help"]
    print(f"(a)/(b) one page is {a.median / b.median:.0f}× faster than loading all")
    print(f"(c)−(d) the list command beyond start-up: {(c.median - d.median) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
