"""The embedded broker: a kombu transport on one SQLite file, shared by every process on the machine.

Select it with ``broker_url = "sqlite:///path/broker.sqlite"`` and ``broker_transport = TRANSPORT``
(``embedded_app`` does both). Unlike kombu's in-memory transports it keeps a delivered message until
the consumer acknowledges it:

- a message handed to a consumer becomes invisible for ``visibility_timeout`` seconds (transport
  option, default 3600, as for Redis) and is deleted when acknowledged;
- a rejected message with ``requeue=True`` (Celery does this when a pool process dies and
  ``reject_on_worker_lost`` is set) is visible again at once, marked as redelivered;
- a message whose consumer died without a word is delivered again once its visibility timeout has
  passed;
- bindings live in the file too, so broadcast (fanout) reaches workers in other processes: remote
  control (ping, revoke) works;
- a consumer does not poll while it waits: a publisher wakes it once the message is committed
  (``jqm_celery.broker_wakeup``). A consumer that cannot be woken polls every ``polling_interval``
  seconds (transport option); one that can still looks every ``wakeup_check_interval`` seconds
  (default 1), for messages whose visibility timeout has passed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from typing import Any, NamedTuple

from kombu.transport import virtual
from kombu.transport.virtual.exchange import ExchangeType

from jqm_celery.broker_wakeup import Wakeup
from jqm_celery.sqlite_files import WriteLock, write_ahead

#: ``broker_transport`` that selects this transport.
TRANSPORT = "jqm_celery.broker:Transport"

_ANY_VISIBLE = "SELECT 1 FROM message WHERE queue = ? AND visible_at <= ? LIMIT 1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    visible_at REAL NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS message_queue_visible ON message (queue, visible_at, id);
CREATE TABLE IF NOT EXISTS binding (
    exchange TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    pattern TEXT NOT NULL,
    queue TEXT NOT NULL,
    PRIMARY KEY (exchange, routing_key, pattern, queue)
);
"""


class _Binding(NamedTuple):
    routing_key: str
    pattern: str
    queue: str


class _Database:
    """One SQLite connection per thread on the broker file; writers queue on the file's ``WriteLock``,
    then BEGIN IMMEDIATE.

    A single statement that writes runs in autocommit (``write``): it is atomic alone and costs no BEGIN
    and COMMIT; reads (``read``) take no lock (WAL readers see the last commit and block nobody).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = WriteLock.of(path)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            write_ahead(connection)
            self._local.connection = connection
        return connection

    def read(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """One statement that only reads: it takes no lock."""
        return self._connection().execute(sql, parameters)

    def write(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """One statement that writes, in autocommit, holding the file's write lock."""
        with self._write_lock.held():
            return self._connection().execute(sql, parameters)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        with self._write_lock.held():
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")


