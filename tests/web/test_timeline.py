"""The next 24 hours of fires across packages, in the viewer's zone, with the minutes they collide."""

from __future__ import annotations

import re

from jqm_celery import Entry, JobQueueManager, Package, Recurrence
from tests.web.conftest import Browser


def _active(jqm: JobQueueManager, name: str, recurrence: Recurrence) -> None:
    jqm.save(Package(name, entries=[Entry("billing.export")], recurrences=[recurrence]))
    jqm.activate(name)


def test_the_timeline_draws_each_fire_of_the_next_24_hours_and_names_collisions(
    admin: Browser, jqm: JobQueueManager
) -> None:
    _active(jqm, "noon", Recurrence.cron("0 12 * * *", tz="Europe/Amsterdam"))
    _active(jqm, "hourly", Recurrence.cron("0 * * * *"))
    jqm.save(Package("draft", entries=[Entry("billing.export")], recurrences=[Recurrence.cron("0 12 * * *")]))
    admin.post("/profile", {"tz": "Europe/Amsterdam"})

    html = admin.get("/timeline").text

    rows = dict(re.findall(r'data-package="([^"]+)">(.*?)</g>', html, re.S))
    assert set(rows) == {"noon", "hourly"}
    assert (rows["noon"].count('class="fire"'), rows["hourly"].count('class="fire"')) == (1, 24)
    assert re.search(r"<strong>2026-11-21 12:00:00 CET</strong>: 2 packages", html)
    assert ">10:00<" in html or ">11:00<" in html


def test_the_timeline_says_so_when_nothing_fires(admin: Browser) -> None:
    assert "No ACTIVE package fires in the next 24 hours." in admin.get("/timeline").text
