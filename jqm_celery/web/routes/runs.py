"""Runs: the list, a run's page with its jobs and attempts (updated live), and cancelling a run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from jqm_celery.errors import JQMError, NotFoundError
from jqm_celery.records import Run
from jqm_celery.statuses import RunStatus
from jqm_celery.web.params import (
    BeforeId,
    Day,
    OptionalText,
    RunId,
    day_end,
    day_start,
    days,
    manager,
    split_page,
)
from jqm_celery.web.permits import RunCanceller, RunCleaner, Viewer
from jqm_celery.web.templating import flash, page, redirect, viewer_zone
from jqm_celery.web.users import WebUser

router = APIRouter()
PAGE_SIZE = 100


@router.get("/runs")
def runs(
    request: Request,
    user: Viewer,
    package: OptionalText = "",
    status: OptionalText = "",
    since: Day = None,
    until: Day = None,
    before_id: BeforeId = None,
) -> HTMLResponse:
    chosen = status if status in RunStatus.__members__ else ""
    error = None
    found: list[Run] = []
    zone = viewer_zone(request)
    try:
        found = manager(request).runs(
            package or None,
            chosen or None,
            limit=PAGE_SIZE + 1,
            before_id=before_id,
            since=day_start(since, zone),
            until=day_end(until, zone),
        )
    except JQMError as exc:
        error = str(exc)
    shown, older = split_page(found, PAGE_SIZE)
    filters = {
        "package": package,
        "status": chosen,
        "since": since and since.isoformat(),
        "until": until and until.isoformat(),
    }
    return page(
        request,
        user,
        "runs.html",
        runs=shown,
        filters=filters,
        package=package,
        status=chosen,
        statuses=list(RunStatus),
        older=older,
        paged=before_id is not None,
        error=error,
    )


@router.get("/runs/{run_id}")
def run(request: Request, user: Viewer, run_id: RunId) -> HTMLResponse:
    return _run_page(request, user, run_id, "run.html")


@router.get("/runs/{run_id}/jobs")
def run_jobs(request: Request, user: Viewer, run_id: RunId) -> HTMLResponse:
    """The run's jobs as an HTML fragment: the run page swaps it in while the run is in flight."""
    return _run_page(request, user, run_id, "_run_jobs.html")


def _run_page(request: Request, user: WebUser, run_id: int, template: str) -> HTMLResponse:
    jqm = manager(request)
    found = jqm.run(run_id)
    starter = jqm.run_starters(found.package, [run_id]).get(run_id)
    return page(request, user, template, run=found, started_by=starter or started_by(found.trigger))


def started_by(trigger: str) -> str:
    """Who or what started a run nobody started by hand, from its trigger."""
    return {"recurrence": "beat (a recurrence)", "run now": "run now (Python or the jqm command)"}.get(
        trigger, trigger
    )


@router.post("/runs/{run_id}/cancel")
def cancel(request: Request, user: RunCanceller, run_id: RunId) -> RedirectResponse:
    try:
        stopped = manager(request).cancel_run(run_id, actor=user.name)
        flash(request, f"run {run_id} is {stopped.status}")
    except NotFoundError:
        raise
    except JQMError as exc:
        flash(request, str(exc), "error")
    return redirect(f"/runs/{run_id}")


@router.post("/runs/clean")
def clean_runs(
    request: Request, user: RunCleaner, older_than_days: Annotated[str, Form()] = ""
) -> RedirectResponse:
    older_than = days(older_than_days)
    if older_than is None:
        flash(request, f"clean: older than {older_than_days!r} days is not a number from 0 to 36500", "error")
        return redirect("/runs")
    cleaned = manager(request).clean_runs(older_than, actor=user.name)
    flash(request, f"deleted {cleaned.runs} finished run(s) and {cleaned.log_entries} log entries")
    return redirect("/runs")
