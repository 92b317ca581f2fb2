"""Durations on the command line: ``jqm jobs clean --older-than 30d``."""

from __future__ import annotations

from datetime import timedelta

import click
import pytest

from jqm_celery.cli.jobs import Duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("1.5h", timedelta(hours=1.5)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_a_duration_is_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert Duration().convert(text, None, None) == expected


@pytest.mark.parametrize("text", ["30 days", "d", "-1d", "30"])
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(click.BadParameter, match="is not a duration; use a number and a unit"):
        Duration().convert(text, None, None)
