"""The audit trail: who changed what, and when; by package and day, a page at a time."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from jqm_celery.errors import JQMError
from jqm_celery.queue_records import AuditEntry
from jqm_celery.web.params import BeforeId, Day, OptionalText, day_end, day_start, manager, split_page
from jqm_celery.web.permits import Viewer
from jqm_celery.web.templating import page, viewer_zone

router = APIRouter()
PAGE_SIZE = 100


@router.get("/audit")
def audit(
    request: Request,
    user: Viewer,
    package: OptionalText = "",
    since: Day = None,
    until: Day = None,
    before_id: BeforeId = None,
) -> HTMLResponse:
    zone = viewer_zone(request)
    error = None
    found: list[AuditEntry] = []
    try:
        found = manager(request).audit(
            package=package or None,
            limit=PAGE_SIZE + 1,
            before_id=before_id,
            since=day_start(since, zone),
            until=day_end(until, zone),
        )[::-1]
    except JQMError as exc:
        error = str(exc)
    shown, older = split_page(found, PAGE_SIZE)
    filters = {"package": package, "since": since and since.isoformat(), "until": until and until.isoformat()}
    return page(
        request,
        user,
        "audit.html",
        entries=shown,
        package=package,
        filters=filters,
        older=older,
        paged=before_id is not None,
        error=error,
    )
