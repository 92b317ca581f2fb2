"""A consumer of the embedded broker in its own process, for the wake-up tests.

``python -m tests.integration.wakeup_consumer BROKER_URL QUEUE COUNT POLL_S``: takes COUNT messages from
QUEUE, printing ``got <payload>`` for each. Both polling intervals are POLL_S: with a huge one, a message
can only reach it through a wake-up.
"""

from __future__ import annotations

import sys

from kombu import Connection

from jqm_celery.broker import TRANSPORT

if __name__ == "__main__":
    url, queue, count, poll_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    options = {"polling_interval": poll_s, "wakeup_check_interval": poll_s}
    with Connection(url, transport=TRANSPORT, transport_options=options) as connection:
        messages = connection.SimpleQueue(queue)
        for _ in range(count):
            message = messages.get(block=True, timeout=None)
            print(f"got {message.payload}", flush=True)
            message.ack()
