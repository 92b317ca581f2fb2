"""Packages as Celery canvases: canvas → package → canvas round trips, and every refusal."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery, chain, chord, group, signature
from celery.canvas import Signature

from jqm_celery import Entry, OnError, Package, RetryPolicy, ValidationError
from jqm_celery.canvas import describe_canvas

app = Celery("canvas-tests", set_as_current=False)


@app.task(name="billing.export_invoices", shared=False)
def export_invoices(region: str) -> int:
    return 1


@app.task(name="billing.upload_to_bank", shared=False)
def upload_to_bank(batch: int) -> str:
    return "ok"


@app.task(name="billing.notify_finance", shared=False)
def notify_finance() -> None:
    pass


export, upload, notify = export_invoices, upload_to_bank, notify_finance


@app.task(name="billing.mark_paid", shared=False)
def mark_paid() -> None:
    pass


NIGHTLY = chain(export.si(region="eu"), upload.si(7), group(notify.si(), mark_paid.si()))


def shape(canvas: Signature) -> Any:
    """A canvas as plain data: steps of (task, args, kwargs, options, immutable), groups as lists."""
    if hasattr(canvas, "tasks") and not isinstance(canvas, group):
        steps = [shape(step) for step in canvas.tasks]
        if type(canvas).__name__ == "_chord":
            return [steps, shape(canvas.body)]
        return steps
    if isinstance(canvas, group):
        return {"group": [shape(member) for member in canvas.tasks]}
    return (canvas.task, tuple(canvas.args), dict(canvas.kwargs), dict(canvas.options), canvas.immutable)


def flat(canvas: Signature) -> list[Any]:
    """The chain's steps, with a chord (Celery's group followed by a step) unfolded into both."""
    steps: list[Any] = []
    for step in canvas.tasks:
        if type(step).__name__ == "_chord":
            steps.append({"group": [shape(member) for member in step.tasks]})
            steps.extend(flat(step.body) if hasattr(step.body, "tasks") else [shape(step.body)])
        else:
            steps.append(shape(step))
    return steps


def test_a_chain_with_a_group_becomes_the_entries_and_run_orders_of_the_readme() -> None:
    package = Package.from_canvas("nightly-billing", NIGHTLY, on_error=OnError.STOP)

    assert package.entries == (
        Entry("billing.export_invoices", kwargs={"region": "eu"}, run_order=10),
        Entry("billing.upload_to_bank", args=[7], run_order=20),
        Entry("billing.notify_finance", run_order=30),
        Entry("billing.mark_paid", run_order=30),
    )
    assert package.on_error is OnError.STOP


def test_the_readmes_canvas_example_builds_the_readmes_package() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (snippet,) = [
        block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "from_canvas" in block
    ]
    saved: list[Package] = []
    namespace = {
        "jqm": SimpleNamespace(save=saved.append),
        "Package": Package,
        "OnError": OnError,
        "RetryPolicy": RetryPolicy,
        "timedelta": timedelta,
        **{task.__name__: task for task in (export_invoices, upload_to_bank, notify_finance, mark_paid)},
    }

    exec(snippet, namespace)

    (package,) = saved
    retry = RetryPolicy(max_retries=5, base_delay=timedelta(seconds=30))
    assert package.entries == (
        Entry("billing.export_invoices", kwargs={"region": "eu"}, run_order=10),
        Entry("billing.upload_to_bank", args=[7], run_order=20, retry=retry),
        Entry("billing.notify_finance", run_order=30),
        Entry("billing.mark_paid", run_order=30),
    )
    assert package.on_error is OnError.STOP


def test_the_package_compiles_back_to_the_same_chain() -> None:
    package = Package.from_canvas("nightly-billing", NIGHTLY)

    assert flat(package.to_canvas()) == flat(NIGHTLY)


@pytest.mark.parametrize(
    "canvas",
    [
        export.si(region="eu"),
        chain(export.si(region="eu")),
        group(notify.si(), mark_paid.si()),
        export.si(region="eu") | upload.si(7) | group(notify.si(), mark_paid.si()) | upload.si(8),
        chain(chain(export.si(region="eu"), upload.si(7)), upload.si(8)),
        chord([notify.si(), mark_paid.si()], chain(upload.si(1), upload.si(2))),
        chain(upload.si(1).set(queue="bank", soft_time_limit=30, time_limit=60), notify.si()),
    ],
    ids=["one task", "chain of one", "group", "pipes", "nested chain", "chord with a chain body", "options"],
)
def test_a_canvas_round_trips_through_a_package(canvas: Signature) -> None:
    package = Package.from_canvas("round-trip", canvas)

    again = Package.from_canvas("round-trip", package.to_canvas())

    assert again.entries == package.entries


def test_signature_options_become_entry_fields() -> None:
    sig = upload.si(1).set(queue="bank", soft_time_limit=30, time_limit=60)

    (entry,) = Package.from_canvas("options", sig).entries

    assert (entry.queue, entry.soft_time_limit, entry.time_limit) == (
        "bank",
        timedelta(seconds=30),
        timedelta(seconds=60),
    )
    assert shape(Package.from_canvas("options", sig).to_canvas().tasks[0]) == shape(sig)


def test_retry_policies_are_given_per_task_name() -> None:
    policy = RetryPolicy(max_retries=5, base_delay=timedelta(seconds=30), max_delay=timedelta(minutes=10))

    package = Package.from_canvas("retried", NIGHTLY, retry={"billing.upload_to_bank": policy})

    assert [e.retry.max_retries for e in package.entries] == [0, 5, 0, 0]


def test_the_first_step_may_be_a_mutable_signature_as_nothing_comes_before_it() -> None:
    (entry, _) = Package.from_canvas("first", chain(export.s(region="eu"), upload.si(7))).entries
    assert entry.kwargs == {"region": "eu"}


def test_describe_canvas_prints_the_chain_as_python() -> None:
    package = Package.from_canvas("nightly-billing", NIGHTLY)

    assert describe_canvas(package) == (
        "chain(\n"
        "    billing.export_invoices.si(region='eu'),\n"
        "    billing.upload_to_bank.si(7),\n"
        "    group(billing.notify_finance.si(), billing.mark_paid.si()),\n"
        ")"
    )


def test_describe_canvas_gives_the_retry_policies_as_from_canvas_takes_them() -> None:
    policy = RetryPolicy(max_retries=5, base_delay=timedelta(seconds=30), max_delay=timedelta(minutes=10))
    package = Package.from_canvas("retried", NIGHTLY, retry={"billing.upload_to_bank": policy})

    last = describe_canvas(package).splitlines()[-1]

    assert last == (
        "retry={'billing.upload_to_bank': RetryPolicy(max_retries=5, base_delay=timedelta(seconds=30), "
        "max_delay=timedelta(seconds=600))}"
    )
    assert eval(last.removeprefix("retry="), {"RetryPolicy": RetryPolicy, "timedelta": timedelta}) == {
        "billing.upload_to_bank": policy
    }


def refusal(canvas: Any, **fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Package.from_canvas("refused", canvas, **fields)
    message = str(caught.value)
    assert message.startswith("package 'refused': ")
    assert "\n" not in message
    return message


def test_a_step_that_takes_the_previous_result_is_refused() -> None:
    message = refusal(chain(export.si(region="eu"), upload.s()))
    assert "step 2, billing.upload_to_bank.s(), is not immutable" in message
    assert "write upload_to_bank.si(...)" in message


def test_a_chord_body_that_takes_the_group_results_is_refused() -> None:
    message = refusal(chord([notify.si(), mark_paid.si()], upload.s()))
    assert "the chord's body billing.upload_to_bank.s() is not immutable" in message
    assert "write upload_to_bank.si(...)" in message


def test_a_chain_inside_a_group_is_refused() -> None:
    message = refusal(group(chain(export.si(region="eu"), upload.si(7)), notify.si()))
    assert "a group holds a chain" in message
    assert "move it into steps of the outer chain" in message


def test_a_chord_inside_a_group_is_refused() -> None:
    message = refusal(group(chord([notify.si()], upload.si(1)), mark_paid.si()))
    assert "a group holds a chord" in message


def test_a_callback_is_refused() -> None:
    message = refusal(chain(upload.si(1).on_error(notify.si()), mark_paid.si()))
    assert "link_error callback" in message
    assert "use the package's on_error and notifications" in message


def test_a_link_is_refused() -> None:
    sig = upload.si(1)
    sig.link(notify.si())
    assert "link callback" in refusal(sig)


def test_an_option_an_entry_has_no_place_for_is_refused() -> None:
    message = refusal(upload.si(1).set(countdown=10))
    assert "sets countdown, which a package entry has no place for" in message


def test_chunks_and_maps_are_refused() -> None:
    assert "is a Celery chunks" in refusal(upload.chunks([(1,), (2,)], 1))


def test_an_empty_group_is_refused() -> None:
    assert "a group is empty" in refusal(group())


def test_something_that_is_not_a_canvas_is_refused() -> None:
    assert "needs a Celery signature, chain or group, got list" in refusal([export.si(region="eu")])


def test_a_retry_for_a_task_that_is_not_in_the_canvas_is_refused() -> None:
    message = refusal(NIGHTLY, retry={"billing.uplaod_to_bank": RetryPolicy()})
    assert "retry names task(s) billing.uplaod_to_bank that are not in the canvas" in message


def test_arguments_that_are_not_json_are_refused_by_the_entry() -> None:
    with pytest.raises(ValidationError, match="args"):
        Package.from_canvas("refused", upload.si(object()))


def test_a_signature_by_name_works_without_the_task_object() -> None:
    (entry,) = Package.from_canvas("by-name", signature("billing.mark_paid", immutable=True)).entries
    assert entry.task == "billing.mark_paid"
