"""Package, Entry and RetryPolicy reject bad input with a message that names the problem and the fix."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jqm_celery import Entry, OnError, Package, RetryPolicy, ValidationError


def test_a_package_groups_entries_into_stages_by_run_order() -> None:
    package = Package(
        "p", entries=[Entry("a", run_order=20), Entry("b", run_order=10), Entry("c", run_order=20)]
    )
    assert [(order, [e.task for e in entries]) for order, entries in package.stages()] == [
        (10, ["b"]),
        (20, ["a", "c"]),
    ]


def test_a_package_with_no_entries_is_refused() -> None:
    with pytest.raises(ValidationError, match="'empty' has no entries; add at least one Entry"):
        Package("empty", entries=[])


@pytest.mark.parametrize("name", ["", " leading-space", "a/b", "x" * 101, 7])
def test_an_invalid_package_name_is_refused(name: object) -> None:
    with pytest.raises(ValidationError, match="is not valid"):
        Package(name, entries=[Entry("t")])  # type: ignore[arg-type]


@pytest.mark.parametrize("run_order", [-1, 1.5, "10", True, None])
def test_a_run_order_that_is_not_a_whole_number_at_least_zero_is_refused(run_order: object) -> None:
    with pytest.raises(ValidationError, match=r"run_order must be a whole number ≥ 0"):
        Entry("billing.upload", run_order=run_order)  # type: ignore[arg-type]


def test_arguments_that_are_not_json_serialisable_are_refused() -> None:
    with pytest.raises(ValidationError, match="args must be JSON-serialisable"):
        Entry("billing.upload", args=[object()])
    with pytest.raises(ValidationError, match="kwargs must be JSON-serialisable"):
        Entry("billing.upload", kwargs={"when": timedelta(1)})


def test_args_must_be_a_list_and_kwargs_a_dict() -> None:
    with pytest.raises(ValidationError, match="args must be a list"):
        Entry("t", args="7")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="kwargs must be a dict"):
        Entry("t", kwargs=[1])  # type: ignore[arg-type]


def test_negative_retries_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"max_retries must be a whole number ≥ 0, got -1"):
        RetryPolicy(max_retries=-1)


@pytest.mark.parametrize("field", ["base_delay", "max_delay"])
def test_negative_delays_are_refused(field: str) -> None:
    with pytest.raises(ValidationError, match=f"{field} must be a timedelta ≥ 0"):
        RetryPolicy(**{field: timedelta(seconds=-1)})  # type: ignore[arg-type]


def test_a_max_delay_below_the_base_delay_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"max_delay .* is below base_delay"):
        RetryPolicy(base_delay=timedelta(minutes=5), max_delay=timedelta(minutes=1))


def test_delays_given_as_numbers_are_refused_with_an_example() -> None:
    with pytest.raises(ValidationError, match=r"e.g. base_delay=timedelta\(seconds=30\)"):
        RetryPolicy(base_delay=30)  # type: ignore[arg-type]


def test_an_unknown_on_error_policy_is_refused_with_a_suggestion() -> None:
    with pytest.raises(
        ValidationError, match="choose one of STOP, FINISH_THEN_STOP, CONTINUE; did you mean 'CONTINUE'"
    ):
        Package("p", entries=[Entry("t")], on_error="continu")  # type: ignore[arg-type]


def test_on_error_accepts_the_policy_name() -> None:
    assert (
        Package("p", entries=[Entry("t")], on_error="FINISH_THEN_STOP").on_error is OnError.FINISH_THEN_STOP
    )  # type: ignore[arg-type]


def test_an_entry_round_trips_through_its_stored_form() -> None:
    entry = Entry(
        "billing.upload",
        args=[7],
        kwargs={"region": "eu"},
        run_order=20,
        queue="bank",
        retry=RetryPolicy(max_retries=5, base_delay=timedelta(seconds=30), max_delay=timedelta(minutes=10)),
        soft_time_limit=timedelta(seconds=50),
        time_limit=timedelta(minutes=1),
        description="upload",
    )
    assert Entry.from_dict(entry.to_dict()) == entry


def test_unknown_task_names_are_reported_with_the_closest_registered_name() -> None:
    package = Package("nightly-billing", entries=[Entry("billing.export"), Entry("billing.uplaod")])
    with pytest.raises(ValidationError) as caught:
        package.check_tasks(["billing.export", "billing.upload", "celery.chord"])
    assert str(caught.value) == (
        "package 'nightly-billing': entry 2 refers to unknown task 'billing.uplaod'; "
        "did you mean 'billing.upload'?"
    )
