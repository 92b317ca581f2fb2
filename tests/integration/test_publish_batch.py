"""publish_batch on Redis: lone tasks sent on its producer and a chain's first task (which takes a producer
from the pool) both wait for the end of the block, then reach the broker together."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery, chain

from jqm_celery.publishing import publish_batch
from tests.services import REDIS_URL, require

DB = 9


@pytest.fixture
def app() -> Iterator[Celery]:
    require("redis")
    app = Celery("publish-batch-tests", broker=f"{REDIS_URL}/{DB}", set_as_current=False)
    app.conf.task_default_queue = f"jqm-batch-{uuid.uuid4().hex[:8]}"
    app.conf.task_send_sent_event = True
    app.task(name="batch.noop", shared=False)(_noop)
    yield app
    redis.Redis.from_url(f"{REDIS_URL}/{DB}").delete(app.conf.task_default_queue)


def _noop() -> None:
    return None


def test_lone_and_chained_sends_are_held_until_the_block_ends_then_all_arrive(app: Celery) -> None:
    queue = app.conf.task_default_queue
    client = redis.Redis.from_url(f"{REDIS_URL}/{DB}")
    noop = app.tasks["batch.noop"]
    with publish_batch(app) as producer:
        noop.si().apply_async(producer=producer)
        chain(noop.si(), noop.si()).apply_async()
        noop.si().apply_async(producer=producer)
        assert client.llen(queue) == 0, "nothing is sent before the block ends"
    assert client.llen(queue) == 3, "two lone tasks and the chain's first task"


def test_without_chains_only_the_held_producer_is_batched(app: Celery) -> None:
    queue = app.conf.task_default_queue
    client = redis.Redis.from_url(f"{REDIS_URL}/{DB}")
    noop = app.tasks["batch.noop"]
    with publish_batch(app, chains=False) as producer:
        noop.si().apply_async(producer=producer)
        chain(noop.si(), noop.si()).apply_async()
        assert client.llen(queue) == 1, "the chain's first task went out at once; the lone task waits"
    assert client.llen(queue) == 2
