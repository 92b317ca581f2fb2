"""Definitions refuse, as they are built, values that no store can hold: the Python API's door."""

from __future__ import annotations

from typing import Any

import pytest

from jqm_celery import Entry, Notify, Package, RetryPolicy, ValidationError, Webhook
from jqm_celery.storable import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_INT, check_json


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"args": ["a\x00b"]}, "args[0] contains a NUL character"),
        ({"kwargs": {"a\x00": 1}}, "a key of kwargs contains a NUL character"),
        ({"kwargs": {"rows": [{"name": "\x00"}]}}, "kwargs['rows'][0]['name'] contains a NUL"),
        ({"args": ["\ud800"]}, "lone surrogate"),
        ({"args": [float("nan")]}, "nan, which JSON cannot hold"),
        ({"kwargs": {"limit": float("-inf")}}, "-inf, which JSON cannot hold"),
        ({"args": [MAX_JSON_INT + 1]}, f"beyond ±{MAX_JSON_INT}"),
        ({"args": [-(2**70)]}, f"beyond ±{MAX_JSON_INT}"),
        ({"args": [_nested(MAX_JSON_DEPTH + 1)]}, f"deeper than {MAX_JSON_DEPTH} levels"),
        ({"args": ["x" * MAX_JSON_BYTES]}, f"above the limit of {MAX_JSON_BYTES}"),
        ({"run_order": 2**40}, "run_order 1099511627776 is out of range; it must be at most 2147483647"),
        ({"queue": "q" * 256}, "queue is 256 characters long"),
        ({"description": "a\x00"}, "description contains a NUL character"),
    ],
    ids=[
        "nul",
        "nul key",
        "nested nul",
        "surrogate",
        "nan",
        "infinity",
        "big int",
        "big negative int",
        "too deep",
        "too large",
        "run order",
        "queue name",
        "description",
    ],
)
def test_an_entry_refuses_a_value_no_store_can_hold(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=r"entry 'billing\.export': ") as refused:
        Entry("billing.export", **fields)
    assert named in str(refused.value)


def test_values_at_the_limits_are_accepted() -> None:
    entry = Entry(
        "billing.export",
        args=[MAX_JSON_INT, -MAX_JSON_INT, 1.5, _nested(MAX_JSON_DEPTH - 1)],
        kwargs={"text": "é ✓"},
        run_order=2**31 - 1,
    )
    assert Entry.from_dict(entry.to_dict()) == entry


def test_the_size_limit_counts_the_serialised_bytes() -> None:
    check_json("job 'x'", "args", ["x" * (MAX_JSON_BYTES - 4)])
    with pytest.raises(ValidationError, match="args is 65537 bytes as JSON"):
        check_json("job 'x'", "args", ["x" * (MAX_JSON_BYTES - 3)])


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: RetryPolicy(max_retries=2**40), "max_retries 1099511627776 is out of range"),
        (lambda: RetryPolicy(factor=float("inf")), "factor must be a finite number"),
        (lambda: Notify("ops\x00@example.com", on={"RUN_FAILED"}), "a recipient contains a NUL"),
        (lambda: Webhook("https://hooks.example.com/\x00", on={"RUN_FAILED"}), "the url contains a NUL"),
        (
            lambda: Package("nightly", entries=[Entry("billing.export")], description="\x00"),
            "package 'nightly': description contains a NUL",
        ),
    ],
    ids=["max retries", "factor", "recipient", "webhook", "package description"],
)
def test_the_other_definitions_refuse_values_no_store_can_hold(build: Any, named: str) -> None:
    with pytest.raises(ValidationError) as refused:
        build()
    assert named in str(refused.value)
