"""The REST API (JSON under ``/api``): the same reads and actions as the pages, for scripts.

Authenticate with ``Authorization: Bearer <token>`` (``jqm users token NAME``); a browser session works
too, with its CSRF token in ``X-CSRF-Token`` for changes. Errors are ``{"detail": "..."}`` with 401, 403,
404, 409 (not allowed in the current status) or 422 (bad input; nothing was written).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from jqm_celery.statuses import JobStatus, LogKind, PackageStatus, RunStatus
from jqm_celery.web.params import (
    NEXT_HEADER,
    PACKAGE_NAME,
    BeforeId,
    Day,
    Digits,
    EntryId,
    JobId,
    OptionalId,
    PackageName,
    QueueName,
    RunId,
    day_end,
    day_start,
    manager,
    split_page,
)
from jqm_celery.web.permits import (
    Aborter,
    Activator,
    Cleaner,
    Creator,
    Deleter,
    Editor,
    Enqueuer,
    Holder,
    JobCanceller,
    QueuePauser,
    QueueShutter,
    Requeuer,
    RunCanceller,
    RunCleaner,
    Runner,
    Viewer,
)
from jqm_celery.web.roles import PERMISSIONS
from jqm_celery.web.schemas import CleanIn, JobIn, PackageIn
from jqm_celery.web.serialize import package_json, plain, record

router = APIRouter(
    responses={
        401: {"description": "Not signed in: no valid API token or session"},
        403: {"description": "The user's role may not do this"},
    }
)
Json = dict[str, Any]
Limit = Annotated[int, Query(ge=1, le=1000), Digits]
OptionalPackage = Annotated[str | None, Query(pattern=PACKAGE_NAME, max_length=100)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such package, run or job"}}
_PAGED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One page, newest first",
        "headers": {
            NEXT_HEADER: {
                "description": "Set when there are older rows: pass it as before_id for the next page",
                "schema": {"type": "integer"},
            }
        },
    }
}
_CHANGE: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    409: {"description": "Not allowed in the current status"},
    422: {"description": "Bad input"},
}


@router.get("/me", tags=["users"])
def me(user: Viewer) -> Json:
    """The signed-in user, their role and the actions it allows."""
    return {
        "name": user.name,
        "role": user.role.value,
        "actions": [action.value for action, roles in PERMISSIONS.items() if user.role in roles],
    }


# -- packages --------------------------------------------------------------------------------


@router.get("/packages", tags=["packages"])
def packages(
    request: Request,
    user: Viewer,
    status: Annotated[list[PackageStatus] | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00]*$")] = None,
    limit: Limit = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000), Digits] = 0,
) -> Json:
    """Packages sorted by name with status, next run and last run; filter by status and name."""
    listing = manager(request).package_list(status=status or (), name_contains=q, limit=limit, offset=offset)
    return record(listing)


@router.get("/packages/{name}", tags=["packages"], responses=_NOT_FOUND)
def package(request: Request, user: Viewer, name: PackageName) -> Json:
    """A package's definition, status, next 10 run times and last run."""
    jqm = manager(request)
    return package_json(jqm.package(name), jqm.next_runs(name, 10))


@router.post("/packages", tags=["packages"], status_code=201, responses=_CHANGE)
def create_package(request: Request, body: PackageIn, user: Creator) -> Json:
    """Create a DRAFT package; 422 if the name exists."""
    jqm = manager(request)
    state = jqm.create(body.build(), actor=user.name)
    return package_json(state, jqm.next_runs(state.name, 10))


@router.put("/packages/{name}", tags=["packages"], responses=_CHANGE)
def save_package(request: Request, name: PackageName, body: PackageIn, user: Editor) -> Json:
    """Replace the definition of a package that is not ACTIVE (or create it as DRAFT)."""
    if body.name != name:
        raise HTTPException(422, f"the body names package '{body.name}' but the URL names '{name}'")
    jqm = manager(request)
    state = jqm.save(body.build(), actor=user.name)
    return package_json(state, jqm.next_runs(name, 10))


@router.delete("/packages/{name}", tags=["packages"], status_code=204, responses=_CHANGE)
def delete_package(request: Request, name: PackageName, user: Deleter) -> None:
    """Delete a package that is not ACTIVE; its runs and log entries are kept."""
    manager(request).delete(name, actor=user.name)


@router.post("/packages/{name}/activate", tags=["packages"], responses=_CHANGE)
def activate(request: Request, name: PackageName, user: Activator) -> Json:
    """Validate everything and make the package ACTIVE: its recurrences fire, editing is locked."""
    jqm = manager(request)
    return package_json(jqm.activate(name, actor=user.name), jqm.next_runs(name, 10))