class Channel(virtual.Channel):
    supports_fanout = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        client = self.connection.client
        options = client.transport_options
        self.visibility_timeout_s = float(options.get("visibility_timeout", 3600))
        self._db = _Database(_path_of(client.hostname))
        # The transport (kept: kombu unsets ``self.connection`` when the channel closes).
        self._transport = self.connection

    # -- messages ---------------------------------------------------------------------------

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        self._db.write(
            "INSERT INTO message (queue, payload, visible_at) VALUES (?, ?, ?)",
            (queue, json.dumps(message), time.time()),
        )
        self._wakeup().notify()

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        now = time.time()
        # Looking costs no write lock; only a queue that has a message is claimed in a transaction.
        if self._db.read(_ANY_VISIBLE, (queue, now)).fetchone() is None:
            raise Empty()
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT id, payload, deliveries FROM message WHERE queue = ? AND visible_at <= ? "
                "ORDER BY id LIMIT 1",
                (queue, now),
            ).fetchone()
            if row is None:
                raise Empty()
            row_id, payload, deliveries = row
            db.execute(
                "UPDATE message SET visible_at = ?, deliveries = deliveries + 1 WHERE id = ?",
                (now + self.visibility_timeout_s, row_id),
            )
        message: dict[str, Any] = json.loads(payload)
        properties = message.setdefault("properties", {})
        properties["jqm_row"] = row_id
        if deliveries:
            message["redelivered"] = True
            properties.setdefault("delivery_info", {})["redelivered"] = True
        return message

    def _size(self, queue: str) -> int:
        (count,) = self._db.read("SELECT COUNT(*) FROM message WHERE queue = ?", (queue,)).fetchone()
        return int(count)

    def _purge(self, queue: str) -> int:
        with self._db.transaction() as db:
            return db.execute("DELETE FROM message WHERE queue = ?", (queue,)).rowcount

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        super()._delete(queue, *args, **kwargs)
        with self._db.transaction() as db:
            db.execute("DELETE FROM message WHERE queue = ?", (queue,))
            db.execute("DELETE FROM binding WHERE queue = ?", (queue,))

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        """Queues exist implicitly: a message names its queue."""

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return True

    # -- acknowledgement: a delivered message stays in the file until it is acked -----------

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        row = self._row_of(delivery_tag)
        super().basic_ack(delivery_tag, multiple)
        if row is not None:
            self._db.write("DELETE FROM message WHERE id = ?", (row,))
        # A message less in hand: this connection's consumer may take the next one now.
        self._wakeup().notify_self()

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        row = self._row_of(delivery_tag)
        super().basic_reject(delivery_tag, requeue=requeue)
        if not requeue and row is not None:
            self._db.write("DELETE FROM message WHERE id = ?", (row,))
        self._wakeup().notify_self()

    def _restore(self, message: Any) -> None:
        row = message.properties.get("jqm_row")
        if row is None:
            super()._restore(message)
            return
        self._db.write("UPDATE message SET visible_at = ? WHERE id = ?", (time.time(), row))
        self._wakeup().notify()

    def _wakeup(self) -> Wakeup:
        wakeup: Wakeup = self._transport.wakeup
        return wakeup

    def _row_of(self, delivery_tag: Any) -> int | None:
        try:
            message = self.qos.get(delivery_tag)
        except KeyError:
            return None
        row = message.properties.get("jqm_row")
        return int(row) if row is not None else None

    # -- bindings, shared by every process --------------------------------------------------

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        with self._db.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO binding (exchange, routing_key, pattern, queue) VALUES (?, ?, ?, ?)",
                (exchange, routing_key or "", pattern or "", queue or ""),
            )

    def get_table(self, exchange: str) -> list[Any]:
        rows = self._db.read(
            "SELECT routing_key, pattern, queue FROM binding WHERE exchange = ?", (exchange,)
        ).fetchall()
        return [_Binding(*row) for row in rows]

    def _put_fanout(self, exchange: str, message: dict[str, Any], routing_key: str, **kwargs: Any) -> None:
        for binding in self.get_table(exchange):
            self._put(binding.queue, message, **kwargs)

    def typeof(self, exchange: str, default: str = "direct") -> ExchangeType:
        # A process that never declared the exchange still routes broadcasts (celery.pidbox) right.
        if exchange.endswith(".pidbox"):
            default = "fanout"
        elif exchange.endswith("celeryev"):
            default = "topic"
        exchange_type: ExchangeType = super().typeof(exchange, default)
        return exchange_type


class Transport(virtual.Transport):
    """kombu's virtual transport on the SQLite file, whose consumers wait for a wake-up, not a poll."""

    Channel = Channel
    can_parse_url = True
    polling_interval = 0.1
    #: Seconds between looks of a consumer that can be woken (transport option ``wakeup_check_interval``).
    wakeup_check_interval = 1.0
    driver_type = "sqlite"
    driver_name = "sqlite3"
    implements = virtual.Transport.implements.extend(
        asynchronous=False, exchange_type=frozenset(["direct", "topic", "fanout"])
    )

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        options = client.transport_options
        self.wakeup_check_interval = float(options.get("wakeup_check_interval", self.wakeup_check_interval))
        self.wakeup = Wakeup(_path_of(client.hostname))

    def driver_version(self) -> str:
        return sqlite3.sqlite_version

    def drain_events(self, connection: Any, timeout: Any = None, **kwargs: Any) -> None:
        """Deliver one message; between looks, wait for a wake-up (or poll, when none can come)."""
        started = time.monotonic()
        # Listening before the first look: a message committed after it wakes the wait below.
        interval = self.wakeup_check_interval if self.wakeup.listen() else self.polling_interval
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)  # type: ignore[union-attr]
                return
            except Empty:
                wait_s = interval
                if timeout is not None:
                    left_s = timeout - (time.monotonic() - started)
                    if left_s <= 0:
                        raise TimeoutError() from None
                    wait_s = min(wait_s, left_s)
                self.wakeup.wait(wait_s)

    def close_connection(self, connection: Any) -> None:
        super().close_connection(connection)
        self.wakeup.close()


def _path_of(url: str) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(
            f"the embedded broker needs broker_url 'sqlite:///path/to/broker.sqlite', got {url!r}"
        )
    return url[len(prefix) :]
