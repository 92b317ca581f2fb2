"""Jobs in Flower under their ``package › task`` name, from the moment they are sent.

A job's messages carry a shadow name, which the worker's task events show. The "task-sent" event,
though, is published by whoever sends the message and Celery puts the real task name (``jqm.job``) in
it; when it reaches Flower after the worker's events (they travel on different connections), Flower
merges it in and the job is renamed ``jqm.job``. So the sent event gets the shadow name too.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

_PROTOCOL = 2


def name_sent_events_by_shadow(app: Celery) -> None:
    """Make the app's task-sent events carry a message's shadow name (idempotent)."""
    amqp = app.amqp
    original = amqp.task_protocols[_PROTOCOL]
    if getattr(original, "_jqm_shadow", False):
        return

    def as_task_v2(*args: Any, **kwargs: Any) -> Any:
        message = original(*args, **kwargs)
        shadow = message.headers.get("shadow")
        if shadow and message.sent_event is not None:
            message.sent_event["name"] = shadow
        return message

    as_task_v2._jqm_shadow = True  # type: ignore[attr-defined]
    amqp.task_protocols[_PROTOCOL] = as_task_v2
    # create_task_message caches the protocol's function on first use.
    amqp.__dict__.pop("create_task_message", None)
