"""The REST API's request bodies. Bounds here keep generated or hostile input away from the store.

The models are strict: a number is a JSON number, a flag is ``true`` or ``false``, a list is a list — no
``false`` for ``0``, no ``"30"`` for ``30``, no ``1`` for ``true`` (422, naming the field). Only the values
JSON has no type for are read from strings: times (ISO 8601) and the names of statuses and scenarios.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from jqm_celery.definitions import NO_RETRY, Entry, Package, RetryPolicy
from jqm_celery.notifications.rules import Rule, Scenario, rule_from_dict
from jqm_celery.recurrence import CatchUp, Recurrence
from jqm_celery.statuses import OnError
from jqm_celery.web.params import PACKAGE_NAME

_TEN_YEARS_S = 10 * 365 * 86400.0


def _iso_text(value: object) -> object:
    if not isinstance(value, str | datetime):
        raise ValueError("a time is an ISO 8601 string, e.g. 2026-12-02T08:00:00+01:00")
    return value


#: A time as JSON carries it: an ISO 8601 string (not a number of seconds since 1970).
IsoTime = Annotated[datetime, Field(strict=False), BeforeValidator(_iso_text)]
Text = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]
Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00\s][^\x00]*$")]
Seconds = Annotated[float, Field(ge=0, le=_TEN_YEARS_S, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, le=_TEN_YEARS_S, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RetryIn(_Model):
    max_retries: Annotated[int, Field(ge=0, le=1000)] = 3
    base_delay_s: Seconds = 1.0
    factor: Annotated[float, Field(ge=1, le=100, allow_inf_nan=False)] = 2.0
    max_delay_s: Seconds = 3600.0
    jitter: bool = False

    def build(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.max_retries,
            base_delay=timedelta(seconds=self.base_delay_s),
            factor=self.factor,
            max_delay=timedelta(seconds=self.max_delay_s),
            jitter=self.jitter,
        )


class EntryIn(_Model):
    task: Name
    args: Annotated[list[Any], Field(max_length=100)] = []
    kwargs: Annotated[dict[str, Any], Field(max_length=100)] = {}
    run_order: Annotated[int, Field(ge=0, le=1_000_000)] = 10
    retry: RetryIn | None = None
    queue: Name | None = None
    soft_time_limit_s: PositiveSeconds | None = None
    time_limit_s: PositiveSeconds | None = None
    description: Text = ""

    def build(self) -> Entry:
        return Entry(
            self.task,
            args=self.args,
            kwargs=self.kwargs,
            run_order=self.run_order,
            retry=NO_RETRY if self.retry is None else self.retry.build(),
            queue=self.queue,
            soft_time_limit=_delta(self.soft_time_limit_s),
            time_limit=_delta(self.time_limit_s),
            description=self.description,
        )


class RecurrenceIn(_Model):
    """A recurrence as ``Recurrence.to_dict`` writes it; fields a kind does not use stay unset."""

    kind: Literal["CRON", "WEEKLY", "EVERY", "ONCE"]
    tz: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$")] = "UTC"
    expression: Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")] | None = None
    days: (
        Annotated[list[Annotated[str, Field(max_length=20, pattern=r"^[a-z]+$")]], Field(max_length=7)] | None
    ) = None
    start: Annotated[str, Field(max_length=8, pattern=r"^[0-9:]+$")] | None = None
    end: Annotated[str, Field(max_length=8, pattern=r"^[0-9:]+$")] | None = None
    every_s: PositiveSeconds | None = None
    at: IsoTime | None = None
    earliest_start: IsoTime | None = None
    expires: IsoTime | None = None

    def build(self) -> Recurrence:
        data: dict[str, object] = {"kind": self.kind, "tz": self.tz}
        for key in ("expression", "days", "start", "end", "every_s"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        for key in ("at", "earliest_start", "expires"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value.isoformat()
        return Recurrence.from_dict(data)


class RuleIn(_Model):
    type: Literal["email", "webhook"] = "email"
    recipients: Annotated[list[Annotated[str, Field(max_length=254)]], Field(max_length=50)] | None = None
    url: Annotated[str, Field(max_length=2000)] | None = None
    on: Annotated[list[Annotated[Scenario, Field(strict=False)]], Field(min_length=1)]

    def build(self) -> Rule:
        data: dict[str, Any] = {"type": self.type, "on": [s.value for s in self.on]}
        if self.type == "webhook":
            data["url"] = self.url or ""
        else:
            data["recipients"] = self.recipients or []
        return rule_from_dict(data)


class PackageIn(_Model):
    name: Annotated[str, Field(pattern=PACKAGE_NAME, max_length=100)]
    description: Text = ""
    on_error: Annotated[OnError, Field(strict=False)] = OnError.STOP
    catch_up: Annotated[CatchUp, Field(strict=False)] = CatchUp.ONCE
    allow_overlap: bool = False
    entries: Annotated[list[EntryIn], Field(min_length=1, max_length=500)]
    recurrences: Annotated[list[RecurrenceIn], Field(max_length=100)] = []
    notifications: Annotated[list[RuleIn], Field(max_length=100)] = []

    def build(self) -> Package:
        return Package(
            self.name,
            entries=[entry.build() for entry in self.entries],
            on_error=self.on_error,
            recurrences=[recurrence.build() for recurrence in self.recurrences],
            catch_up=self.catch_up,
            allow_overlap=self.allow_overlap,
            description=self.description,
            notifications=[rule.build() for rule in self.notifications],
        )


class JobIn(_Model):
    """A stand-alone job: the arguments of ``jqm.enqueue``."""

    task: Name
    args: Annotated[list[Any], Field(max_length=100)] = []
    kwargs: Annotated[dict[str, Any], Field(max_length=100)] = {}
    queue: Name | None = None
    delay_s: Seconds | None = None
    retry: RetryIn | None = None
    soft_time_limit_s: PositiveSeconds | None = None
    time_limit_s: PositiveSeconds | None = None
    description: Text = ""


class CleanIn(_Model):
    older_than_s: Seconds


def _delta(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)
