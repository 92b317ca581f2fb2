"""Webhook targets: the notice as a JSON document, POSTed to the rule's URL."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from jqm_celery.notifications.mail import Notice


class WebhookError(Exception):
    """Raised when the webhook's server cannot be reached or answers with a status other than 2xx."""


def post_notice(url: str, notice: Notice, *, timeout_s: float = 30.0) -> int:
    """POST the notice; returns the HTTP status, or raises WebhookError."""
    body = json.dumps(notice.to_json()).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "jqm-celery",
            "X-JQM-Event": notice.event_key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status: Any = response.status
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"the webhook answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise WebhookError(f"the webhook could not be reached: {reason}") from None
    return int(status)
