"""The packages page and the package card: entries, recurrences, On Error, notifications, lifecycle."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from jqm_celery.definitions import Package
from jqm_celery.errors import JQMError, NotFoundError
from jqm_celery.manager import JobQueueManager
from jqm_celery.notifications.rules import Scenario
from jqm_celery.recurrence import CatchUp, next_runs
from jqm_celery.statuses import EDITABLE, OnError, PackageStatus
from jqm_celery.web import forms
from jqm_celery.web.params import Digits
from jqm_celery.web.permits import Activator, Creator, Deleter, Editor, Holder, Runner, Viewer
from jqm_celery.web.templating import flash, in_zone, page, redirect, viewer_zone
from jqm_celery.web.users import WebUser

router = APIRouter()
PAGE_SIZE = 50
PREVIEW = 10
#: How long the card's worker check waits for the workers' replies.
WORKER_REPLY_S = 1.0


def _jqm(request: Request) -> JobQueueManager:
    jqm: JobQueueManager = request.app.state.jqm
    return jqm


#: Fields posted as several check boxes: their values are joined with commas.
_MULTI = ("days", "on")


async def _form(request: Request) -> dict[str, str]:
    data = await request.form()
    values = {key: str(value) for key, value in data.items()}
    for key in _MULTI:
        if key in data:
            values[key] = ",".join(str(value) for value in data.getlist(key) if str(value))
    return values


# -- list ------------------------------------------------------------------------------------


@router.get("/packages")
def packages(
    request: Request,
    user: Viewer,
    q: str = "",
    status: str = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000), Digits] = 1,
) -> HTMLResponse:
    chosen = status if status in PackageStatus.__members__ else ""
    listing = _jqm(request).package_list(
        status=[chosen] if chosen else (),
        name_contains=q or None,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    pages = max(1, -(-listing.total // PAGE_SIZE))
    stopped = [p.name for p in listing.packages if p.status is PackageStatus.ERROR]
    return page(
        request,
        user,
        "packages.html",
        listing=listing,
        stops=_jqm(request).stop_reasons(stopped) if stopped else {},
        cues=_jqm(request).cues(),
        q=q,
        status=chosen,
        statuses=list(PackageStatus),
        page_number=page_number,
        pages=pages,
    )


# -- create ----------------------------------------------------------------------------------


@router.get("/new-package")
def new_package(request: Request, user: Creator) -> HTMLResponse:
    return _new_page(request, user, {"run_order": "10", "args": "[]", "kwargs": "{}"}, {})


@router.post("/new-package")
async def create_package(request: Request, user: Creator) -> Response:
    data = await _form(request)
    jqm = _jqm(request)
    return await _in_thread(lambda: _create(request, user, jqm, data))


def _create(request: Request, user: WebUser, jqm: JobQueueManager, data: dict[str, str]) -> Response:
    name = forms.parse_name(data, lambda n: _exists(jqm, n))
    on_error = forms.parse_on_error(data)
    entry = forms.parse_entry(data, jqm.registered_tasks())
    errors = {**name.errors, **on_error.errors, **entry.errors}
    if errors or name.value is None or entry.value is None or on_error.value is None:
        return _new_page(request, user, data, errors)
    try:
        package = Package(
            name.value,
            entries=[entry.value],
            on_error=on_error.value,
            description=forms.free_text(data, "package_description"),
        )
        jqm.create(package, actor=user.name)
    except JQMError as exc:
        return _new_page(request, user, data, {forms.FORM_ERROR: str(exc)})
    flash(request, f"package '{package.name}' created as DRAFT")
    return redirect(f"/packages/{package.name}")


def _new_page(
    request: Request, user: WebUser, values: dict[str, str], errors: dict[str, str]
) -> HTMLResponse:
    return page(
        request,
        user,
        "package_new.html",
        status_code=422 if errors else 200,
        values=values,
        errors=errors,
        tasks=_jqm(request).registered_tasks(),
        on_errors=list(OnError),
    )


def _exists(jqm: JobQueueManager, name: str) -> bool:
    try:
        jqm.package(name)
    except NotFoundError:
        return False
    return True


# -- the card --------------------------------------------------------------------------------


@router.get("/packages/{name}")
def card(request: Request, user: Viewer, name: str) -> HTMLResponse:
    return _card(request, user, name)


@router.get("/packages/{name}/workers")
def workers(request: Request, user: Viewer, name: str) -> HTMLResponse:
    """The card's warning, as an HTML fragment, for each queue of the package that no live worker consumes.

    Asking the workers is a broadcast that waits for their replies, so the card loads this afterwards.
    """
    jqm = _jqm(request)
    default = str(jqm.app.conf.task_default_queue)
    used = sorted({entry.queue or default for entry in jqm.package(name).definition.entries})
    live = jqm.live_queues(timeout_s=WORKER_REPLY_S)
    idle = [] if live is None else [queue for queue in used if queue not in live]
    return page(request, user, "_workers.html", idle=idle, asked=live is not None)


def _card(
    request: Request,
    user: WebUser,
    name: str,
    *,
    status_code: int = 200,
    form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    preview: list[Any] | None = None,
) -> HTMLResponse:
    jqm = _jqm(request)
    state = jqm.package(name)
    return page(
        request,
        user,
        "package.html",
        status_code=status_code,
        state=state,
        package=state.definition,
        editable=state.status in EDITABLE,
        stop=jqm.stop_reasons([name]).get(name) if state.status is PackageStatus.ERROR else None,
        next_runs=next_runs(state.definition.recurrences, jqm.clock.now(), PREVIEW),
        runs=(runs := jqm.runs(name, limit=10)),
        starters=jqm.run_starters(name, [run.id for run in runs]),
        tasks=jqm.registered_tasks(),
        scenarios=list(Scenario),
        on_errors=list(OnError),
        catch_ups=list(CatchUp),
        form=form,
        values=values or {},
        errors=errors or {},
        preview=preview,
    )


def _save(
    request: Request,
    user: WebUser,
    name: str,
    change: Callable[[Package], Package],
    *,
    form: str,
    data: dict[str, str],
    done: str,
) -> Response:
    """Apply ``change`` to the stored definition and save it; on an error, show the form again with it."""
    jqm = _jqm(request)
    try:
        jqm.save(change(jqm.package(name).definition), actor=user.name)
    except NotFoundError:
        raise
    except JQMError as exc:
        return _card(
            request, user, name, status_code=422, form=form, values=data, errors={forms.FORM_ERROR: str(exc)}
        )
    flash(request, done)
    return redirect(f"/packages/{name}")


async def _in_thread(work: Callable[[], Response]) -> Response:
    # The store is synchronous: a form is read on the event loop, the work happens in a thread.
    return await run_in_threadpool(work)


# -- entries ---------------------------------------------------------------------------------


@router.post("/packages/{name}/entries")
async def add_entry(request: Request, user: Editor, name: str) -> Response:
    data = await _form(request)
    return await _in_thread(lambda: _put_entry(request, user, name, data, None))


@router.get("/packages/{name}/entries/{position}")
def edit_entry_form(request: Request, user: Editor, name: str, position: int) -> HTMLResponse:
    state = _jqm(request).package(name)
    entry = _nth(state.definition.entries, position, name, "entry")
    return _entry_page(request, user, name, position, forms.entry_values(entry), {})


@router.post("/packages/{name}/entries/{position}")
async def edit_entry(request: Request, user: Editor, name: str, position: int) -> Response:
    data = await _form(request)
    return await _in_thread(lambda: _put_entry(request, user, name, data, position))


@router.post("/packages/{name}/entries/{position}/delete")
def delete_entry(request: Request, user: Editor, name: str, position: int) -> Response:
    def drop(package: Package) -> Package:
        _nth(package.entries, position, name, "entry")
        return dataclasses.replace(package, entries=_without(package.entries, position))

    return _save(request, user, name, drop, form="entries", data={}, done=f"entry {position} removed")


def _put_entry(
    request: Request, user: WebUser, name: str, data: dict[str, str], position: int | None
) -> Response:
    jqm = _jqm(request)
    parsed = forms.parse_entry(data, jqm.registered_tasks())
    if not parsed.ok or parsed.value is None:
        if position is not None:
            return _entry_page(request, user, name, position, data, parsed.errors)
        return _card(request, user, name, status_code=422, form="entry", values=data, errors=parsed.errors)
    entry = parsed.value

    def put(package: Package) -> Package:
        return dataclasses.replace(package, entries=_put(package.entries, entry, position, name, "entry"))

    done = f"entry '{entry.task}' {'added' if position is None else 'saved'}"
    return _save(request, user, name, put, form="entry", data=data, done=done)


def _entry_page(
    request: Request,
    user: WebUser,
    name: str,
    position: int,
    values: dict[str, str],
    errors: dict[str, str],
) -> HTMLResponse:
    return page(
        request,
        user,
        "entry_edit.html",
        status_code=422 if errors else 200,
        name=name,
        position=position,
        values=values,
        errors=errors,
        tasks=_jqm(request).registered_tasks(),
    )


# -- recurrences -----------------------------------------------------------------------------


@router.post("/packages/{name}/recurrences")
async def add_recurrence(request: Request, user: Editor, name: str) -> Response:
    data = await _form(request)
    return await _in_thread(lambda: _put_recurrence(request, user, name, data, None))


@router.get("/packages/{name}/recurrences/{position}")
def edit_recurrence_form(request: Request, user: Editor, name: str, position: int) -> HTMLResponse:
    recurrence = _nth(_jqm(request).package(name).definition.recurrences, position, name, "recurrence")
    return _edit_page(request, user, name, position, "recurrence", forms.recurrence_values(recurrence), {})


@router.post("/packages/{name}/recurrences/{position}")
async def edit_recurrence(request: Request, user: Editor, name: str, position: int) -> Response:
    data = await _form(request)
    return await _in_thread(lambda: _put_recurrence(request, user, name, data, position))


def _put_recurrence(
    request: Request, user: WebUser, name: str, data: dict[str, str], position: int | None
) -> Response:
    parsed = forms.parse_recurrence(data)
    if not parsed.ok or parsed.value is None:
        if position is not None:
            return _edit_page(request, user, name, position, "recurrence", data, parsed.errors)
        return _card(
            request, user, name, status_code=422, form="recurrence", values=data, errors=parsed.errors
        )
    recurrence = parsed.value
    if forms.text(data, "action") == "preview":
        preview = [at for at, _ in next_runs([recurrence], _jqm(request).clock.now(), PREVIEW)]
        if position is not None:
            return _edit_page(request, user, name, position, "recurrence", data, {}, preview=preview)
        return _card(request, user, name, form="recurrence", values=data, preview=preview)

    def put(package: Package) -> Package:
        return dataclasses.replace(
            package, recurrences=_put(package.recurrences, recurrence, position, name, "recurrence")
        )

    done = f"recurrence {recurrence.describe()} {'added' if position is None else 'saved'}"
    return _save(request, user, name, put, form="recurrence", data=data, done=done)


@router.post("/packages/{name}/recurrences/{position}/delete")
def delete_recurrence(request: Request, user: Editor, name: str, position: int) -> Response:
    def drop(package: Package) -> Package:
        _nth(package.recurrences, position, name, "recurrence")
        return dataclasses.replace(package, recurrences=_without(package.recurrences, position))

    return _save(
        request, user, name, drop, form="recurrences", data={}, done=f"recurrence {position} removed"
    )


# -- notifications ---------------------------------------------------------------------------


@router.post("/packages/{name}/notifications")
async def add_rule(request: Request, user: Editor, name: str) -> Response:
    data = await _form(request)
    return await _in_thread(lambda: _put_rule(request, user, name, data, None))


@router.get("/packages/{name}/notifications/{position}")
def edit_rule_form(request: Request, user: Editor, name: str, position: int) -> HTMLResponse:
    rule = _nth(_jqm(request).package(name).definition.notifications, position, name, "notification rule")
    return _edit_page(request, user, name, position, "rule", forms.rule_values(rule), {})


@router.post("/packages/{name}/notifications/{position}")
async def edit_rule(request: Request, user: Editor, name: str, position: int) -> Response:
    data = await _form(request)
    return await _in_thread(lambda: _put_rule(request, user, name, data, position))


def _put_rule(
    request: Request, user: WebUser, name: str, data: dict[str, str], position: int | None
) -> Response:
    values = {**data, "on": data.get("on", "")}
    parsed = forms.parse_rule(data, values["on"].split(","))
    if not parsed.ok or parsed.value is None:
        if position is not None:
            return _edit_page(request, user, name, position, "rule", values, parsed.errors)
        return _card(request, user, name, status_code=422, form="rule", values=values, errors=parsed.errors)
    rule = parsed.value

    def put(package: Package) -> Package:
        return dataclasses.replace(
            package, notifications=_put(package.notifications, rule, position, name, "notification rule")
        )

    done = f"notification {rule.describe()} {'added' if position is None else 'saved'}"
    return _save(request, user, name, put, form="rule", data=values, done=done)


def _edit_page(
    request: Request,
    user: WebUser,
    name: str,
    position: int,
    what: str,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    preview: list[Any] | None = None,
) -> HTMLResponse:
    return page(
        request,
        user,
        f"{what}_edit.html",
        status_code=422 if errors else 200,
        name=name,
        position=position,
        values=values,
        errors=errors,
        preview=preview,
        scenarios=list(Scenario),
    )


@router.post("/packages/{name}/notifications/{position}/delete")
def delete_rule(request: Request, user: Editor, name: str, position: int) -> Response:
    def drop(package: Package) -> Package:
        _nth(package.notifications, position, name, "notification rule")
        return dataclasses.replace(package, notifications=_without(package.notifications, position))

    return _save(
        request, user, name, drop, form="rules", data={}, done=f"notification rule {position} removed"
    )


# -- settings and lifecycle ------------------------------------------------------------------


@router.post("/packages/{name}/settings")
async def settings(request: Request, user: Editor, name: str) -> Response:
    data = await _form(request)
    return await _in_thread(lambda: _put_settings(request, user, name, data))


def _put_settings(request: Request, user: WebUser, name: str, data: dict[str, str]) -> Response:
    on_error = forms.parse_on_error(data)
    catch_up = forms.text(data, "catch_up") or CatchUp.ONCE.value
    errors = dict(on_error.errors)
    if catch_up not in CatchUp.__members__:
        errors["catch_up"] = f"choose one of {', '.join(CatchUp)}"
    if errors or on_error.value is None:
        return _card(request, user, name, status_code=422, form="settings", values=data, errors=errors)
    chosen = on_error.value

    def change(package: Package) -> Package:
        return dataclasses.replace(
            package,
            on_error=chosen,
            catch_up=CatchUp(catch_up),
            allow_overlap=data.get("allow_overlap") == "on",
            description=forms.free_text(data, "description"),
        )

    return _save(request, user, name, change, form="settings", data=data, done="settings saved")


@router.post("/packages/{name}/activate")
def activate(request: Request, user: Activator, name: str) -> RedirectResponse:
    zone = viewer_zone(request)
    return _lifecycle(
        request,
        name,
        lambda jqm: f"ACTIVE; next run {in_zone(jqm.activate(name, actor=user.name).next_run_at, zone)}",
    )


@router.post("/packages/{name}/hold")
def hold(request: Request, user: Holder, name: str) -> RedirectResponse:
    return _lifecycle(request, name, lambda jqm: f"{jqm.hold(name, actor=user.name).status}")


@router.post("/packages/{name}/run")
async def run_now(request: Request, user: Runner, name: str) -> Response:
    queue = (await _form(request)).get("queue") == "true"
    return await _in_thread(lambda: _run_now(request, user, name, queue=queue))


def _run_now(request: Request, user: WebUser, name: str, *, queue: bool) -> Response:
    try:
        run = _jqm(request).run_now(name, queue=queue, actor=user.name, via="web UI")
    except NotFoundError:
        raise
    except JQMError as exc:
        flash(request, str(exc), "error")
        return redirect(f"/packages/{name}")
    flash(request, f"run {run.id} {'queued behind the run in flight' if queue else 'started'}")
    return redirect(f"/runs/{run.id}")


@router.post("/packages/{name}/delete")
def delete(request: Request, user: Deleter, name: str) -> RedirectResponse:
    jqm = _jqm(request)
    try:
        jqm.delete(name, actor=user.name)
    except NotFoundError:
        raise
    except JQMError as exc:
        flash(request, str(exc), "error")
        return redirect(f"/packages/{name}")
    flash(request, f"package '{name}' deleted; its runs and log entries are kept")
    return redirect("/packages")


def _lifecycle(request: Request, name: str, act: Callable[[JobQueueManager], str]) -> RedirectResponse:
    try:
        flash(request, f"package '{name}' is {act(_jqm(request))}")
    except NotFoundError:
        raise
    except JQMError as exc:
        flash(request, str(exc), "error")
    return redirect(f"/packages/{name}")


def _nth(items: Any, position: int, name: str, what: str) -> Any:
    if not 1 <= position <= len(items):
        raise NotFoundError(f"package '{name}' has no {what} {position}; it has {len(items)}")
    return items[position - 1]


def _put(items: Any, item: Any, position: int | None, name: str, what: str) -> list[Any]:
    """``items`` with ``item`` added (position None) or in place of the one at ``position``."""
    if position is None:
        return [*items, item]
    _nth(items, position, name, what)
    return [item if i == position else old for i, old in enumerate(items, start=1)]


def _without(items: Any, position: int) -> list[Any]:
    return [item for i, item in enumerate(items, start=1) if i != position]
