"""Form input to definitions, with an error per field: what the package card's forms post.

Each ``parse_…`` returns the value, or ``None`` and a dict of field name → message; the page shows each
message next to its field and saves nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, available_timezones

from jqm_celery.definitions import NO_RETRY, Entry, RetryPolicy
from jqm_celery.errors import ValidationError, did_you_mean
from jqm_celery.notifications.rules import Notify, Rule, Scenario, Webhook
from jqm_celery.recurrence import Recurrence, RecurrenceKind
from jqm_celery.statuses import OnError

T = TypeVar("T")
FormData = Mapping[str, str]
FORM_ERROR = "form"
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")
#: The longest retry delay the form offers; a longer base delay raises the maximum with it.
_MAX_DELAY = timedelta(hours=1)


@dataclass
class Parsed(Generic[T]):
    value: T | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def text(data: FormData, name: str) -> str:
    return str(data.get(name, "")).strip()


def free_text(data: FormData, name: str) -> str:
    """A free-text field as typed (a description keeps its spaces); a browser's CRLF line ends become LF."""
    return str(data.get(name, "")).replace("\r\n", "\n")


def _whole(data: FormData, name: str, errors: dict[str, str], default: int) -> int:
    raw = text(data, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors[name] = f"{raw!r} is not a whole number"
        return default
    if value < 0:
        errors[name] = f"must be 0 or more, got {value}"
    return value


def _float(data: FormData, name: str, errors: dict[str, str]) -> float | None:
    """The field as a finite number, or None when it is empty or (with an error) not a number."""
    raw = text(data, name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        errors[name] = f"{raw!r} is not a number"
        return None
    if value != value or value in (float("inf"), float("-inf")):
        errors[name] = f"{raw!r} is out of range"
        return None
    return value


def _seconds(data: FormData, name: str, errors: dict[str, str], *, positive: bool = False) -> float | None:
    value = _float(data, name, errors)
    if value is None:
        return None
    if value > 10 * 365 * 86400:
        errors[name] = f"{text(data, name)!r} is out of range"
        return None
    if value < 0 or (positive and value == 0):
        errors[name] = f"must be {'more than' if positive else 'at least'} 0, got {text(data, name)}"
        return None
    return value


def _number(data: FormData, name: str, errors: dict[str, str], *, low: float) -> float | None:
    value = _float(data, name, errors)
    if value is not None and value < low:
        errors[name] = f"must be a number ≥ {low:g}, got {text(data, name)}"
        return None
    return value


def _number_text(value: float) -> str:
    """The shortest text that reads back as the same number: 30 for 30.0, 0.1 for 0.1."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _duration_text(value: timedelta | None) -> str:
    return "" if value is None else _number_text(value.total_seconds())


def _delta(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def _json(data: FormData, name: str, errors: dict[str, str], kind: type, example: str) -> Any:
    raw = text(data, name)
    if not raw:
        return kind()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        errors[name] = f"not valid JSON ({exc.msg}); e.g. {example}"
        return kind()
    if not isinstance(value, kind):
        errors[name] = f"must be a JSON {'list' if kind is list else 'object'}, e.g. {example}"
        return kind()
    return value


def parse_entry(data: FormData, registered: Iterable[str]) -> Parsed[Entry]:
    """An Entry from the entry form; the task must be one of ``registered``.

    Every field of the entry and of its retry policy has an input, so a form loaded from an entry and
    posted unchanged gives the same entry back (see :func:`entry_values`).
    """
    errors: dict[str, str] = {}
    task = text(data, "task")
    names = list(registered)
    if not task:
        errors["task"] = "required: the name of a registered Celery task"
    elif task not in names:
        errors["task"] = f"unknown task '{task}'{did_you_mean(task, names)}"
    args = _json(data, "args", errors, list, '[7, "eu"]')
    kwargs = _json(data, "kwargs", errors, dict, '{"region": "eu"}')
    run_order = _whole(data, "run_order", errors, 10)
    retry = _retry(data, errors)
    soft_time_limit_s = _seconds(data, "soft_time_limit_s", errors, positive=True)
    time_limit_s = _seconds(data, "time_limit_s", errors, positive=True)
    if errors or retry is None:
        return Parsed(errors=errors)
    return _attempt(
        lambda: Entry(
            task,
            args=args,
            kwargs=kwargs,
            run_order=run_order,
            retry=retry,
            queue=text(data, "queue") or None,
            soft_time_limit=_delta(soft_time_limit_s),
            time_limit=_delta(time_limit_s),
            description=free_text(data, "description"),
        )
    )


_RETRY_FIELDS = ("max_retries", "base_delay_s", "factor", "max_delay_s", "jitter")


def _retry(data: FormData, errors: dict[str, str]) -> RetryPolicy | None:
    """The retry policy of the entry form; all its fields empty means no retries."""
    if not any(text(data, name) for name in _RETRY_FIELDS):
        return NO_RETRY
    max_retries = _whole(data, "max_retries", errors, 0)
    base_delay_s = _seconds(data, "base_delay_s", errors)
    max_delay_s = _seconds(data, "max_delay_s", errors)
    factor = _number(data, "factor", errors, low=1.0)
    if errors:
        return None
    base = timedelta(seconds=1.0 if base_delay_s is None else base_delay_s)
    ceiling = max(base, _MAX_DELAY) if max_delay_s is None else timedelta(seconds=max_delay_s)
    if ceiling < base:
        errors["max_delay_s"] = (
            f"must be at least the base delay ({_number_text(base.total_seconds())} s); "
            "raise it or lower the base delay"
        )
        return None
    return _attempt_value(
        lambda: RetryPolicy(
            max_retries=max_retries,
            base_delay=base,
            factor=2.0 if factor is None else factor,
            max_delay=ceiling,
            jitter=text(data, "jitter") in ("on", "true", "1"),
        ),
        errors,
        "max_retries",
    )


def entry_values(entry: Entry) -> dict[str, str]:
    """The entry form's inputs for ``entry``: :func:`parse_entry` turns them back into an equal Entry."""
    retry = entry.retry
    return {
        "task": entry.task,
        "args": json.dumps(list(entry.args)),
        "kwargs": json.dumps(dict(entry.kwargs)),
        "run_order": str(entry.run_order),
        "queue": entry.queue or "",
        "max_retries": str(retry.max_retries),
        "base_delay_s": _number_text(retry.base_delay.total_seconds()),
        "factor": _number_text(float(retry.factor)),
        "max_delay_s": _number_text(retry.max_delay.total_seconds()),
        "jitter": "on" if retry.jitter else "",
        "soft_time_limit_s": _duration_text(entry.soft_time_limit),
        "time_limit_s": _duration_text(entry.time_limit),
        "description": entry.description,
    }


RECURRENCE_KINDS = ("cron", "weekly", "every", "once")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class JobForm:
    """What the add-a-job form asks for: the arguments of ``jqm.enqueue``."""

    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str | None
    delay: timedelta | None
    retry: RetryPolicy | None
    description: str


def parse_job(data: FormData) -> Parsed[JobForm]:
    """A stand-alone job from the add-a-job form; ``jqm.enqueue`` checks the task and queue names."""
    errors: dict[str, str] = {}
    task = text(data, "task")
    if not task:
        errors["task"] = "required: the name of a registered Celery task"
    args = _json(data, "args", errors, list, '[7, "eu"]')
    kwargs = _json(data, "kwargs", errors, dict, '{"region": "eu"}')
    delay_s = _seconds(data, "delay_s", errors)
    retry = _retry(data, errors)
    if errors:
        return Parsed(errors=errors)
    return Parsed(
        JobForm(
            task,
            args,
            kwargs,
            text(data, "queue") or None,
            _delta(delay_s),
            None if retry is NO_RETRY else retry,
            free_text(data, "description"),
        )
    )


def job_error_field(message: str) -> str:
    """The add-a-job field a ``jqm.enqueue`` error is about."""
    for name, words in (("queue", ("queue '", "queue name")), ("task", ("task '", "unknown task"))):
        if any(word in message for word in words):
            return name
    return FORM_ERROR


def parse_recurrence(data: FormData) -> Parsed[Recurrence]:
    """A Recurrence from the recurrence form (kind: cron, weekly, every or once).

    Only the chosen kind's fields are read. ``days`` is a comma-separated list (the form's check boxes
    joined) or a range such as ``mon-fri``; times (``at``, ``earliest_start``, ``expires``) are ISO 8601,
    on the recurrence's time zone's wall clock unless they carry an offset.
    """
    errors: dict[str, str] = {}
    kind = text(data, "kind") or "cron"
    tz = text(data, "tz") or "UTC"
    try:
        zone = ZoneInfo(tz)
    except (ValueError, KeyError, OSError):
        errors["tz"] = f"unknown time zone '{tz}'{did_you_mean(tz, available_timezones())}"
        return Parsed(errors=errors)
    if kind not in RECURRENCE_KINDS:
        return Parsed(errors={"kind": f"unknown kind {kind!r}; choose {', '.join(RECURRENCE_KINDS)}"})
    earliest_start = _instant(data, "earliest_start", zone, errors)
    expires = _instant(data, "expires", zone, errors)
    bounds = {"earliest_start": earliest_start, "expires": expires}
    if kind == "cron":
        expression = text(data, "expression")
        if not expression:
            errors["expression"] = "required, e.g. 0 2 * * * (02:00 every day)"
        if errors:
            return Parsed(errors=errors)
        return _attempt(
            lambda: Recurrence.cron(expression, tz=tz, **bounds), field_name=_bounds_or("expression")
        )
    if kind == "weekly":
        days, start, end = text(data, "days"), text(data, "start"), text(data, "end")
        every_min = _seconds(data, "every_min", errors, positive=True)
        if not days:
            errors["days"] = "choose at least one day"
        if not start:
            errors["start"] = "required, e.g. 08:00"
        if errors:
            return Parsed(errors=errors)
        every = None if every_min is None else timedelta(minutes=every_min)
        return _attempt(
            lambda: Recurrence.weekly(days, start=start, end=end or None, every=every, tz=tz, **bounds),
            field_name=_weekly_field,
        )
    if kind == "every":
        every_min = _seconds(data, "every_min", errors, positive=True)
        if every_min is None and not errors:
            errors["every_min"] = "required: the minutes between runs, e.g. 60"
        if errors or every_min is None:
            return Parsed(errors=errors)
        interval = timedelta(minutes=every_min)
        return _attempt(
            lambda: Recurrence.every(interval, tz=tz, **bounds), field_name=_bounds_or("every_min")
        )
    at = _instant(data, "at", zone, errors)
    if at is None and "at" not in errors:
        errors["at"] = "required: a date and time, e.g. 2026-12-24T17:00"
    if errors:
        return Parsed(errors=errors)
    return _attempt(
        lambda: Recurrence(RecurrenceKind.ONCE, tz=tz, at=at, earliest_start=earliest_start, expires=expires),
        field_name=_bounds_or("at"),
    )


def recurrence_values(recurrence: Recurrence) -> dict[str, str]:
    """The recurrence form's inputs: :func:`parse_recurrence` turns them back into an equal Recurrence."""
    zone = ZoneInfo(recurrence.tz)
    values = {
        "kind": recurrence.kind.lower(),
        "tz": recurrence.tz,
        "expression": recurrence.expression or "",
        "days": ",".join(WEEKDAYS[day] for day in recurrence.days),
        "start": "" if recurrence.start is None else recurrence.start.isoformat(),
        "end": "" if recurrence.end is None else recurrence.end.isoformat(),
        "every_min": ""
        if recurrence.interval is None
        else _number_text(recurrence.interval / timedelta(minutes=1)),
        "at": _instant_text(recurrence.at, zone),
        "earliest_start": _instant_text(recurrence.earliest_start, zone),
        "expires": _instant_text(recurrence.expires, zone),
    }
    return values


def _instant(data: FormData, name: str, zone: ZoneInfo, errors: dict[str, str]) -> datetime | None:
    raw = text(data, name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        errors[name] = f"{raw!r} is not a date and time; write it as 2026-12-24T17:00"
        return None
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def _instant_text(value: datetime | None, zone: ZoneInfo) -> str:
    # With the offset, so a wall-clock time that occurs twice (the autumn DST change) reads back the same.
    return "" if value is None else value.astimezone(zone).isoformat()


def _bounds_or(name: str) -> Callable[[str], str]:
    def pick(message: str) -> str:
        for bound in ("expires", "earliest_start"):
            if message.split(":")[-1].strip().startswith(bound) or f" {bound} " in f" {message} ":
                return bound
        return name

    return pick


def _weekly_field(message: str) -> str:
    bound = _bounds_or("")(message)
    if bound:
        return bound
    for name in ("days", "start", "end"):
        if f" {name} " in f" {message} " or f"{name}=" in message:
            return name
    return "every_min" if "every" in message else "days"


def parse_rule(data: FormData, scenarios: Iterable[str]) -> Parsed[Rule]:
    """A Notify (e-mail addresses, comma-separated) or a Webhook (a URL) for the chosen scenarios."""
    chosen = [s for s in scenarios if s]
    if not chosen:
        return Parsed(errors={"on": "choose at least one scenario"})
    unknown = [s for s in chosen if s not in Scenario.__members__]
    if unknown:
        return Parsed(errors={"on": f"unknown scenario {unknown[0]!r}"})
    target = text(data, "target")
    if not target:
        return Parsed(errors={"target": "required: e-mail addresses, or a webhook URL"})
    if text(data, "type") == "webhook":
        return _attempt(lambda: Webhook(target, on=set(chosen)), field_name="target")
    recipients = [part.strip() for part in target.split(",") if part.strip()]
    return _attempt(lambda: Notify(recipients, on=set(chosen)), field_name="target")


def rule_values(rule: Rule) -> dict[str, str]:
    """The notification rule form's inputs (``on`` comma-separated): :func:`parse_rule` reads them back."""
    kind = "webhook" if isinstance(rule, Webhook) else "email"
    return {"type": kind, "target": ", ".join(rule.targets), "on": ",".join(sorted(rule.scenarios))}


def parse_name(data: FormData, existing: Callable[[str], bool]) -> Parsed[str]:
    name = text(data, "name")
    if not _PACKAGE_NAME.match(name):
        return Parsed(
            errors={
                "name": "use 1–100 letters, digits, '.', '_', '-' or spaces, starting with a letter or digit"
            }
        )
    if existing(name):
        return Parsed(errors={"name": f"a package named '{name}' already exists"})
    return Parsed(name)


def parse_on_error(data: FormData) -> Parsed[OnError]:
    raw = text(data, "on_error") or OnError.STOP.value
    try:
        return Parsed(OnError(raw))
    except ValueError:
        return Parsed(errors={"on_error": f"choose one of {', '.join(OnError)}"})


def _attempt_value(build: Callable[[], T], errors: dict[str, str], field_name: str) -> T | None:
    parsed = _attempt(build, field_name)
    errors.update(parsed.errors)
    return parsed.value


def _attempt(build: Callable[[], T], field_name: str | Callable[[str], str] = FORM_ERROR) -> Parsed[T]:
    try:
        return Parsed(build())
    except ValidationError as exc:
        message = str(exc)
        name = field_name(message) if callable(field_name) else field_name
        return Parsed(errors={name: message})
