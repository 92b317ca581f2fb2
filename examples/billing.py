"""The README's example: a nightly billing package on Redis + PostgreSQL.

Run it from this folder, as you would from your own project's folder with your own ``billing.py``:

    pip install 'jqm-celery[redis,postgres]'   # in a clone of jqm-celery: pip install '..[redis,postgres]'
    createdb -h 127.0.0.1 -U postgres billing  # the store's database (see BILLING_DATABASE_URL)
    jqm --app billing:app db upgrade           # creates the store's tables
    jqm --app billing:app worker               # workers (or: celery -A billing worker --loglevel=INFO)

then, in a second shell in the same folder:

    python billing.py                          # saves, activates and runs the package, prints its log

BILLING_BROKER_URL and BILLING_DATABASE_URL override the URLs below.
"""

import os
from datetime import timedelta

from celery import Celery

from jqm_celery import Entry, JobQueueManager, OnError, Package, RetryPolicy

app = Celery("billing", broker=os.environ.get("BILLING_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.jqm_database_url = os.environ.get(
    "BILLING_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/billing"
)  # default: a SQLite file
jqm = JobQueueManager(app)


@app.task(name="billing.export_invoices")
def export_invoices(region: str) -> int:
    return 128  # an ordinary Celery task: no base class, no decorator of ours needed


@app.task(name="billing.upload_to_bank")
def upload_to_bank(batch: int) -> str:
    return f"batch {batch} uploaded"


@app.task(name="billing.notify_finance")
def notify_finance() -> None:
    pass


@app.task(name="billing.mark_paid")
def mark_paid() -> None:
    pass


NIGHTLY_BILLING = Package(
    "nightly-billing",
    entries=[
        Entry("billing.export_invoices", kwargs={"region": "eu"}, run_order=10),
        Entry(
            "billing.upload_to_bank",
            args=[7],
            run_order=20,
            retry=RetryPolicy(
                max_retries=5, base_delay=timedelta(seconds=30), max_delay=timedelta(minutes=10)
            ),
        ),
        Entry("billing.notify_finance", run_order=30),
        Entry("billing.mark_paid", run_order=30),  # same run order: parallel with notify_finance
    ],
    on_error=OnError.STOP,  # STOP | FINISH_THEN_STOP | CONTINUE
)


def main() -> None:
    jqm.save(NIGHTLY_BILLING)
    jqm.activate("nightly-billing")
    run = jqm.run_now("nightly-billing")
    run = run.wait(timeout=60)  # the finished run: status, jobs, attempts
    print(f"run {run.id}: {run.status}")
    for log in jqm.log_entries(package="nightly-billing"):
        print(log.entry_task, log.status, log.retry, log.error)
    jqm.hold("nightly-billing")


if __name__ == "__main__":
    main()
