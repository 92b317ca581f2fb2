"""The web UI in a real browser (headless chromium) against a real worker, broker and store."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

from jqm_celery import Entry, JobQueueManager, JobStatus, OnError, Package, Recurrence, RunStatus
from jqm_celery.errors import NotFoundError
from jqm_celery.notifications.rules import Notify
from jqm_celery.queue_records import AuditAction
from tests.definitions_strategies import packages
from tests.integration.conftest import Backend, Worker
from tests.integration.test_jobqueue import labels, wait_for, wait_job
from tests.integration.test_queue_control import deferred
from tests.integration.webserver import CHROMIUM_ARGS, SCREENSHOTS, require_chromium, serve

pytestmark = pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)
PASSWORD = "correct horse battery"
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def base_url(backend: Backend, worker: Worker) -> Iterator[str]:
    with serve(JobQueueManager.of(backend.app())) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _user(jqm: JobQueueManager, role: str) -> str:
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    jqm.users().add(name, role, PASSWORD)
    return name


def _sign_in(browser: Browser, base_url: str, name: str, timezone_id: str | None = None) -> Page:
    page = browser.new_page(base_url=base_url, timezone_id=timezone_id)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto("/login")
    page.fill("#f-name", name)
    page.fill("#f-password", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Packages")
    return page


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"web-{name}.png"), full_page=True)


def test_a_package_is_built_activated_run_and_its_log_read_in_the_browser(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str
) -> None:
    page_user = _user(jqm, "admin")
    page = _sign_in(browser, base_url, page_user)
    page.click("text=New package")
    page.fill("#f-name", name)
    page.fill("#f-task", "tests.noop")
    page.select_option("#f-on_error", "CONTINUE")
    _shot(page, "01-new-package")
    page.click("button:has-text('Create package')")
    expect(page.locator("h1")).to_contain_text(name)
    expect(page.locator("h1 .status")).to_have_text("DRAFT")

    page.click("#entries summary")
    page.fill("#entry-form #f-task", "tests.sleep")
    page.fill("#entry-form #f-args", "[1.5]")
    page.fill("#entry-form #f-run_order", "20")
    page.click("button:has-text('Add entry')")
    expect(page.locator("#entries tbody tr")).to_have_count(2)

    page.click("#recurrences summary")
    page.fill("#recurrence-form #f-expression", "30 3 * * *")
    page.fill("#recurrence-form #f-tz", "Europe/Amsterdam")
    page.click("button:has-text('Preview next 10')")
    expect(page.locator("#preview li")).to_have_count(10)
    _shot(page, "02-recurrence-preview")
    page.click("button:has-text('Add recurrence')")
    expect(page.locator("#recurrences ul")).to_contain_text("cron '30 3 * * *' (Europe/Amsterdam)")

    page.click("button:has-text('Activate')")
    expect(page.locator("h1 .status")).to_have_text("ACTIVE")
    expect(page.locator("#next-run")).to_contain_text("UTC")
    expect(page.locator("#entry-form")).to_have_count(0)
    _shot(page, "03-package-active")

    page.click("button:has-text('Run now')")
    expect(page.locator("h1")).to_contain_text("Run #")
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#run-status")).to_have_text("RUNNING")
    _shot(page, "04-run-in-flight")
    expect(page.locator("#run-status")).to_have_text("SUCCEEDED")
    assert page.evaluate("window.__sameDocument") is True, "the run page reloaded instead of updating live"
    expect(page.locator("#jobs .job-status")).to_have_text(["DONE", "DONE"])
    expect(page.locator("#run-started-by")).to_have_text(f"{page_user} (web UI)")
    expect(page.locator("#run-took")).to_contain_text(" s")
    expect(page.locator("#jobs tr[id^=job-] .took").last).to_contain_text(" s")
    _shot(page, "05-run-finished")

    page.click("text=Log entries")
    expect(page.locator("#log-entries")).to_contain_text("tests.sleep")
    expect(page.locator("#log-entries tbody tr").first).to_contain_text("run finished")
    _shot(page, "06-log-entries")
    run = jqm.runs(name)[0]
    assert run.status is RunStatus.SUCCEEDED
    assert [a.action for a in jqm.audit(package=name)][-2:] == ["ACTIVATE", "RUN_NOW"]


def test_an_unknown_task_is_shown_next_to_its_field_in_the_browser(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str
) -> None:
    page = _sign_in(browser, base_url, _user(jqm, "user"))
    page.goto("/new-package")
    page.fill("#f-name", name)
    page.fill("#f-task", "tests.nop")
    page.click("button:has-text('Create package')")
    expect(page.locator("#error-task")).to_have_text("unknown task 'tests.nop'; did you mean 'tests.noop'?")
    expect(page.locator("#f-task")).to_have_attribute("aria-invalid", "true")
    _shot(page, "07-inline-error")
    assert jqm.package_list(name_contains=name).total == 0


def test_a_user_sees_no_abort_button_and_gets_403_from_the_api_while_an_administrator_can_abort(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.sleep", args=[30])]))
    run = jqm.run_now(name)
    user_name = _user(jqm, "user")
    user = _sign_in(browser, base_url, user_name)
    user.goto(f"/runs/{run.id}")
    expect(user.locator("#jobs .job-status")).to_have_text("RUNNING")
    expect(user.locator("button:has-text('Abort')")).to_have_count(0)
    _shot(user, "08-user-no-abort")
    job_id = jqm.run(run.id).jobs[0].id
    token = jqm.users().create_token(user_name)
    refused = httpx.post(f"{base_url}/api/jobs/{job_id}/abort", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403

    admin = _sign_in(browser, base_url, _user(jqm, "admin"))
    admin.goto(f"/runs/{run.id}")
    asked: list[str] = []
    admin.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    admin.click("button:has-text('Abort')")
    expect(admin.locator("#jobs .job-status")).to_have_text("ABORTED")
    assert asked == [f"Abort job {job_id}? Its task is terminated."]
    _shot(admin, "09-admin-aborted")
    assert jqm.run(run.id).jobs[0].status == "ABORTED"
    assert jqm.audit(package=name)[-1].actor.startswith("admin-")


#: Definitions the form round trip draws; set JQM_FORM_EXAMPLES to draw more.
FORM_EXAMPLES = int(os.environ.get("JQM_FORM_EXAMPLES", "6"))


def test_every_field_survives_loading_and_saving_each_form_unchanged_in_the_browser(
    browser: Browser, base_url: str, jqm: JobQueueManager
) -> None:
    page = _sign_in(browser, base_url, _user(jqm, "user"))
    tasks = ["tests.noop", "tests.sleep", "tests.record"]

    @settings(
        max_examples=FORM_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(packages(f"round-trip-{uuid.uuid4().hex[:8]}", tasks))
    def round_trip(package: Package) -> None:
        with contextlib.suppress(NotFoundError):
            jqm.delete(package.name)
        saved = jqm.save(package)
        assert saved.definition == package
        card = f"/packages/{package.name}"
        page.goto(card)
        _submit(page, "#settings-form button[type=submit]", card)
        for kind, items, button in (
            ("entries", package.entries, "Save entry"),
            ("recurrences", package.recurrences, "Save recurrence"),
            ("notifications", package.notifications, "Save rule"),
        ):
            for position in range(1, len(items) + 1):
                page.goto(f"{card}/{kind}/{position}")
                _submit(page, f"button:has-text('{button}')", card)
        after = jqm.package(package.name)
        assert after.definition == package
        assert after.version == saved.version, "saving an unchanged form wrote a new version"

    round_trip()


def _submit(page: Page, button: str, card: str) -> None:
    page.click(button)
    page.wait_for_url(f"**{card}")
    errors = page.locator(".field-error, .flash-error")
    assert errors.count() == 0, errors.all_inner_texts()


def test_the_card_warns_of_a_queue_no_live_worker_consumes(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str
) -> None:
    idle = f"idle-{uuid.uuid4().hex[:6]}"
    jqm.define_queue(idle, 1)
    jqm.save(Package(name, entries=[Entry("tests.noop"), Entry("tests.noop", queue=idle, run_order=20)]))
    page = _sign_in(browser, base_url, _user(jqm, "viewer"))
    page.goto(f"/packages/{name}")
    expect(page.locator("#idle-queues")).to_contain_text(f"No live worker consumes queue {idle}:")
    expect(page.locator("#idle-queues code").first).to_have_text(idle)
    _shot(page, "10-idle-queue-warning")


def test_a_run_is_queued_behind_the_run_in_flight_from_the_card_and_audited(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.sleep", args=[3])]))
    page = _sign_in(browser, base_url, _user(jqm, "user"))
    page.goto(f"/packages/{name}")
    page.click("button:has-text('Run now')")
    expect(page.locator("#run-status")).to_have_text("RUNNING")
    page.goto(f"/packages/{name}")
    page.click("button:has-text('Run now')")
    expect(page.locator(".flash-error")).to_contain_text("press Queue a run to start this one")
    page.click("button:has-text('Queue a run')")
    expect(page.locator(".flash-ok")).to_contain_text("queued behind the run in flight")
    expect(page.locator("#run-status")).to_have_text("SUCCEEDED")
    audited = [(a.action, a.detail) for a in jqm.audit(package=name) if a.action == "RUN_NOW"]
    assert [action for action, _ in audited] == ["RUN_NOW", "RUN_NOW"]
    assert audited[-1][1].endswith("queued behind the run in flight via web UI")

    user_name = jqm.audit(package=name)[-1].actor
    token = jqm.users().create_token(user_name)
    started = httpx.post(
        f"{base_url}/api/packages/{name}/run?queue=true", headers={"Authorization": f"Bearer {token}"}
    )
    assert started.status_code == 201, started.text
    page.goto(f"/runs/{started.json()['id']}")
    expect(page.locator("#run-started-by")).to_have_text(f"{user_name} (API token)")


def test_a_stopped_package_shows_the_error_that_stopped_it_and_its_traceback(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.boom", args=["ledger locked"])], on_error=OnError.STOP))
    jqm.activate(name)
    jqm.run_now(name).wait(timeout=30)
    assert jqm.package(name).status == "ERROR"
    page = _sign_in(browser, base_url, _user(jqm, "viewer"))

    page.goto(f"/packages?q={name}")
    expect(page.locator("#packages #stop-reason")).to_contain_text("ledger locked")
    _shot(page, "11-packages-stopped")
    cues = jqm.cues()
    assert min(cues.failed_runs, cues.failed_jobs, cues.packages_in_error) >= 1
    expect(page.locator("#cue-failed-jobs strong")).to_have_text(str(cues.failed_jobs))
    expect(page.locator("#cue-packages-in-error strong")).to_have_text(str(cues.packages_in_error))
    page.click("#cue-packages-in-error")
    expect(page.locator("#packages")).to_contain_text(name)
    expect(page.locator("#packages .status-active")).to_have_count(0)
    page.go_back()
    page.click("#cue-failed-runs")
    expect(page.locator("body")).to_contain_text(name)
    page.go_back()
    page.click("#cue-failed-jobs")
    expect(page.locator("body")).to_contain_text("tests.boom")
    page.goto(f"/packages/{name}")
    reason = page.locator("#stop-reason")
    expect(reason).to_contain_text("tests.boom")
    expect(reason).to_contain_text("attempt 1")
    expect(reason).to_contain_text("ledger locked")
    _shot(page, "12-package-stopped")
    page.click("text=Show error")
    expect(page.locator("#log-error")).to_contain_text("ledger locked")
    expect(page.locator("#traceback")).to_contain_text("Traceback")
    _shot(page, "13-log-entry-traceback")


def test_a_user_in_amsterdam_sees_0800_for_an_0800_amsterdam_window(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str
) -> None:
    window = Recurrence.weekly("daily", start="08:00", tz="Europe/Amsterdam")
    jqm.save(Package(name, entries=[Entry("tests.noop")], recurrences=[window]))
    jqm.activate(name)
    page = _sign_in(browser, base_url, _user(jqm, "viewer"), timezone_id="Europe/Amsterdam")
    expect(page.locator("#viewer-tz")).to_have_text("Europe/Amsterdam")
    page.goto(f"/packages/{name}")
    expect(page.locator("#next-run")).to_contain_text(" 08:00:00 CE")
    expect(page.locator("#next-runs li").first).to_contain_text(" 08:00:00 CE")
    _shot(page, "14-package-in-viewers-zone")
    page.click("nav >> text=Timeline")
    expect(page.locator(f"#timeline [data-package='{name}'] .fire")).to_have_count(1)
    expect(page.locator(f"#timeline [data-package='{name}'] title")).to_contain_text(" 08:00:00 CE")
    _shot(page, "20-timeline")

    page.goto("/profile")
    page.fill("#f-tz", "Asia/Kolkata")
    page.click("button:has-text('Save')")
    expect(page.locator("#viewer-tz")).to_have_text("Asia/Kolkata")
    _shot(page, "15-profile")
    page.goto(f"/packages/{name}")
    expect(page.locator("#next-runs li").first).to_contain_text("08:00 Europe/Amsterdam")


def test_a_job_is_added_from_the_browser_and_a_delayed_one_says_when_it_starts(
    browser: Browser, base_url: str, jqm: JobQueueManager
) -> None:
    page = _sign_in(browser, base_url, _user(jqm, "user"))
    page.goto("/jobs")
    page.click("#job-form >> xpath=.. >> summary")
    page.fill("#f-task", "tests.noop")
    page.fill("#f-args", '[1, "two"]')
    page.fill("#f-description", "added in the browser")
    _shot(page, "16-add-a-job")
    page.click("button:has-text('Add job')")
    expect(page.locator(".flash-ok")).to_contain_text("added to queue")
    job_id = int(page.url.rsplit("/", 1)[-1])
    deadline = time.monotonic() + 30
    while jqm.job(job_id).status != "DONE":
        assert time.monotonic() < deadline, f"job {job_id} did not finish"
        time.sleep(0.05)
    page.reload()
    expect(page.locator("h1 .status")).to_have_text("DONE")
    done = jqm.job(job_id)
    assert (done.task, done.description) == ("tests.noop", "added in the browser")

    page.goto("/jobs")
    page.click("#job-form >> xpath=.. >> summary")
    page.fill("#f-task", "tests.noop")
    page.fill("#f-delay_s", "3600")
    page.click("button:has-text('Add job')")
    expect(page.locator("h1 .status")).to_have_text("DELAYED")
    delayed = jqm.job(int(page.url.rsplit("/", 1)[-1]))
    assert delayed.not_before is not None
    expect(page.locator("#not-before")).to_contain_text(delayed.not_before.strftime("%Y-%m-%d %H:%M:%S"))
    _shot(page, "17-delayed-job")
    jqm.cancel(delayed.id)


def test_the_run_picture_draws_stages_side_by_side_and_changes_live(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(
        Package(
            name,
            entries=[
                Entry("tests.sleep", args=[4], run_order=10),
                Entry("tests.noop", run_order=20),
                Entry("tests.sleep", args=[0.2], run_order=20),
            ],
        )
    )
    run = jqm.run_now(name)
    page = _sign_in(browser, base_url, _user(jqm, "viewer"))
    page.goto(f"/runs/{run.id}")
    page.evaluate("window.__sameDocument = true")
    boxes = page.locator("#run-picture .picture-job")
    expect(boxes).to_have_count(3)
    expect(boxes.first).to_have_attribute("data-status", "RUNNING")
    expect(page.locator("#run-picture .stage-label")).to_have_text(["run order 10", "run order 20"])
    _shot(page, "18-run-picture-in-flight")
    first, second, third = (boxes.nth(i).locator("rect") for i in range(3))
    assert first.get_attribute("x") != second.get_attribute("x")
    assert second.get_attribute("x") == third.get_attribute("x")
    assert second.get_attribute("y") != third.get_attribute("y")
    expect(boxes.nth(1)).to_have_attribute("data-status", "DONE")
    expect(boxes.nth(2)).to_have_attribute("data-status", "DONE")
    expect(boxes.first).to_contain_text("attempt 1 of 1")
    assert page.evaluate("window.__sameDocument") is True, "the run page reloaded instead of updating live"
    _shot(page, "19-run-picture-finished")


@pytest.mark.parametrize("role", ["admin", "user", "viewer"])
def test_every_page_opens_for_each_role_with_only_its_buttons_and_is_photographed(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str, role: str
) -> None:
    queue = f"photo-{role}"
    jqm.define_queue(queue, pool_size=2)
    jqm.save(
        Package(
            name,
            entries=[Entry("tests.noop", run_order=10), Entry("tests.sleep", args=[0.1], run_order=20)],
            recurrences=[Recurrence.weekly("mon-fri", start="08:00", tz="Europe/Amsterdam")],
            notifications=[Notify("ops@example.com", on={"RUN_FAILED"})],
            description="Photographed for the docs",
        )
    )
    run = jqm.run_now(name)
    run.wait(timeout=30)
    job = jqm.run(run.id).jobs[0]
    entry = jqm.log_entries(run_id=run.id, kind="ATTEMPT")[0]
    page = _sign_in(browser, base_url, _user(jqm, role), timezone_id="Europe/Amsterdam")
    operator = role != "viewer"
    pages = [
        ("packages", "/packages", "#cues"),
        ("package-card", f"/packages/{name}", "#entries"),
        ("run", f"/runs/{run.id}", "#run-picture"),
        ("runs", "/runs", "#runs"),
        ("log-entries", "/log", "#log-entries"),
        ("log-entry", f"/log/{entry.id}", "#log-entry"),
        ("jobs", "/jobs?all=true", "#job-list"),
        ("job", f"/jobs/{job.id}", "#attempts"),
        ("timeline", "/timeline", "h1"),
        ("audit", "/audit", "h1"),
        ("profile", "/profile", "#profile-form"),
        ("queues", "/queues", "#queue-list"),
    ]
    if operator:
        pages += [
            ("new-package", "/new-package", "#new-package"),
            ("entry-edit", f"/packages/{name}/entries/1", "#entry-form"),
            ("recurrence-edit", f"/packages/{name}/recurrences/1", "#recurrence-form"),
            ("rule-edit", f"/packages/{name}/notifications/1", "#rule-form"),
        ]
    for label, url, landmark in pages:
        response = page.goto(url)
        assert response is not None
        assert response.status == 200, f"{url}: {response.status}"
        expect(page.locator(landmark).first).to_be_visible()
        if role == "admin":
            _shot(page, f"page-{label}")
    page.goto(f"/packages/{name}")
    expect(page.locator("button:has-text('Run now')")).to_have_count(1 if operator else 0)
    expect(page.locator("#actions button:has-text('Delete')")).to_have_count(1 if role == "admin" else 0)
    page.goto("/jobs")
    expect(page.locator("#job-form")).to_have_count(1 if operator else 0)
    page.goto("/queues")
    row = page.locator(f"#queue-{queue}")
    expect(row.locator("button:has-text('Pause')")).to_have_count(1 if operator else 0)
    expect(row.locator("button:has-text('Shut down')")).to_have_count(1 if role == "admin" else 0)
    if not operator:
        refused = page.goto(f"/packages/{name}/entries/1")
        assert refused is not None
        assert refused.status == 403


def test_the_recurrence_form_shows_only_the_fields_of_the_chosen_kind(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop")]))
    page = _sign_in(browser, base_url, _user(jqm, "user"), timezone_id="Europe/Amsterdam")
    page.goto(f"/packages/{name}")
    page.click("#recurrences summary")
    form = page.locator("#recurrence-form")
    expect(form.locator("#f-expression")).to_be_visible()
    expect(form.locator("#f-days")).to_be_hidden()
    expect(form.locator("#f-tz")).to_have_value("Europe/Amsterdam")
    page.select_option("#recurrence-form #f-kind", "weekly")
    expect(form.locator("#f-expression")).to_be_hidden()
    expect(form.locator("#f-days input[type=checkbox]")).to_have_count(7)
    expect(form.locator("#f-days label")).to_have_text(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    for day in ("mon", "wed", "fri"):
        form.locator(f"#f-days input[value={day}]").check()
    page.fill("#recurrence-form #f-start", "08:00")
    page.fill("#recurrence-form #f-end", "18:00")
    page.fill("#recurrence-form #f-every_min", "30")
    page.fill("#recurrence-form #f-earliest_start", "2031-01-06T00:00")
    page.fill("#recurrence-form #f-expires", "2031-12-31T23:59")
    _shot(page, "21-weekly-recurrence-form")
    page.click("button:has-text('Add recurrence')")
    expect(page.locator("#recurrences ul")).to_contain_text(
        "Mon, Wed, Fri 08:00–18:00 every 30 min (Europe/Amsterdam), "
        "from 2031-01-06 00:00, until 2031-12-31 23:59"
    )


def test_a_queue_is_paused_and_resumed_by_a_user_and_shut_down_by_an_administrator_in_the_browser(
    browser: Browser,
    base_url: str,
    jqm: JobQueueManager,
    own_queue: str,
    queue_workers: list[Worker],
    marks: Path,
) -> None:
    page = _sign_in(browser, base_url, _user(jqm, "user"))
    page.click("nav >> text=Queues")
    row = page.locator(f"#queue-{own_queue}")
    expect(row.locator(".workers div")).to_have_count(1)
    queue_workers[1].start()
    page.reload()
    expect(row.locator(".workers div")).to_have_count(2)
    expect(row.locator("button:has-text('Shut down')")).to_have_count(0)

    row.locator("button:has-text('Pause')").click()
    expect(row.locator(".state")).to_have_text("paused")
    job = jqm.enqueue("tests.record", args=[str(marks), "waits"], queue=own_queue)
    wait_for(lambda: deferred(jqm, [job.id]) == {job.id})
    assert jqm.job(job.id).status is JobStatus.QUEUED
    assert labels(marks, "start") == []
    page.reload()
    expect(row.locator("td").nth(4)).to_have_text("1")
    _shot(page, "22-queue-paused")
    row.locator("button:has-text('Resume')").click()
    expect(row.locator(".state")).to_have_text("open")
    assert wait_job(jqm, job.id).status is JobStatus.DONE

    long = jqm.enqueue("tests.record", args=[str(marks), "long", 60.0], queue=own_queue)
    wait_for(lambda: jqm.job(long.id).status is JobStatus.RUNNING)
    admin = _sign_in(browser, base_url, _user(jqm, "admin"))
    admin.goto("/queues")
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.locator(f"#queue-{own_queue} button:has-text('Shut down')").click()
    expect(admin.locator(f"#queue-{own_queue} .state")).to_have_text("paused")
    assert jqm.job(long.id).status is JobStatus.ABORTED
    _shot(admin, "23-queue-shut-down")
    admin.goto("/audit")
    expect(admin.locator("#audit")).to_contain_text("shut down queue")


def test_an_administrator_deletes_finished_runs_from_the_runs_page_and_a_user_sees_no_button(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop")]))
    finished = jqm.run_now(name).wait(timeout=30)
    user = _sign_in(browser, base_url, _user(jqm, "user"))
    user.goto("/runs")
    expect(user.locator("#clean-runs-form")).to_have_count(0)

    admin = _sign_in(browser, base_url, _user(jqm, "admin"))
    admin.goto(f"/runs?package={name}")
    expect(admin.locator("#runs")).to_contain_text(f"#{finished.id}")
    admin.fill("#clean-runs-form input[name=older_than_days]", "0")
    _shot(admin, "24-clean-runs")
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.click("#clean-runs-form button")
    expect(admin.locator(".flash")).to_contain_text("finished run(s)")
    assert jqm.runs(name) == []


def test_the_audit_page_pages_to_the_last_page_of_a_large_list_and_keeps_its_filter(
    browser: Browser, base_url: str, jqm: JobQueueManager, name: str
) -> None:
    for n in range(250):
        jqm._job_queue.record("ann", AuditAction.SAVE, f"package '{name}'", package=name, detail=f"v{n}")
    page = _sign_in(browser, base_url, _user(jqm, "viewer"))
    page.goto(f"/audit?package={name}")
    expect(page.locator("#audit tbody tr")).to_have_count(100)
    expect(page.locator("#more")).to_be_visible()

    page.click("#older")
    expect(page.locator("#audit tbody tr")).to_have_count(100)
    page.click("#older")
    expect(page.locator("#audit tbody tr")).to_have_count(50)
    expect(page.locator("#older")).to_have_count(0)
    expect(page.locator("#last-page")).to_have_text("the oldest page")
    expect(page.locator("#audit tbody tr").last).to_contain_text("v0")
    assert f"package={name}" in page.url
    _shot(page, "25-audit-last-page")
    page.click("#newest")
    expect(page.locator("#audit tbody tr").first).to_contain_text("v249")