@router.post("/packages/{name}/hold", tags=["packages"], responses=_CHANGE)
def hold(request: Request, name: PackageName, user: Holder) -> Json:
    """Put an ACTIVE package ON_HOLD: a running job finishes, the rest of its run is skipped."""
    jqm = manager(request)
    return package_json(jqm.hold(name, actor=user.name), jqm.next_runs(name, 10))


@router.post("/packages/{name}/run", tags=["packages"], status_code=201, responses=_CHANGE)
def run_now(
    request: Request,
    name: PackageName,
    user: Runner,
    queue: bool = False,
) -> Json:
    """Start a run now; ``queue=true`` waits for a run in flight instead of refusing."""
    via = "API token" if request.headers.get("authorization") else "API"
    return record(manager(request).run_now(name, queue=queue, actor=user.name, via=via))


# -- runs and log entries --------------------------------------------------------------------


@router.get("/runs", tags=["runs"], responses={**_NOT_FOUND, **_PAGED})
def runs(
    request: Request,
    response: Response,
    user: Viewer,
    package: OptionalPackage = None,
    status: RunStatus | None = None,
    since: Day = None,
    until: Day = None,
    before_id: BeforeId = None,
    limit: Limit = 50,
) -> list[Json]:
    """Runs, newest first, created on or after ``since`` and up to the end of ``until`` (UTC days); page
    back with ``before_id`` = the ``X-Next-Before-Id`` header of the page before."""
    found = manager(request).runs(
        package, status, limit + 1, before_id=before_id, since=day_start(since), until=day_end(until)
    )
    return _paged(response, found, limit)


def _paged(response: Response, rows: list[Any], limit: int) -> list[Json]:
    shown, following = split_page(rows, limit)
    if following is not None:
        response.headers[NEXT_HEADER] = str(following)
    return [plain(row) for row in shown]


@router.get("/runs/{run_id}", tags=["runs"], responses=_NOT_FOUND)
def run(request: Request, user: Viewer, run_id: RunId) -> Json:
    """A run with each job and its attempts."""
    return record(manager(request).run(run_id))


@router.post("/runs/{run_id}/cancel", tags=["runs"], responses=_CHANGE)
def cancel_run(request: Request, run_id: RunId, user: RunCanceller) -> Json:
    """Stop a run: queued jobs never start, the running job is aborted."""
    return record(manager(request).cancel_run(run_id, actor=user.name))


@router.get("/log-entries", tags=["runs"], responses=_NOT_FOUND)
def log_entries(
    request: Request,
    user: Viewer,
    package: OptionalPackage = None,
    run_id: OptionalId = None,
    job_id: OptionalId = None,
    status: Annotated[str | None, Query(pattern=r"^[A-Za-z_]{1,16}$")] = None,
    kind: LogKind | None = None,
    since: Day = None,
    until: Day = None,
    before_id: BeforeId = None,
    limit: Limit = 100,
) -> list[Json]:
    """Log entries, newest first; page back with ``before_id`` = the last id of the previous page."""
    entries = manager(request).log_entries(
        package=package,
        run_id=run_id,
        job_id=job_id,
        status=status,
        kind=kind,
        since=day_start(since),
        until=day_end(until),
        before_id=before_id,
        limit=limit,
    )
    return [plain(entry) for entry in reversed(entries)]


@router.get("/log-entries/{entry_id}", tags=["runs"], responses=_NOT_FOUND)
def log_entry(request: Request, user: Viewer, entry_id: EntryId) -> Json:
    """One log entry, with its error and traceback."""
    return record(manager(request).log_entry(entry_id))


@router.get("/cues", tags=["packages"])
def cues(request: Request, user: Viewer) -> Json:
    """What needs an operator's eye: runs and jobs failed in the last 24 h (counted up to 1,000; ``capped``
    says there were more), jobs running now, packages in ERROR."""
    return record(manager(request).cues())


# -- the job queue ---------------------------------------------------------------------------


@router.get("/queues", tags=["job queue"])
def queues(request: Request, user: Viewer) -> list[Json]:
    """Queues with their pool size, paused state, job counts by status and the live workers consuming
    them (from their heartbeats)."""
    return [plain(queue) for queue in manager(request).queues()]


@router.post("/queues/{name}/pause", tags=["job queue"], responses=_CHANGE)
def pause_queue(request: Request, name: QueueName, user: QueuePauser) -> Json:
    """No new job of the queue starts on any worker until it is resumed; running jobs finish."""
    return record(manager(request).pause_queue(name, actor=user.name))


@router.post("/queues/{name}/resume", tags=["job queue"], responses=_CHANGE)
def resume_queue(request: Request, name: QueueName, user: QueuePauser) -> Json:
    """Jobs of a paused queue start again, those that waited first."""
    return record(manager(request).resume_queue(name, actor=user.name))


