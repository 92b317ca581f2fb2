"""The memory benchmark's app, for a worker started as users start one: ``jqm --app benchmarks.cli_app:app
worker --queue NAME`` (``benchmarks.worker --memory``). Its settings come from ``JQM_BENCH_APP_CONF``;
``benchmarks.worker`` (imported for the app) touches the ready file once the worker is ready."""

from __future__ import annotations

import json
import os

from benchmarks.harness import CONF_ENV
from benchmarks.worker import memory_app

app = memory_app(json.loads(os.environ[CONF_ENV]))
