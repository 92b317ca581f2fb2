"""Log entries, filtered by package, run, status, kind and date, newest page first."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from jqm_celery.errors import JQMError
from jqm_celery.records import LogEntry
from jqm_celery.statuses import AttemptStatus, LogKind, RunStatus
from jqm_celery.web.params import (
    BeforeId,
    Day,
    EntryId,
    OptionalId,
    OptionalText,
    day_end,
    day_start,
    manager,
)
from jqm_celery.web.permits import Viewer
from jqm_celery.web.templating import page, viewer_zone

router = APIRouter()
PAGE_SIZE = 100
#: Every status a log entry can carry: an attempt's, or a run's for run events.
STATUSES = sorted({*AttemptStatus, *RunStatus, "SKIPPED", "CANCELLED", "STOPPED"})


@router.get("/log")
def log_entries(
    request: Request,
    user: Viewer,
    package: OptionalText = "",
    status: OptionalText = "",
    kind: OptionalText = "",
    run_id: OptionalId = None,
    since: Day = None,
    until: Day = None,
    before_id: BeforeId = None,
) -> HTMLResponse:
    error = None
    entries: list[LogEntry] = []
    try:
        entries = manager(request).log_entries(
            package=package or None,
            run_id=run_id,
            status=status or None,
            kind=kind if kind in LogKind.__members__ else None,
            since=day_start(since, viewer_zone(request)),
            until=day_end(until, viewer_zone(request)),
            before_id=before_id,
            limit=PAGE_SIZE,
        )
    except JQMError as exc:
        error = str(exc)
    filters = {
        "package": package,
        "status": status,
        "kind": kind,
        "run_id": run_id,
        "since": since and since.isoformat(),
        "until": until and until.isoformat(),
    }
    return page(
        request,
        user,
        "log.html",
        entries=entries[::-1],
        filters=filters,
        statuses=STATUSES,
        kinds=list(LogKind),
        older=entries[0].id if len(entries) == PAGE_SIZE else None,
        paged=before_id is not None,
        error=error,
    )


@router.get("/log/{entry_id}")
def log_entry(request: Request, user: Viewer, entry_id: EntryId) -> HTMLResponse:
    """One log entry with its error and full traceback: what "Show error" on a stopped package opens."""
    return page(request, user, "log_entry.html", entry=manager(request).log_entry(entry_id))
