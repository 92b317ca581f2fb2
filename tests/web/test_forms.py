"""Bad input in the package forms: an error next to the field, and nothing saved."""

from __future__ import annotations

import re
from datetime import timedelta

from jqm_celery import Entry, JobQueueManager, Package, Recurrence, RetryPolicy
from tests.web.conftest import Browser, field_errors

ENTRY = {"task": "billing.export", "run_order": "10", "args": "[]", "kwargs": "{}"}


def _draft(jqm: JobQueueManager) -> None:
    jqm.save(Package("nightly", entries=[Entry("billing.export")]))


def test_a_new_package_is_created_as_draft_with_its_first_entry(admin: Browser, jqm: JobQueueManager) -> None:
    response = admin.post("/new-package", {"name": "nightly", "on_error": "CONTINUE", **ENTRY, "args": "[7]"})
    assert (response.status_code, response.headers["location"]) == (303, "/packages/nightly")
    package = jqm.package("nightly").definition
    assert (package.on_error, package.entries[0].args) == ("CONTINUE", (7,))
    assert jqm.audit()[-1].actor == "ann"


def test_an_unknown_task_is_shown_next_to_the_field_with_a_suggestion(
    admin: Browser, jqm: JobQueueManager
) -> None:
    response = admin.post("/new-package", {"name": "nightly", **ENTRY, "task": "billing.uplaod"})
    assert response.status_code == 422
    assert field_errors(response.text)["task"] == (
        "unknown task 'billing.uplaod'; did you mean 'billing.upload'?"
    )
    assert 'value="billing.uplaod"' in response.text
    assert jqm.packages() == []


def test_a_negative_run_order_and_bad_json_are_shown_next_to_their_fields(
    admin: Browser, jqm: JobQueueManager
) -> None:
    response = admin.post("/new-package", {"name": "nightly", **ENTRY, "run_order": "-5", "args": "[7,"})
    errors = field_errors(response.text)
    assert errors["run_order"] == "must be 0 or more, got -5"
    assert errors["args"].startswith("not valid JSON")
    assert jqm.packages() == []


def test_a_bad_package_name_or_one_that_exists_is_shown_next_to_the_name(
    admin: Browser, jqm: JobQueueManager
) -> None:
    _draft(jqm)
    assert (
        "already exists"
        in field_errors(admin.post("/new-package", {"name": "nightly", **ENTRY}).text)["name"]
    )
    assert (
        "use 1–100 letters" in field_errors(admin.post("/new-package", {"name": "-x", **ENTRY}).text)["name"]
    )
    assert [p.name for p in jqm.packages()] == ["nightly"]


def test_a_bad_cron_expression_is_shown_next_to_the_field_and_nothing_is_saved(
    admin: Browser, jqm: JobQueueManager
) -> None:
    _draft(jqm)
    response = admin.post(
        "/packages/nightly/recurrences", {"kind": "cron", "expression": "0 25 * * *", "action": "add"}
    )
    assert response.status_code == 422
    assert "hour value 25 is out of range; use 0-23" in field_errors(response.text)["expression"]
    assert jqm.package("nightly").definition.recurrences == ()
    assert jqm.package("nightly").version == 1


def test_an_unknown_time_zone_is_shown_with_a_suggestion(admin: Browser, jqm: JobQueueManager) -> None:
    _draft(jqm)
    response = admin.post(
        "/packages/nightly/recurrences",
        {"kind": "cron", "expression": "0 2 * * *", "tz": "Europe/Amsterdan", "action": "add"},
    )
    assert field_errors(response.text)["tz"] == (
        "unknown time zone 'Europe/Amsterdan'; did you mean 'Europe/Amsterdam'?"
    )


def test_the_recurrence_preview_shows_the_next_ten_runs_and_saves_nothing(
    admin: Browser, jqm: JobQueueManager
) -> None:
    _draft(jqm)
    response = admin.post(
        "/packages/nightly/recurrences",
        {
            "kind": "weekly",
            "days": "mon-fri",
            "start": "08:00",
            "end": "09:00",
            "every_min": "30",
            "action": "preview",
        },
    )
    assert response.status_code == 200
    preview = response.text.split('id="preview"')[1].split("</ol>")[0]
    assert preview.count("<li>") == 10
    assert "2026-11-23 08:00:00 UTC" in preview  # the FakeClock's Saturday 08:00 → Monday
    assert jqm.package("nightly").definition.recurrences == ()


def test_a_recurrence_is_added_and_shown_with_the_next_runs(admin: Browser, jqm: JobQueueManager) -> None:
    _draft(jqm)
    response = admin.post(
        "/packages/nightly/recurrences", {"kind": "every", "every_min": "90", "action": "add"}
    )
    assert response.status_code == 303
    assert jqm.package("nightly").definition.recurrences == (Recurrence.every(timedelta(minutes=90)),)
    card = admin.get("/packages/nightly").text
    assert card.split('id="next-runs"')[1].split("</ol>")[0].count("<li>") == 10


