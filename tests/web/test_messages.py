"""What the web UI says when it refuses: the button to press, never a Python call or a command."""

from __future__ import annotations

import pytest

from jqm_celery import Entry, JobQueueManager, Package, ValidationError
from jqm_celery.web.messages import for_web
from tests.web.conftest import Browser, field_errors


def test_editing_an_active_package_names_the_button_not_the_python_call(
    admin: Browser, jqm: JobQueueManager
) -> None:
    jqm.save(Package("nightly", entries=[Entry("billing.export")]))
    jqm.activate("nightly")
    response = admin.post("/packages/nightly/settings", {"on_error": "CONTINUE"})
    message = field_errors(response.text)["form"]
    assert message.endswith("put it on hold first: press Put on hold on the package card")
    assert "jqm." not in message


@pytest.mark.parametrize(
    ("library", "web"),
    [
        (
            "package 'a' already has a run in flight; wait for it to finish, or ask to queue this one "
            "(jqm.run_now(name, queue=True) or `jqm packages run NAME --queue`)",
            "package 'a' already has a run in flight; wait for it to finish, or press Queue a run to start "
            "this one when it has finished",
        ),
        (
            "job 7 is QUEUED: only a RUNNING job can be aborted; it has not started: jqm.cancel(7)",
            "job 7 is QUEUED: only a RUNNING job can be aborted; it has not started: press Cancel",
        ),
        (
            "package 'a' is ON_HOLD: x started no run; activate it first (jqm.activate('a'))",
            "package 'a' is ON_HOLD: x started no run; press Activate on the package card first",
        ),
    ],
)
def test_each_hint_becomes_a_button(library: str, web: str) -> None:
    assert for_web(library) == web


def test_activation_refuses_a_queue_nobody_defined_with_the_closest_name(jqm: JobQueueManager) -> None:
    jqm.define_queue("reports", 2)
    jqm.save(Package("nightly", entries=[Entry("billing.export", queue="reprots")]))
    with pytest.raises(
        ValidationError, match=r"queue 'reprots', which is not defined; did you mean 'reports'\?"
    ):
        jqm.activate("nightly")
    assert jqm.package("nightly").status == "DRAFT"


def test_activation_accepts_a_defined_queue_and_the_default_queue(jqm: JobQueueManager) -> None:
    jqm.define_queue("reports", 2)
    default = str(jqm.app.conf.task_default_queue)
    jqm.save(
        Package(
            "nightly",
            entries=[
                Entry("billing.export", queue="reports"),
                Entry("billing.upload", queue=default, run_order=20),
            ],
        )
    )
    assert jqm.activate("nightly").status == "ACTIVE"


def test_the_web_ui_shows_the_queue_typo_and_the_command_that_defines_a_queue(
    admin: Browser, jqm: JobQueueManager
) -> None:
    jqm.define_queue("reports", 2)
    jqm.save(Package("nightly", entries=[Entry("billing.export", queue="reprots")]))
    admin.post("/packages/nightly/activate")
    page = admin.get("/packages/nightly").text
    assert "did you mean &#39;reports&#39;?" in page
    assert "jqm queues define reprots --pool-size 4" in page
    assert "jqm.define_queue" not in page
