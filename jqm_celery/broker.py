"""The embedded broker: kombu's SQLAlchemy transport, tuned for a SQLite file shared by processes.

kombu hands every transport option to ``create_engine``, so its own ``polling_interval`` cannot be set
with the stock transport; this one keeps transport options and engine options apart, and opens the file
in WAL mode so the worker's polling does not block the producers.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import sqlalchemy as kombu_sqlalchemy
from sqlalchemy import Engine, create_engine, event

#: ``broker_transport`` that selects this transport, with ``broker_url = "sqlite:///path/broker.sqlite"``.
TRANSPORT = "jqm_celery.broker:Transport"


class Channel(kombu_sqlalchemy.Channel):
    def _engine_from_config(self) -> Engine:
        engine = create_engine(self.connection.client.hostname, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine


class Transport(kombu_sqlalchemy.Transport):
    Channel = Channel