def test_a_notification_rule_needs_a_scenario_and_a_valid_address(
    admin: Browser, jqm: JobQueueManager
) -> None:
    _draft(jqm)
    no_scenario = admin.post(
        "/packages/nightly/notifications", {"type": "email", "target": "ops@example.com"}
    )
    assert field_errors(no_scenario.text)["on"] == "choose at least one scenario"
    bad_address = admin.post(
        "/packages/nightly/notifications", {"type": "email", "target": "ops@", "on": ["RUN_FAILED"]}
    )
    assert "is not an e-mail address" in field_errors(bad_address.text)["target"]
    assert jqm.package("nightly").definition.notifications == ()
    added = admin.post(
        "/packages/nightly/notifications",
        {
            "type": "email",
            "target": "ops@example.com, cfo@example.com",
            "on": ["RUN_FAILED", "PACKAGE_STOPPED"],
        },
    )
    assert added.status_code == 303
    (rule,) = jqm.package("nightly").definition.notifications
    assert rule.targets == ("ops@example.com", "cfo@example.com")


def test_an_entry_is_edited_in_place_and_bad_input_there_is_shown_next_to_the_field(
    admin: Browser, jqm: JobQueueManager
) -> None:
    _draft(jqm)
    bad = admin.post("/packages/nightly/entries/1", {**ENTRY, "max_retries": "many"})
    assert field_errors(bad.text)["max_retries"] == "'many' is not a whole number"
    good = admin.post("/packages/nightly/entries/1", {**ENTRY, "task": "billing.upload", "max_retries": "2"})
    assert good.status_code == 303
    (entry,) = jqm.package("nightly").definition.entries
    assert (entry.task, entry.retry.max_retries) == ("billing.upload", 2)


def test_the_last_entry_cannot_be_removed(admin: Browser, jqm: JobQueueManager) -> None:
    _draft(jqm)
    response = admin.post("/packages/nightly/entries/1/delete")
    assert "has no entries" in field_errors(response.text)["form"]
    assert len(jqm.package("nightly").definition.entries) == 1


def test_an_active_package_shows_no_edit_forms_and_refuses_an_edit(
    admin: Browser, jqm: JobQueueManager
) -> None:
    _draft(jqm)
    jqm.activate("nightly")
    card = admin.get("/packages/nightly").text
    assert 'id="entry-form"' not in card
    assert 'id="locked"' in card
    response = admin.post("/packages/nightly/settings", {"on_error": "CONTINUE"})
    assert "put it on hold first" in field_errors(response.text)["form"]
    assert jqm.package("nightly").definition.on_error == "STOP"


def test_activate_hold_and_delete_from_the_card(admin: Browser, jqm: JobQueueManager) -> None:
    _draft(jqm)
    admin.post("/packages/nightly/activate")
    assert jqm.package("nightly").status == "ACTIVE"
    admin.post("/packages/nightly/hold")
    assert jqm.package("nightly").status == "ON_HOLD"
    assert admin.post("/packages/nightly/delete").headers["location"] == "/packages"
    assert jqm.packages() == []
    assert [e.action for e in jqm.audit()][-3:] == ["ACTIVATE", "HOLD", "DELETE"]


def test_a_package_named_new_opens_its_own_card(admin: Browser, jqm: JobQueueManager) -> None:
    jqm.save(Package("new", entries=[Entry("billing.export")]))
    response = admin.get("/packages/new")
    assert response.status_code == 200
    assert 'id="new-package"' not in response.text, "the create form answered instead of the card"
    assert "DRAFT" in response.text


def test_the_new_package_form_keeps_the_package_and_the_entry_description_apart(
    admin: Browser, jqm: JobQueueManager
) -> None:
    form = admin.get("/new-package").text
    assert form.count('name="description"') == 1
    assert form.count('name="package_description"') == 1
    admin.post(
        "/new-package",
        {"name": "nightly", **ENTRY, "package_description": "Nightly billing", "description": "exports"},
    )
    package = jqm.package("nightly").definition
    assert (package.description, package.entries[0].description) == ("Nightly billing", "exports")


def test_saving_an_entry_unchanged_keeps_its_retry_policy_and_soft_time_limit(
    admin: Browser, jqm: JobQueueManager
) -> None:
    entry = Entry(
        "billing.export",
        retry=RetryPolicy(3, timedelta(seconds=5), factor=3, max_delay=timedelta(seconds=20), jitter=True),
        soft_time_limit=timedelta(seconds=30),
    )
    jqm.save(Package("nightly", entries=[entry]))
    values = dict(
        re.findall(r'name="(\w+)" type="\w+" value="([^"]*)"', admin.get("/packages/nightly/entries/1").text)
    )
    assert (values["factor"], values["max_delay_s"], values["soft_time_limit_s"]) == ("3", "20", "30")
    admin.post("/packages/nightly/entries/1", {**values, "jitter": "on"})
    assert jqm.package("nightly").definition.entries == (entry,)
    assert jqm.package("nightly").version == 1


def test_the_add_a_job_form_shows_an_unknown_task_and_queue_next_to_their_fields(
    admin: Browser, jqm: JobQueueManager
) -> None:
    jqm.define_queue("reports", 2)
    task = field_errors(admin.post("/jobs", {"task": "billing.exprot"}).text)
    queue = field_errors(admin.post("/jobs", {"task": "billing.export", "queue": "reprots"}).text)
    args = field_errors(admin.post("/jobs", {"task": "billing.export", "args": "{"}).text)
    assert "did you mean 'billing.export'?" in task["task"]
    assert "did you mean 'reports'?" in queue["queue"]
    assert args["args"].startswith("not valid JSON")
    assert jqm.jobs() == []
