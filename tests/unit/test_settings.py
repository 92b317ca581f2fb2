"""``jqm_*`` settings read from the app's conf: the retry delays a test may skip."""

from __future__ import annotations

import pytest

from jqm_celery.errors import ConfigError
from jqm_celery.settings import Settings


def test_retry_delays_are_real_unless_the_conf_says_skip() -> None:
    assert Settings.from_conf({}).retry_delays == "real"
    assert Settings.from_conf({"jqm_retry_delays": "skip"}).retry_delays == "skip"


def test_an_unknown_retry_delays_value_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="jqm_retry_delays must be one of 'real', 'skip', got 'fast'"):
        Settings.from_conf({"jqm_retry_delays": "fast"})


def test_the_store_retry_time_is_a_minute_unless_the_conf_says_otherwise() -> None:
    assert Settings.from_conf({}).store_retry_s == 60.0
    assert Settings.from_conf({"jqm_store_retry_s": 5}).store_retry_s == 5.0


@pytest.mark.parametrize("value", [0, -1, "60", True, float("inf"), float("nan")])
def test_a_store_retry_time_that_is_not_a_positive_number_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="jqm_store_retry_s must be a number of seconds greater than 0"):
        Settings.from_conf({"jqm_store_retry_s": value})
