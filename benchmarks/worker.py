"""A benchmark's Celery worker: ``python -m benchmarks.worker module:factory CONF_JSON [celery args…]``.

With ``JQM_BENCH_PROFILE_DIR`` set, every pool process runs under cProfile and writes
``<dir>/pool-<pid>.prof`` when it exits (read them with ``python -m pstats``); it counts wall time, or CPU
time with ``JQM_BENCH_PROFILE_CLOCK=cpu``.
"""

from __future__ import annotations

import cProfile
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from celery import signals

from benchmarks.harness import PROFILE_ENV, READY_ENV

_profiler: cProfile.Profile | None = None


def _ready(**_: Any) -> None:
    path = os.environ.get(READY_ENV)
    if path:
        Path(path).touch()


def _start_profile(**_: Any) -> None:
    global _profiler
    if os.environ.get(PROFILE_ENV):
        # CPU time with JQM_BENCH_PROFILE_CLOCK=cpu: on a loaded machine, wall time charges a function
        # for the time its process waited for a core.
        cpu = os.environ.get("JQM_BENCH_PROFILE_CLOCK") == "cpu"
        _profiler = cProfile.Profile(time.process_time) if cpu else cProfile.Profile()
        _profiler.enable()


def _dump_profile(**_: Any) -> None:
    folder = os.environ.get(PROFILE_ENV)
    if _profiler is not None and folder:
        _profiler.disable()
        Path(folder).mkdir(parents=True, exist_ok=True)
        _profiler.dump_stats(str(Path(folder) / f"pool-{os.getpid()}.prof"))


signals.worker_ready.connect(_ready)
signals.worker_process_init.connect(_start_profile)
signals.worker_process_shutdown.connect(_dump_profile)


def main(argv: list[str]) -> None:
    module, _, attribute = argv[0].partition(":")
    factory = getattr(importlib.import_module(module), attribute)
    app = factory(json.loads(argv[1]))
    app.worker_main(["worker", *argv[2:]])


if __name__ == "__main__":
    main(sys.argv[1:])
