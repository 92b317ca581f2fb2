"""The retry delay: ``min(max_delay, base_delay × factor^(n−1))`` before retry n, with optional jitter."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jqm_celery.definitions import RetryPolicy


def retry_delay(policy: RetryPolicy, retry: int, rng: random.Random | None = None) -> timedelta:
    """The delay before retry number ``retry`` (1 for the first retry).

    With ``policy.jitter`` the delay is drawn uniformly from [delay/2, delay] ("equal jitter"), so
    retries of many jobs that failed together spread out but never wait longer than the formula says.
    """
    if retry < 1:
        raise ValueError(f"retry numbers start at 1, got {retry}")
    base_s = policy.base_delay.total_seconds()
    cap_s = policy.max_delay.total_seconds()
    try:
        delay_s = min(cap_s, base_s * policy.factor ** (retry - 1))
    except OverflowError:
        delay_s = cap_s
    if policy.jitter:
        delay_s = (rng or random).uniform(delay_s / 2, delay_s)
    return timedelta(seconds=delay_s)
