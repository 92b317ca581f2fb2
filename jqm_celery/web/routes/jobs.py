"""The job queue monitor: queues with their counts, jobs by status, add a job, cancel / abort / re-add /
clean."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from jqm_celery.errors import JQMError, NotFoundError, ValidationError
from jqm_celery.records import Job
from jqm_celery.statuses import JobStatus
from jqm_celery.web import forms
from jqm_celery.web.params import (
    BeforeId,
    Day,
    JobId,
    OptionalText,
    day_end,
    day_start,
    days,
    manager,
    split_page,
)
from jqm_celery.web.permits import Aborter, Cleaner, Enqueuer, JobCanceller, Requeuer, Viewer
from jqm_celery.web.templating import flash, page, redirect, viewer_zone
from jqm_celery.web.users import WebUser

router = APIRouter()
PAGE_SIZE = 100


@router.get("/jobs")
def jobs(
    request: Request,
    user: Viewer,
    queue: OptionalText = "",
    status: OptionalText = "",
    all: bool = False,
    worker: OptionalText = "",
    package: OptionalText = "",
    since: Day = None,
    until: Day = None,
    before_id: BeforeId = None,
) -> HTMLResponse:
    shown = JobFilters(queue, status, all, worker, package, since, until, before_id)
    return _jobs_page(request, user, shown, {}, {})


@dataclass(frozen=True)
class JobFilters:
    queue: str = ""
    status: str = ""
    all: bool = False
    worker: str = ""
    package: str = ""
    since: date | None = None
    until: date | None = None
    before_id: int | None = None

    def query(self) -> dict[str, object]:
        """The filters as the page's links repeat them (the cursor apart)."""
        return {
            "queue": self.queue,
            "status": self.status,
            "all": "true" if self.all else "",
            "worker": self.worker,
            "package": self.package,
            "since": self.since and self.since.isoformat(),
            "until": self.until and self.until.isoformat(),
        }


def _jobs_page(
    request: Request,
    user: WebUser,
    filters: JobFilters,
    values: dict[str, str],
    errors: dict[str, str],
) -> HTMLResponse:
    jqm = manager(request)
    chosen = filters.status if filters.status in JobStatus.__members__ else ""
    zone = viewer_zone(request)
    error = None
    found: list[Job] = []
    try:
        found = jqm.jobs(
            queue=filters.queue or None,
            status=chosen or None,
            stand_alone=not filters.all,
            limit=PAGE_SIZE + 1,
            worker=filters.worker or None,
            package=filters.package or None,
            before_id=filters.before_id,
            since=day_start(filters.since, zone),
            until=day_end(filters.until, zone),
        )
    except JQMError as exc:
        error = str(exc)
    shown, older = split_page(found, PAGE_SIZE)
    return page(
        request,
        user,
        "jobs.html",
        queues=jqm.queues(),
        jobs=shown,
        queue=filters.queue,
        status=chosen,
        include_runs=filters.all,
        filters=filters.query(),
        older=older,
        paged=filters.before_id is not None,
        list_error=error,
        statuses=list(JobStatus),
        tasks=jqm.registered_tasks(),
        queue_names=jqm.known_queues(),
        values=values,
        errors=errors,
        status_code=422 if errors else 200,
    )


@router.post("/jobs")
async def add_job(request: Request, user: Enqueuer) -> Response:
    data = {key: str(value) for key, value in (await request.form()).items()}
    return await run_in_threadpool(lambda: _add_job(request, user, data))


def _add_job(request: Request, user: WebUser, data: dict[str, str]) -> Response:
    parsed = forms.parse_job(data)
    if not parsed.ok or parsed.value is None:
        return _jobs_page(request, user, JobFilters(), data, parsed.errors)
    new = parsed.value
    try:
        job = manager(request).enqueue(
            new.task,
            new.args,
            new.kwargs,
            queue=new.queue,
            description=new.description,
            retry=new.retry,
            delay=new.delay,
        )
    except ValidationError as exc:
        return _jobs_page(request, user, JobFilters(), data, {forms.job_error_field(str(exc)): str(exc)})
    flash(request, f"job {job.id} added to queue '{job.queue}' as {job.status}")
    return redirect(f"/jobs/{job.id}")


@router.get("/jobs/{job_id}")
def job(request: Request, user: Viewer, job_id: JobId) -> HTMLResponse:
    return page(request, user, "job.html", job=manager(request).job(job_id))


@router.post("/jobs/{job_id}/cancel")
def cancel(request: Request, user: JobCanceller, job_id: JobId) -> RedirectResponse:
    return _control(request, job_id, lambda: manager(request).cancel(job_id, actor=user.name))


@router.post("/jobs/{job_id}/abort")
def abort(request: Request, user: Aborter, job_id: JobId) -> RedirectResponse:
    return _control(request, job_id, lambda: manager(request).abort(job_id, actor=user.name))


@router.post("/jobs/{job_id}/requeue")
def requeue(request: Request, user: Requeuer, job_id: JobId) -> RedirectResponse:
    return _control(request, job_id, lambda: manager(request).requeue(job_id, actor=user.name))


@router.post("/jobs/clean")
def clean(request: Request, user: Cleaner, older_than_days: Annotated[str, Form()] = "") -> RedirectResponse:
    older_than = days(older_than_days)
    if older_than is None:
        flash(request, f"clean: older than {older_than_days!r} days is not a number from 0 to 36500", "error")
        return redirect("/jobs")
    cleaned = manager(request).clean(older_than, actor=user.name)
    flash(request, f"deleted {cleaned.jobs} job(s) and {cleaned.log_entries} log entries")
    return redirect("/jobs")


def _control(request: Request, job_id: int, act: Callable[[], Job]) -> RedirectResponse:
    back = request.headers.get("referer", "")
    target = back if back.startswith(str(request.base_url)) else f"/jobs/{job_id}"
    try:
        done = act()
        flash(request, f"job {job_id} is {done.status}")
    except NotFoundError:
        raise
    except JQMError as exc:
        flash(request, str(exc), "error")
    return redirect(target)