@router.post("/queues/{name}/shutdown", tags=["job queue"], responses=_CHANGE)
def shut_down_queue(request: Request, name: QueueName, user: QueueShutter) -> Json:
    """Pause the queue and abort its running jobs (Administrator only)."""
    return record(manager(request).shut_down_queue(name, actor=user.name))


@router.get("/jobs", tags=["job queue"], responses=_PAGED)
def jobs(
    request: Request,
    response: Response,
    user: Viewer,
    queue: Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00]*$")] = None,
    status: JobStatus | None = None,
    include_runs: bool = False,
    worker: Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00]*$")] = None,
    package: OptionalPackage = None,
    since: Day = None,
    until: Day = None,
    before_id: BeforeId = None,
    limit: Limit = 100,
) -> list[Json]:
    """Jobs, newest first: stand-alone ones, or all (``include_runs=true``); filtered by queue, status,
    worker, package and creation day (UTC); paged as ``/api/runs``."""
    found = manager(request).jobs(
        queue=queue,
        status=status,
        stand_alone=not include_runs,
        limit=limit + 1,
        worker=worker,
        package=package,
        before_id=before_id,
        since=day_start(since),
        until=day_end(until),
    )
    return _paged(response, found, limit)


@router.get("/jobs/{job_id}", tags=["job queue"], responses=_NOT_FOUND)
def job(request: Request, user: Viewer, job_id: JobId) -> Json:
    """A job with its attempts."""
    return record(manager(request).job(job_id))


@router.post("/jobs/{job_id}/cancel", tags=["job queue"], responses=_CHANGE)
def cancel_job(request: Request, job_id: JobId, user: JobCanceller) -> Json:
    """Cancel a QUEUED, DELAYED or RETRYING job: it never runs."""
    return record(manager(request).cancel(job_id, actor=user.name))


@router.post("/jobs/{job_id}/abort", tags=["job queue"], responses=_CHANGE)
def abort_job(request: Request, job_id: JobId, user: Aborter) -> Json:
    """Terminate a RUNNING job on whichever worker runs it."""
    return record(manager(request).abort(job_id, actor=user.name))


@router.post("/jobs/{job_id}/requeue", tags=["job queue"], responses=_CHANGE)
def requeue_job(request: Request, job_id: JobId, user: Requeuer) -> Json:
    """Add a finished stand-alone job to its queue again."""
    return record(manager(request).requeue(job_id, actor=user.name))


@router.post("/jobs", tags=["job queue"], status_code=201, responses=_CHANGE)
async def enqueue(request: Request, user: Enqueuer, body: JobIn) -> Json:
    """Add a stand-alone job to a queue, checked as ``jqm.enqueue`` checks it (the task and the queue must
    exist); ``delay_s`` holds it back (DELAYED, with ``not_before``)."""
    jqm = manager(request)

    def add() -> Json:
        job = jqm.enqueue(
            body.task,
            body.args,
            body.kwargs,
            queue=body.queue,
            description=body.description,
            retry=None if body.retry is None else body.retry.build(),
            delay=None if body.delay_s is None else timedelta(seconds=body.delay_s),
            soft_time_limit=None
            if body.soft_time_limit_s is None
            else timedelta(seconds=body.soft_time_limit_s),
            time_limit=None if body.time_limit_s is None else timedelta(seconds=body.time_limit_s),
        )
        return record(jqm.job(job.id))

    return await run_in_threadpool(add)


@router.post("/jobs/clean", tags=["job queue"], responses=_CHANGE)
async def clean_jobs(request: Request, user: Cleaner, body: CleanIn) -> Json:
    """Delete finished stand-alone jobs older than ``older_than_s`` seconds, and their log entries."""
    jqm = manager(request)
    cleaned = await run_in_threadpool(jqm.clean, timedelta(seconds=body.older_than_s), actor=user.name)
    return record(cleaned)


@router.post("/runs/clean", tags=["runs"], responses=_CHANGE)
async def clean_runs(request: Request, user: RunCleaner, body: CleanIn) -> Json:
    """Delete finished package runs older than ``older_than_s`` seconds, with their jobs and log entries
    (runs in flight are never touched)."""
    jqm = manager(request)
    cleaned = await run_in_threadpool(jqm.clean_runs, timedelta(seconds=body.older_than_s), actor=user.name)
    return record(cleaned)


@router.get("/audit", tags=["job queue"], responses=_PAGED)
def audit(
    request: Request,
    response: Response,
    user: Viewer,
    package: OptionalPackage = None,
    since: Day = None,
    until: Day = None,
    before_id: BeforeId = None,
    limit: Limit = 200,
) -> list[Json]:
    """The audit trail, newest first, by package and day (UTC); paged as ``/api/runs``."""
    found = manager(request).audit(
        package=package, limit=limit + 1, before_id=before_id, since=day_start(since), until=day_end(until)
    )
    return _paged(response, found[::-1], limit)
