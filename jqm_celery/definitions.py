"""What a user defines: a Package of Entries, each with an optional RetryPolicy.

Everything here is a frozen value, validated when it is built, so a definition that exists is a
definition that can be stored. Checks that need the Celery app (do the task names exist?) happen in
``JobQueueManager.save`` and ``activate``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from jqm_celery.errors import ValidationError, did_you_mean
from jqm_celery.notifications.rules import Notify, Webhook, check_rules
from jqm_celery.recurrence import CatchUp, Recurrence
from jqm_celery.statuses import OnError
from jqm_celery.storable import MAX_NAME_CHARS, check_column_int, check_json, check_text

if TYPE_CHECKING:
    from celery.canvas import Signature

_E = TypeVar("_E", OnError, CatchUp)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failed job is tried again and how long it waits first.

    The delay before retry n (n = 1, 2, …) is ``min(max_delay, base_delay × factor^(n−1))``.
    """

    max_retries: int = 3
    base_delay: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=1)
    jitter: bool = False

    def __post_init__(self) -> None:
        if not _is_int(self.max_retries) or self.max_retries < 0:
            raise ValidationError(
                f"RetryPolicy: max_retries must be a whole number ≥ 0, got {self.max_retries!r}; "
                "use 0 for no retries"
            )
        check_column_int("RetryPolicy", "max_retries", self.max_retries, "max_retries=5")
        for label, value in (("base_delay", self.base_delay), ("max_delay", self.max_delay)):
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise ValidationError(
                    f"RetryPolicy: {label} must be a timedelta ≥ 0, got {value!r}; "
                    f"e.g. {label}=timedelta(seconds=30)"
                )
        if (
            isinstance(self.factor, bool)
            or not isinstance(self.factor, int | float)
            or not math.isfinite(self.factor)
            or self.factor < 1
        ):
            raise ValidationError(
                f"RetryPolicy: factor must be a finite number ≥ 1, got {self.factor!r}; e.g. factor=2.0"
            )
        if self.max_delay < self.base_delay:
            raise ValidationError(
                f"RetryPolicy: max_delay ({self.max_delay}) is below base_delay ({self.base_delay}); "
                "raise max_delay or lower base_delay"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_retries": self.max_retries,
            "base_delay_s": self.base_delay.total_seconds(),
            "factor": self.factor,
            "max_delay_s": self.max_delay.total_seconds(),
            "jitter": self.jitter,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetryPolicy:
        return cls(
            max_retries=int(data["max_retries"]),
            base_delay=timedelta(seconds=float(data["base_delay_s"])),
            factor=float(data["factor"]),
            max_delay=timedelta(seconds=float(data["max_delay_s"])),
            jitter=bool(data["jitter"]),
        )


NO_RETRY = RetryPolicy(max_retries=0, base_delay=timedelta(0), max_delay=timedelta(0))


@dataclass(frozen=True)
class Entry:
    """One job queue entry: a registered Celery task with its arguments, run order and retry policy.

    Entries with the same ``run_order`` run in parallel; a higher run order starts only when every
    entry with a lower one has finished (retries included).
    """

    task: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    run_order: int = 10
    retry: RetryPolicy = NO_RETRY
    queue: str | None = None
    soft_time_limit: timedelta | None = None
    time_limit: timedelta | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not self.task.strip():
            raise ValidationError(f"entry: task must be a registered Celery task name, got {self.task!r}")
        check_text(f"entry {self.task[:60]!r}", "task", self.task, max_chars=MAX_NAME_CHARS)
        check_text(f"entry '{self.task}'", "queue", self.queue, max_chars=MAX_NAME_CHARS)
        check_text(f"entry '{self.task}'", "description", self.description)
        if not isinstance(self.args, list | tuple):
            raise ValidationError(
                f"entry '{self.task}': args must be a list, got {type(self.args).__name__}; e.g. args=[7]"
            )
        if not isinstance(self.kwargs, Mapping) or not all(isinstance(k, str) for k in self.kwargs):
            raise ValidationError(
                f"entry '{self.task}': kwargs must be a dict with string keys, got {self.kwargs!r}"
            )
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "kwargs", dict(self.kwargs))
        check_json(f"entry '{self.task}'", "args", list(self.args))
        check_json(f"entry '{self.task}'", "kwargs", self.kwargs)
        if not _is_int(self.run_order) or self.run_order < 0:
            raise ValidationError(
                f"entry '{self.task}': run_order must be a whole number ≥ 0, got {self.run_order!r}; "
                "e.g. run_order=10, 20, 30"
            )
        check_column_int(f"entry '{self.task}'", "run_order", self.run_order, "run_order=10, 20, 30")
        if not isinstance(self.retry, RetryPolicy):
            raise ValidationError(
                f"entry '{self.task}': retry must be a RetryPolicy, got {type(self.retry).__name__}"
            )
        if self.queue is not None and (not isinstance(self.queue, str) or not self.queue.strip()):
            raise ValidationError(f"entry '{self.task}': queue must be a non-empty name, got {self.queue!r}")
        for label in ("soft_time_limit", "time_limit"):
            value = getattr(self, label)
            if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
                raise ValidationError(
                    f"entry '{self.task}': {label} must be a positive timedelta, got {value!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "run_order": self.run_order,
            "retry": self.retry.to_dict(),
            "queue": self.queue,
            "soft_time_limit_s": _seconds(self.soft_time_limit),
            "time_limit_s": _seconds(self.time_limit),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        return cls(
            task=data["task"],
            args=data.get("args") or (),
            kwargs=data.get("kwargs") or {},
            run_order=int(data["run_order"]),
            retry=RetryPolicy.from_dict(data["retry"]) if data.get("retry") else NO_RETRY,
            queue=data.get("queue"),
            soft_time_limit=_delta(data.get("soft_time_limit_s")),
            time_limit=_delta(data.get("time_limit_s")),
            description=data.get("description") or "",
        )


@dataclass(frozen=True)
class Package:
    """A job queue package: ordered entries, recurrences, an On Error policy, notification rules.

    ``allow_overlap=True`` queues a recurrence that falls due while a run is still in flight instead of
    skipping it.
    """

    name: str
    entries: Sequence[Entry] = ()
    on_error: OnError = OnError.STOP
    recurrences: Sequence[Recurrence] = ()
    catch_up: CatchUp = CatchUp.ONCE
    allow_overlap: bool = False
    description: str = ""
    notifications: Sequence[Notify | Webhook] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValidationError(
                f"package name {self.name!r} is not valid: use 1–100 letters, digits, '.', '_', '-' or "
                "spaces, starting with a letter or digit"
            )
        check_text(f"package '{self.name}'", "description", self.description)
        entries = tuple(self.entries)
        if not entries:
            raise ValidationError(
                f"package '{self.name}' has no entries; add at least one Entry('module.task', run_order=10)"
            )
        for position, entry in enumerate(entries, start=1):
            if not isinstance(entry, Entry):
                raise ValidationError(
                    f"package '{self.name}': entry {position} must be an Entry, got {type(entry).__name__}"
                )
        object.__setattr__(self, "entries", entries)
        object.__setattr__(
            self, "on_error", _enum(OnError, self.on_error, f"package '{self.name}': on_error")
        )
        object.__setattr__(
            self, "catch_up", _enum(CatchUp, self.catch_up, f"package '{self.name}': catch_up")
        )
        recurrences = tuple(self.recurrences)
        for position, recurrence in enumerate(recurrences, start=1):
            if not isinstance(recurrence, Recurrence):
                raise ValidationError(
                    f"package '{self.name}': recurrence {position} must be a Recurrence "
                    f"(Recurrence.cron/weekly/every/once), got {type(recurrence).__name__}"
                )
        object.__setattr__(self, "recurrences", recurrences)
        object.__setattr__(self, "notifications", check_rules(self.notifications, f"package '{self.name}'"))

    @classmethod
    def from_canvas(
        cls,
        name: str,
        canvas: Signature,
        *,
        retry: Mapping[str, RetryPolicy] | None = None,
        **fields: Any,
    ) -> Package:
        """A package whose entries are the steps of a Celery canvas of immutable signatures.

        ``chain(a.si(), b.si(7), group(c.si(), d.si()))`` gives run orders 10, 20, 30, 30; ``retry`` maps a
        task name to its RetryPolicy; ``fields`` are the other fields of Package (on_error, recurrences…).
        What a package cannot express (results passed between steps, a chain inside a group, callbacks) is
        refused with what to write instead.
        """
        from jqm_celery.canvas import entries_from_canvas

        return cls(name, entries=entries_from_canvas(name, canvas, retry), **fields)

    def to_canvas(self) -> Signature:
        """The chain this package runs as (before jqm wraps each task in its job task)."""
        from jqm_celery.canvas import package_canvas

        return package_canvas(self)

    def stages(self) -> list[tuple[int, tuple[Entry, ...]]]:
        """The entries grouped by run order, lowest first; the entries of one stage run in parallel."""
        by_order: dict[int, list[Entry]] = {}
        for entry in self.entries:
            by_order.setdefault(entry.run_order, []).append(entry)
        return [(order, tuple(by_order[order])) for order in sorted(by_order)]

    def check_tasks(self, registered: Iterable[str]) -> None:
        """Raise ValidationError for the first entry whose task is not registered, with a suggestion."""
        names = set(registered)
        for position, entry in enumerate(self.entries, start=1):
            if entry.task not in names:
                visible = [n for n in names if not n.startswith(("celery.", "jqm."))]
                raise ValidationError(
                    f"package '{self.name}': entry {position} refers to unknown task '{entry.task}'"
                    f"{did_you_mean(entry.task, visible)}"
                )


def _enum(cls: type[_E], value: object, owner: str) -> _E:
    try:
        return cls(str(value))
    except ValueError:
        choices = [member.value for member in cls]
        raise ValidationError(
            f"{owner} {value!r} is not valid; choose one of {', '.join(choices)}"
            f"{did_you_mean(str(value).upper(), choices)}"
        ) from None


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _delta(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=float(value))
