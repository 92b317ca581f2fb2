"""Every time in the viewer's zone: the profile's, else the browser's at sign-in, else UTC."""

from __future__ import annotations

from fastapi import FastAPI

from jqm_celery import Entry, JobQueueManager, Package, Recurrence
from jqm_celery.web.roles import Role
from tests.web.conftest import NAMES, PASSWORD, Browser, field_errors, sign_in

WINDOW = Recurrence.weekly("mon-fri", start="08:00", tz="Europe/Amsterdam")


def _window(jqm: JobQueueManager) -> None:
    jqm.save(Package("nightly", entries=[Entry("billing.export")], recurrences=[WINDOW]))


def test_a_user_in_amsterdam_sees_an_amsterdam_window_at_0800(admin: Browser, jqm: JobQueueManager) -> None:
    _window(jqm)
    assert admin.post("/profile", {"tz": "Europe/Amsterdam"}).status_code == 303
    card = admin.get("/packages/nightly").text
    assert "08:00:00 CET" in card
    assert "07:00:00" not in card
    assert 'id="viewer-tz" title="every time is shown in this zone">Europe/Amsterdam<' in card


def test_a_viewer_in_another_zone_also_sees_the_recurrences_own_wall_time(
    admin: Browser, jqm: JobQueueManager
) -> None:
    _window(jqm)
    admin.post("/profile", {"tz": "America/New_York"})
    card = admin.get("/packages/nightly").text
    assert "02:00:00 EST" in card
    assert "08:00 Europe/Amsterdam" in card


def test_the_browsers_zone_is_used_until_the_user_picks_one(web: FastAPI, jqm: JobQueueManager) -> None:
    _window(jqm)
    browser = sign_in(web, NAMES[Role.VIEWER], PASSWORD, browser_tz="Europe/Amsterdam")
    assert "08:00:00 CET" in browser.get("/packages/nightly").text


def test_an_unknown_zone_on_the_profile_is_refused_with_a_suggestion(admin: Browser) -> None:
    response = admin.post("/profile", {"tz": "Europe/Amsterdan"})
    assert response.status_code == 422
    assert field_errors(response.text)["tz"] == (
        "unknown time zone 'Europe/Amsterdan'; did you mean 'Europe/Amsterdam'?"
    )


def test_a_package_on_hold_says_it_runs_only_once_activated(admin: Browser, jqm: JobQueueManager) -> None:
    _window(jqm)
    jqm.activate("nightly")
    jqm.hold("nightly")
    card = admin.get("/packages/nightly").text
    assert "The package is ON_HOLD: it does not run until it is activated" in card
    assert "Next 10 runs" not in card


def test_the_log_pages_dates_are_the_viewers_days() -> None:
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from jqm_celery.web.params import day_end, day_start

    amsterdam = ZoneInfo("Europe/Amsterdam")
    assert day_start(date(2026, 3, 29), amsterdam) == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert day_end(date(2026, 3, 29), amsterdam) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert day_start(date(2026, 3, 29)) == datetime(2026, 3, 29, tzinfo=UTC)
