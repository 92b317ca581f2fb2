"""What the memory benchmarks share (``benchmarks.worker --memory``, ``benchmarks.beat_process --memory``).

Resident memory is read from ``/proc`` (Linux): ``VmRSS`` of a process, in MiB. Import time is the wall
time of a fresh interpreter that builds an app (plain Celery, or the same with a ``JobQueueManager``), and
``python -X importtime``'s cumulative figure for ``import jqm_celery``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import celery

from benchmarks.harness import ROOT, Spread

#: What a worker or beat must not import unless it runs it: the web UI, the CLI, rich, Alembic, Django.
FORBIDDEN = ("fastapi", "starlette", "jinja2", "click", "rich", "alembic", "mako", "pygments", "django")

_CELERY = "import celery.app.base, celery.app.trace, kombu.serialization"
_PLAIN_APP = "from celery import Celery; app = Celery('bench'); app.loader"
_JQM_APP = _PLAIN_APP + "; from jqm_celery import JobQueueManager; JobQueueManager(app)"


def rss_mib(pid: int) -> float:
    """Resident memory of a process now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"process {pid} has no VmRSS")


def private_mib(pid: int) -> float:
    """Memory of a process that no other process shares (USS: Private_Clean + Private_Dirty), in MiB.

    A prefork pool process shares with the worker's main process the pages it has not written since
    the fork: what another pool process costs is about this figure, not its RSS.
    """
    kib = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            kib += int(line.split()[1])
    return kib / 1024


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (a prefork worker's pool processes)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def top_packages(modules: Sequence[str]) -> set[str]:
    return {name.split(".", 1)[0] for name in modules}


def forbidden_in(modules: Sequence[str]) -> list[str]:
    """The forbidden top-level packages among ``modules``."""
    return sorted(top_packages(modules) & set(FORBIDDEN))


def app_start_seconds(with_jqm: bool) -> float:
    """Wall time of a fresh interpreter that builds the app (and its manager, ``with_jqm``)."""
    with tempfile.TemporaryDirectory(prefix="jqm-bench-import-") as folder:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", _JQM_APP if with_jqm else _PLAIN_APP],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
        )
        return time.perf_counter() - started


def import_time_ms() -> tuple[float, list[tuple[str, float]]]:
    """What importing the manager adds to Celery's own imports (ms, ``-X importtime``), and its parts.

    Celery and kombu are imported first (a worker has them anyway); the figure is the cumulative time of
    what ``import jqm_celery.manager`` then imports, and the parts its own time by top-level package.
    """
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"{_CELERY}; import jqm_celery.manager"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[tuple[str, bool, int, int]] = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "[us]" not in line:
            own_us, cumulative_us, module = line.removeprefix("import time:").split("|")
            rows.append((module.strip(), module.startswith("  "), int(own_us), int(cumulative_us)))
    # importtime lists a module after what it imported: jqm's part runs from the top-level line before
    # the first top-level jqm_celery line to the last one.
    tops = [i for i, (name, nested, _, _) in enumerate(rows) if not nested and name.startswith("jqm_celery")]
    start = max(i for i, (_, nested, _, _) in enumerate(rows[: tops[0]]) if not nested) + 1
    part = rows[start : tops[-1] + 1]
    total = sum(cumulative for _, nested, _, cumulative in part if not nested) / 1000
    own: dict[str, float] = {}
    for name, _, self_us, _ in part:
        top = name.split(".", 1)[0]
        own[top] = own.get(top, 0.0) + self_us / 1000
    return total, sorted(own.items(), key=lambda item: -item[1])


#: What the manager's imports are made of, in the order a worker loads them.
_STEPS = (
    ("SQLAlchemy core", "import sqlalchemy"),
    ("SQLAlchemy ORM", "import sqlalchemy.orm"),
    ("psycopg and its dialect", "import psycopg, sqlalchemy.dialects.postgresql.psycopg"),
    ("jqm's store (models, statements)", "import jqm_celery.store"),
    ("the rest of jqm (manager, runtime…)", "import jqm_celery.manager"),
    ("JobQueueManager(app)", "jqm_celery.manager.JobQueueManager(app)"),
)
_MEASURE_STEPS = """
import json
from celery import Celery
import celery.apps.worker, celery.app.trace, kombu.serialization, kombu.transport.redis
app = Celery("bench")
app.loader

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

steps = json.loads(STEPS)
added = []
for _, code in steps:
    before = rss()
    exec(code)
    added.append(rss() - before)
print(json.dumps(added))
"""


def import_rss_breakdown() -> str:
    """What each part of the manager's imports adds to a fresh interpreter's RSS, after Celery's own."""
    steps = json.dumps(_STEPS)
    with tempfile.TemporaryDirectory(prefix="jqm-bench-import-") as folder:
        done = subprocess.run(
            [sys.executable, "-c", f"STEPS = {steps!r}" + _MEASURE_STEPS],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        )
    added = json.loads(done.stdout.splitlines()[-1])
    parts = ", ".join(f"{label} {mib:.1f}" for (label, _), mib in zip(_STEPS, added, strict=True))
    return f"   RSS each part adds after Celery's own imports (MiB): {parts}; total {sum(added):.1f}"


def compare(label: str, jqm: Sequence[float], peer: Sequence[float], unit: str = "MiB") -> str:
    """One line: jqm's median and spread, the peer's, and the ratio (median; range of each pair's ratio)."""
    ratios = Spread(tuple(a / b for a, b in zip(jqm, peer, strict=True)))
    ours, theirs = Spread(tuple(jqm)), Spread(tuple(peer))
    return (
        f"   {label:<30} jqm {ours.median:7.1f} {unit} ({ours.range_text('{:.1f}')})   "
        f"peer {theirs.median:7.1f} {unit} ({theirs.range_text('{:.1f}')})   "
        f"ratio {statistics.median(ratios.values):.2f} ({ratios.range_text()})"
    )


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min), {os.cpu_count()} cores"


def import_report(repeat: int) -> str:
    """App start time side by side (alternating), and ``import jqm_celery``'s import time."""
    plain: list[float] = []
    jqm: list[float] = []
    totals: list[float] = []
    own: list[tuple[str, float]] = []
    for index in range(repeat):
        for with_jqm in (False, True) if index % 2 == 0 else (True, False):
            (jqm if with_jqm else plain).append(app_start_seconds(with_jqm) * 1000)
        total, own = import_time_ms()
        totals.append(total)
    heaviest = ", ".join(f"{name} {ms:.0f}" for name, ms in own[:8])
    return "\n".join(
        [
            "   a fresh interpreter building the app (peer: plain Celery app; jqm: + JobQueueManager):",
            compare("start, ms", jqm, plain, unit="ms"),
            f"   import jqm_celery.manager after Celery (-X importtime, cumulative): "
            f"{Spread(tuple(totals)).median:.0f} ms ({Spread(tuple(totals)).range_text('{:.0f}')})",
            f"   its own import time by top-level package (last repetition, ms): {heaviest}",
            import_rss_breakdown(),
        ]
    )


def arguments(prog: str) -> argparse.ArgumentParser:
    """The options both memory benchmarks take (``--memory`` selects them)."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog} --memory")
    parser.add_argument("--memory", action="store_true", required=True)
    parser.add_argument("--repeat", type=int, default=3, help="alternating repetitions (default 3)")
    return parser


def print_report(title: str, report: Callable[[], str]) -> None:
    print(
        f"jqm-celery {title}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}, "
        f"Celery {celery.__version__}",
        flush=True,
    )
    print(report(), flush=True)
