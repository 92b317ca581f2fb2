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
