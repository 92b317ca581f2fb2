"""The retry delay: min(max_delay, base_delay × factor^(n−1))."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from jqm_celery import RetryPolicy
from jqm_celery.backoff import retry_delay

POLICY = RetryPolicy(max_retries=10, base_delay=timedelta(seconds=30), max_delay=timedelta(minutes=10))


@pytest.mark.parametrize(
    ("retry", "seconds"), [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 600), (9, 600)]
)
def test_the_delay_doubles_from_the_base_delay_up_to_the_max_delay(retry: int, seconds: int) -> None:
    assert retry_delay(POLICY, retry) == timedelta(seconds=seconds)


def test_the_factor_is_configurable() -> None:
    policy = RetryPolicy(
        max_retries=3, base_delay=timedelta(seconds=1), factor=3, max_delay=timedelta(hours=1)
    )
    assert [retry_delay(policy, n).total_seconds() for n in (1, 2, 3)] == [1, 3, 9]


def test_a_huge_retry_number_is_capped_instead_of_overflowing() -> None:
    assert retry_delay(POLICY, 100_000) == timedelta(minutes=10)


def test_jitter_stays_between_half_the_delay_and_the_delay() -> None:
    policy = RetryPolicy(
        max_retries=3, base_delay=timedelta(seconds=10), max_delay=timedelta(minutes=1), jitter=True
    )
    rng = random.Random(7)
    delays = [retry_delay(policy, 2, rng).total_seconds() for _ in range(200)]
    assert min(delays) >= 10
    assert max(delays) <= 20
    assert len(set(delays)) > 100


def test_retry_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        retry_delay(POLICY, 0)
