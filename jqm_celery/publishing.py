"""Many messages to the broker in one round trip, where the transport can batch them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from celery import Celery


@contextmanager
def publish_batch(app: Celery, *, chains: bool = True) -> Iterator[Any]:
    """Batch this thread's publishes while the block runs; yields a producer to send on.

    Where the transport has publish batches (Kombu ≥ 5.7 on Redis), the messages sent in the block and
    their task-sent events go out in one pipelined round trip when it ends, instead of one round trip
    each (and a Redis client built for each). Elsewhere every send goes out at once, as without it.

    Two producers are batched. The one yielded is held for the block: sends given it skip the pool. A
    chain's ``apply_async`` does not pass a producer on to its first task, which takes one from the app's
    pool; the pool hands the most recently released one out again, so a second producer is opened for
    the batch and released at once, for those sends to get (``chains=False``: only the held one, when the
    block sends few or no chains; each batch costs a Redis client). A Kombu batch is per producer and per
    thread: another thread that gets that producer sends at once, outside this batch. If the block (or
    the flush at its end) raises, messages not yet flushed are dropped: treat all of them as unsent.

    On every transport, a batched producer declares each queue and exchange once per channel, not once
    per message (see ``_declare_once``).
    """
    with app.producer_or_acquire() as held:
        batched = [held]
        if chains:
            with app.producer_or_acquire() as pooled:
                batched.append(pooled)
        with ExitStack() as batches:
            for producer in batched:
                batches.enter_context(_declare_once(producer))
                batch = getattr(producer, "batch", None)
                if batch is not None:
                    batches.enter_context(batch())
            yield held


#: Where a producer keeps what it has declared on its channel (see ``_declare_once``).
_DECLARED = "_jqm_declared"
#: Entities remembered per producer; past this, it forgets them all (a caller making a new Queue per send).
_DECLARED_MAX = 64


@contextmanager
def _declare_once(producer: Any) -> Iterator[None]:
    """While the block runs, ``producer`` declares each entity once per channel, not once per message.

    Celery has every task message declare its queue and every task-sent event the event exchange. Kombu
    remembers what a connection has declared, but first binds a copy of the entity to the channel, on
    every message: a good part of the cost of sending a small message. Here an entity already declared
    on the producer's current channel is not declared again (the producer, which goes back to the pool,
    remembers it for its next blocks); a new channel (after a reconnection) declares everything anew, and
    an entity Kombu does not cache either (an auto-delete queue) is declared for every message.
    """
    declare = producer.maybe_declare

    def maybe_declare(entity: Any, retry: bool = False, **retry_policy: Any) -> Any:
        channel = producer.channel
        seen: tuple[Any, dict[int, Any]] | None = getattr(producer, _DECLARED, None)
        if seen is None or seen[0] is not channel or len(seen[1]) >= _DECLARED_MAX:
            seen = (channel, {})
            setattr(producer, _DECLARED, seen)
        if id(entity) in seen[1]:
            return False
        result = declare(entity, retry, **retry_policy)
        if getattr(entity, "can_cache_declaration", False):
            # The entity is kept so that its id is not reused by another object.
            seen[1][id(entity)] = entity
        return result

    producer.maybe_declare = maybe_declare
    try:
        yield
    finally:
        del producer.maybe_declare
