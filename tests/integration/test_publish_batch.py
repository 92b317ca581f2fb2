"""publish_batch on Redis: lone tasks sent on its producer and a chain's first task (which takes a producer
from the pool) both wait for the end of the block, then reach the broker together."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery, chain
from kombu import Producer
from kombu import Queue as KombuQueue

from jqm_celery.publishing import publish_batch
from tests.services import REDIS_PUBLISH_DB, REDIS_URL, require

DB = REDIS_PUBLISH_DB


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


def test_each_queue_and_exchange_is_declared_once_a_block_and_every_message_arrives(
    app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared: list[str] = []
    declare = Producer.maybe_declare

    def counting(self: Producer, entity: Any, retry: bool = False, **policy: Any) -> Any:
        declared.append(entity.name)
        return declare(self, entity, retry, **policy)

    monkeypatch.setattr(Producer, "maybe_declare", counting)
    queue = app.conf.task_default_queue
    temporary = KombuQueue(f"{queue}-auto", auto_delete=True)
    noop = app.tasks["batch.noop"]
    client = redis.Redis.from_url(f"{REDIS_URL}/{DB}")
    try:
        with publish_batch(app, chains=False) as producer:
            for _ in range(5):
                noop.si().apply_async(producer=producer)
            for _ in range(2):
                noop.si().apply_async(producer=producer, queue=temporary)
        assert client.llen(queue) == 5
        assert client.llen(temporary.name) == 2
    finally:
        client.delete(temporary.name)
    assert declared.count(queue) == 1, "the task queue, once for five messages"
    assert declared.count("celeryev") == 1, "the event exchange, once for seven task-sent events"
    assert declared.count(temporary.name) == 2, "an auto-delete queue, for every message as Kombu does"
    assert "maybe_declare" not in vars(producer), "the producer goes back to the pool as it was"

    declared.clear()
    with publish_batch(app, chains=False) as again:
        noop.si().apply_async(producer=again)
    assert again is producer, "the pool hands the same producer out again"
    assert declared == [], "its channel has them declared already"

    producer.revive(producer.connection.channel())
    with publish_batch(app, chains=False) as again:
        noop.si().apply_async(producer=again)
    assert declared == [queue, "celeryev"], "a new channel declares them anew"
