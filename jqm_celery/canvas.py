"""Packages as Celery canvases: a chain of immutable signatures, a group where entries run in parallel.

``entries_from_canvas`` reads a canvas a Celery user already writes — ``chain(a.si(), b.si(7),
group(c.si(), d.si()))`` — as the entries of a package, one run order per step of the chain (10, 20, …).
It refuses what a package cannot express, with what to write instead: results passed from one step to
the next (a signature that is not immutable, a callback), a chain or chord inside a group, options that a
package entry does not have. ``package_canvas`` is the reverse view: the chain a package runs as, before
jqm wraps each task in its own job task; ``describe_canvas`` prints it as Python.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from celery import chain, group
from celery.canvas import Signature, _chain, _chord, signature

from jqm_celery.definitions import NO_RETRY, Entry, Package, RetryPolicy
from jqm_celery.errors import ValidationError

#: The run order of the first step, and the distance between steps.
RUN_ORDER_STEP = 10

# Signature options an entry has a field for; any other option is refused, as a package would drop it.
_ENTRY_OPTIONS = ("queue", "soft_time_limit", "time_limit")


def entries_from_canvas(
    package: str, canvas: Signature, retry: Mapping[str, RetryPolicy] | None = None
) -> tuple[Entry, ...]:
    """The entries of ``canvas``, one run order per step; ``retry`` gives a policy per task name."""
    retry = dict(retry or {})
    used: set[str] = set()
    owner = f"package '{package}'"
    if not isinstance(canvas, Signature):
        raise ValidationError(
            f"{owner}: from_canvas needs a Celery signature, chain or group, got {type(canvas).__name__}; "
            "e.g. chain(export.si(region='eu'), upload.si(7))"
        )
    entries = []
    for position, stage in enumerate(_stages(owner, canvas), start=1):
        for sig in stage:
            if not sig.immutable and position > 1:
                raise ValidationError(
                    f"{owner}: step {position}, {_call(sig)}, is not immutable (.s()), so Celery would pass "
                    f"it the result of step {position - 1}; a package passes no results between entries: "
                    f"write {_name(sig)}.si(...) with all its arguments, or read what it needs from your "
                    "own storage"
                )
            entries.append(_entry(owner, sig, position * RUN_ORDER_STEP, retry.get(sig.task)))
            used.add(sig.task)
    unused = sorted(set(retry) - used)
    if unused:
        raise ValidationError(
            f"{owner}: retry names task(s) {', '.join(unused)} that are not in the canvas; "
            "name the tasks of its signatures"
        )
    return tuple(entries)


def package_canvas(package: Package) -> Signature:
    """The chain ``package`` runs as: one immutable signature per entry, a group per shared run order."""
    steps: list[Signature] = []
    for _order, entries in package.stages():
        signatures = [_signature(entry) for entry in entries]
        steps.append(signatures[0] if len(signatures) == 1 else group(signatures))
    return chain(*steps)


def describe_canvas(package: Package) -> str:
    """``package_canvas(package)`` as the Python a user would write, one step per line; the entries'
    retry policies follow as the ``retry=`` argument of ``Package.from_canvas``."""
    lines = ["chain("]
    for _order, entries in package.stages():
        calls = [_entry_call(entry) for entry in entries]
        lines.append(f"    {calls[0]}," if len(calls) == 1 else f"    group({', '.join(calls)}),")
    lines.append(")")
    retried = {entry.task: entry.retry for entry in package.entries if entry.retry != NO_RETRY}
    if retried:
        policies = ", ".join(f"{task!r}: {_policy(retry)}" for task, retry in retried.items())
        lines.append(f"retry={{{policies}}}")
    return "\n".join(lines)


def _policy(retry: RetryPolicy) -> str:
    """The RetryPolicy call that builds ``retry``, with only the fields that differ from the defaults."""
    defaults = RetryPolicy()
    fields = []
    for label in ("max_retries", "base_delay", "factor", "max_delay", "jitter"):
        value = getattr(retry, label)
        if value != getattr(defaults, label) or label == "max_retries":
            fields.append(f"{label}={_literal(value)}")
    return f"RetryPolicy({', '.join(fields)})"


def _literal(value: object) -> str:
    if isinstance(value, timedelta):
        return f"timedelta(seconds={value.total_seconds():g})"
    return repr(value)


# -- reading a canvas -----------------------------------------------------------------------------


def _stages(owner: str, canvas: Signature) -> Iterator[list[Signature]]:
    """The steps of ``canvas`` in order, each a list of the plain signatures that run in parallel."""
    _no_callbacks(owner, canvas)
    if isinstance(canvas, _chain):
        if not canvas.tasks:
            raise ValidationError(f"{owner}: the chain is empty; give it at least one signature")
        for step in canvas.tasks:
            yield from _stages(owner, step)
    elif isinstance(canvas, _chord):
        yield _parallel(owner, canvas.tasks, "the header of a chord")
        body = canvas.body
        if body is None:
            return
        if (
            isinstance(body, Signature)
            and not isinstance(body, _chain | group | _chord)
            and not body.immutable
        ):
            raise ValidationError(
                f"{owner}: the chord's body {_call(body)} is not immutable (.s()), so Celery would pass it "
                f"the results of the group before it; a package passes no results between entries: write "
                f"{_name(body)}.si(...) with all its arguments"
            )
        yield from _stages(owner, body)
    elif isinstance(canvas, group):
        yield _parallel(owner, canvas.tasks, "a group")
    else:
        yield [_plain(owner, canvas)]


def _parallel(owner: str, tasks: Any, where: str) -> list[Signature]:
    members = list(tasks)
    if not members:
        raise ValidationError(f"{owner}: {where} is empty; give it at least one signature")
    parallel = []
    for member in members:
        _no_callbacks(owner, member)
        if isinstance(member, _chain | group | _chord):
            raise ValidationError(
                f"{owner}: {where} holds a {_kind(member)} ({member!r}); the entries of one step of a "
                "package are single tasks that run side by side: make that sequence one task, or move "
                "it into steps of the outer chain"
            )
        parallel.append(_plain(owner, member))
    return parallel


def _plain(owner: str, sig: Signature) -> Signature:
    kind = sig.get("subtask_type") or (
        sig.task.split(".", 1)[1] if str(sig.task).startswith("celery.") else ""
    )
    if kind:
        raise ValidationError(
            f"{owner}: {sig!r} is a Celery {kind}, which a package cannot express; "
            "write one signature per entry (a group of them to run in parallel)"
        )
    if not isinstance(sig.task, str):
        raise ValidationError(f"{owner}: {sig!r} has no task name; use task.si(...) or signature('name')")
    return sig


def _no_callbacks(owner: str, sig: Signature) -> None:
    for option in ("link", "link_error"):
        if sig.options.get(option):
            raise ValidationError(
                f"{owner}: {_kind(sig)} {sig!r} has a {option} callback; a package passes no results and "
                "has no callbacks: make the callback the next step of the chain, and use the package's "
                "on_error and notifications for failures"
            )


def _entry(owner: str, sig: Signature, run_order: int, retry: RetryPolicy | None) -> Entry:
    options = dict(sig.options)
    unknown = sorted(set(options) - set(_ENTRY_OPTIONS))
    if unknown:
        raise ValidationError(
            f"{owner}: {_call(sig)} sets {', '.join(unknown)}, which a package entry has no place for; "
            f"an entry keeps {', '.join(_ENTRY_OPTIONS)} (retries: from_canvas(..., retry={{task: "
            "RetryPolicy(...)}}))"
        )
    return Entry(
        sig.task,
        args=list(sig.args),
        kwargs=dict(sig.kwargs),
        run_order=run_order,
        retry=retry or NO_RETRY,
        queue=options.get("queue"),
        soft_time_limit=_limit(owner, sig, options.get("soft_time_limit")),
        time_limit=_limit(owner, sig, options.get("time_limit")),
    )


def _limit(owner: str, sig: Signature, value: object) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise ValidationError(f"{owner}: {_call(sig)}: a time limit must be seconds, got {value!r}")


def _kind(sig: Signature) -> str:
    if isinstance(sig, _chain):
        return "chain"
    if isinstance(sig, _chord):
        return "chord"
    return "group" if isinstance(sig, group) else "signature"


def _name(sig: Signature) -> str:
    return str(sig.task).rsplit(".", 1)[-1]


def _call(sig: Signature) -> str:
    return _format_call(str(sig.task), "si" if sig.immutable else "s", sig.args, sig.kwargs, {})


# -- writing a canvas ----------------------------------------------------------------------------


def _signature(entry: Entry) -> Signature:
    return signature(
        entry.task, args=tuple(entry.args), kwargs=dict(entry.kwargs), immutable=True, **_options(entry)
    )


def _options(entry: Entry) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if entry.queue is not None:
        options["queue"] = entry.queue
    for label in ("soft_time_limit", "time_limit"):
        value: timedelta | None = getattr(entry, label)
        if value is not None:
            options[label] = value.total_seconds()
    return options


def _entry_call(entry: Entry) -> str:
    return _format_call(entry.task, "si", entry.args, entry.kwargs, _options(entry))


def _format_call(
    task: str, method: str, args: Any, kwargs: Mapping[str, Any], options: Mapping[str, Any]
) -> str:
    arguments = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    call = f"{task}.{method}({', '.join(arguments)})"
    if options:
        call += f".set({', '.join(f'{k}={v!r}' for k, v in options.items())})"
    return call
