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
from jqm_celery.recurrence import Recurrence
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


def _seconds(data: FormData, name: str, errors: dict[str, str], *, positive: bool = False) -> float | None:
    raw = text(data, name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        errors[name] = f"{raw!r} is not a number"
        return None
    if value != value or value in (float("inf"), float("-inf")) or value > 10 * 365 * 86400:
        errors[name] = f"{raw!r} is out of range"
        return None
    if value < 0 or (positive and value == 0):
        errors[name] = f"must be {'more than' if positive else 'at least'} 0, got {raw}"
        return None
    return value


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
    """An Entry from the entry form; the task must be one of ``registered``."""
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
    max_retries = _whole(data, "max_retries", errors, 0)
    base_delay_s = _seconds(data, "base_delay_s", errors)
    time_limit_s = _seconds(data, "time_limit_s", errors, positive=True)
    if errors:
        return Parsed(errors=errors)
    retry = NO_RETRY
    if max_retries:
        base = timedelta(seconds=base_delay_s if base_delay_s is not None else 1.0)
        retry = RetryPolicy(max_retries=max_retries, base_delay=base, max_delay=max(base, _MAX_DELAY))
    return _attempt(
        lambda: Entry(
            task,
            args=args,
            kwargs=kwargs,
            run_order=run_order,
            retry=retry,
            queue=text(data, "queue") or None,
            time_limit=None if time_limit_s is None else timedelta(seconds=time_limit_s),
            description=text(data, "description"),
        )
    )


def parse_recurrence(data: FormData) -> Parsed[Recurrence]:
    """A Recurrence from the recurrence form (kind: cron, weekly, every or once)."""
    errors: dict[str, str] = {}
    kind = text(data, "kind") or "cron"
    tz = text(data, "tz") or "UTC"
    try:
        zone = ZoneInfo(tz)
    except (ValueError, KeyError, OSError):
        errors["tz"] = f"unknown time zone '{tz}'{did_you_mean(tz, available_timezones())}"
        return Parsed(errors=errors)
    if kind == "cron":
        expression = text(data, "expression")
        if not expression:
            return Parsed(errors={"expression": "required, e.g. 0 2 * * * (02:00 every day)"})
        return _attempt(lambda: Recurrence.cron(expression, tz=tz), field_name="expression")
    if kind == "weekly":
        days, start, end = text(data, "days") or "mon-fri", text(data, "start"), text(data, "end")
        every_min = _seconds(data, "every_min", errors, positive=True)
        if not start:
            errors["start"] = "required, e.g. 08:00"
        if errors:
            return Parsed(errors=errors)
        every = None if every_min is None else timedelta(minutes=every_min)
        return _attempt(
            lambda: Recurrence.weekly(days, start=start, end=end or None, every=every, tz=tz),
            field_name=_weekly_field,
        )
    if kind == "every":
        every_min = _seconds(data, "every_min", errors, positive=True)
        if every_min is None and not errors:
            errors["every_min"] = "required: the minutes between runs, e.g. 60"
        if errors or every_min is None:
            return Parsed(errors=errors)
        return _attempt(lambda: Recurrence.every(timedelta(minutes=every_min), tz=tz), field_name="every_min")
    if kind == "once":
        raw = text(data, "at")
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            return Parsed(errors={"at": f"{raw!r} is not a date and time, e.g. 2026-12-24T17:00"})
        at = at.replace(tzinfo=zone) if at.tzinfo is None else at
        return _attempt(lambda: Recurrence.once(at, tz=tz), field_name="at")
    return Parsed(errors={"kind": f"unknown kind {kind!r}; choose cron, weekly, every or once"})


def _weekly_field(message: str) -> str:
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


def _attempt(build: Callable[[], T], field_name: str | Callable[[str], str] = FORM_ERROR) -> Parsed[T]:
    try:
        return Parsed(build())
    except ValidationError as exc:
        message = str(exc)
        name = field_name(message) if callable(field_name) else field_name
        return Parsed(errors={name: message})
