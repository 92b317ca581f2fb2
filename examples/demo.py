"""The package `jqm demo` runs: a nightly billing run on the embedded default (no servers).

- ``demo.upload_to_bank`` fails on its first attempt and succeeds on its retry (RetryPolicy);
- ``demo.notify_finance`` and ``demo.mark_paid`` share run order 30, so they run in parallel;
- ``demo.archive_pdfs`` fails for good on purpose (JobError, no traceback), and under OnError.CONTINUE
  the run goes on to ``demo.close_period``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from celery import Celery

from jqm_celery import Entry, JobError, OnError, Package, RetryPolicy, embedded_app

PACKAGE = Package(
    "demo-nightly-billing",
    entries=[
        Entry("demo.export_invoices", kwargs={"region": "eu"}, run_order=10),
        Entry(
            "demo.upload_to_bank",
            args=[7],
            run_order=20,
            retry=RetryPolicy(max_retries=3, base_delay=timedelta(seconds=1), max_delay=timedelta(seconds=8)),
        ),
        Entry("demo.notify_finance", run_order=30),
        Entry("demo.mark_paid", run_order=30),
        Entry("demo.archive_pdfs", run_order=40),
        Entry("demo.close_period", run_order=50),
    ],
    on_error=OnError.CONTINUE,
    description="Export, upload (retried once), notify and mark paid in parallel, archive (fails), close.",
)


def make_app(data_dir: str | Path) -> Celery:
    """The demo's Celery app on SQLite files in ``data_dir``, with the demo's tasks registered."""
    app = embedded_app("jqm-demo", data_dir)
    marker = Path(data_dir) / "upload-attempted"

    @app.task(name="demo.export_invoices")
    def export_invoices(region: str) -> int:
        time.sleep(0.2)
        return 42

    @app.task(name="demo.upload_to_bank")
    def upload_to_bank(batch: int) -> str:
        if not marker.exists():
            marker.touch()
            raise ConnectionError(f"bank gateway timed out uploading batch {batch}")
        return f"batch {batch} uploaded"

    @app.task(name="demo.notify_finance")
    def notify_finance() -> None:
        time.sleep(0.5)

    @app.task(name="demo.mark_paid")
    def mark_paid() -> None:
        time.sleep(0.5)

    @app.task(name="demo.archive_pdfs")
    def archive_pdfs() -> None:
        raise JobError("archive volume is full", traceback=False)

    @app.task(name="demo.close_period")
    def close_period() -> None:
        time.sleep(0.1)

    return app
