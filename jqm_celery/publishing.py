"""Many messages to the broker in one round trip, where the transport can batch them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery


@contextmanager
def publish_batch(app: Celery) -> Iterator[None]:
    """Batch this thread's publishes on the app's pooled producer while the block runs.

    Where the transport has publish batches (Kombu ≥ 5.7 on Redis), the messages sent in the block and
    their task-sent events go out in one pipelined round trip when it ends, instead of one round trip
    each (and a Redis client built for each). Elsewhere every send goes out at once, as without it.

    A chain's ``apply_async`` does not pass a ``producer`` on to its first task: every send acquires one
    from the app's pool, which hands the most recently released one out again. A Kombu batch is per
    producer and per thread, so opening it on that producer batches this thread's sends; a send that gets
    another producer (another thread holds this one) simply goes out at once. If the block (or the
    flush at its end) raises, messages not yet flushed are dropped: treat all of them as unsent.
    """
    with app.producer_or_acquire() as producer:
        batch = getattr(producer, "batch", None)
    if batch is None:
        yield
        return
    with batch():
        yield
