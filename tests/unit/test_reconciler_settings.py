"""The reconciler's settings: seconds > 0, with defaults, refused otherwise with the setting's name."""

from __future__ import annotations

from typing import Any

import pytest

from jqm_celery.errors import ConfigError
from jqm_celery.recovery import lost_after_s, reconcile_interval_s


def test_the_settings_have_defaults_of_the_order_of_a_minute() -> None:
    assert reconcile_interval_s({}) == 30.0
    assert lost_after_s({}) == 60.0


def test_a_number_of_seconds_is_taken() -> None:
    assert lost_after_s({"jqm_lost_after_s": 2}) == 2.0
    assert lost_after_s({"jqm_lost_after_s": 0.5}) == 0.5


@pytest.mark.parametrize("value", [0, -1, True, "60"])
def test_anything_else_is_refused_with_the_settings_name(value: Any) -> None:
    with pytest.raises(
        ConfigError, match=r"jqm_lost_after_s must be a number of seconds > 0, got .*; e\.g\. 60"
    ):
        lost_after_s({"jqm_lost_after_s": value})
