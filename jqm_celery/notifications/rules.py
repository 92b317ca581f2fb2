"""Notification rules: who hears about what. Pure values, validated when they are built.

A rule is ``Notify(recipients, on={Scenario…})`` (e-mail) or ``Webhook(url, on={Scenario…})`` (a JSON
POST). A package carries its rules in its definition; stand-alone jobs get rules per queue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from jqm_celery.errors import ValidationError, did_you_mean
from jqm_celery.events import Event
from jqm_celery.statuses import AttemptStatus, LogKind, RunStatus
from jqm_celery.storable import check_text


class Scenario(StrEnum):
    """An event someone can be notified of."""

    RUN_STARTED = "RUN_STARTED"
    RUN_SUCCEEDED = "RUN_SUCCEEDED"
    #: The run finished with at least one failed job.
    RUN_FAILED = "RUN_FAILED"
    #: A job failed for good: its retries are used up, or its task failed it on purpose.
    JOB_FAILED = "JOB_FAILED"
    #: An attempt failed and the job will be tried again.
    JOB_RETRYING = "JOB_RETRYING"
    #: The package's On Error policy stopped it (status ERROR).
    PACKAGE_STOPPED = "PACKAGE_STOPPED"
    #: The reconciler found a run that stopped making progress.
    RUN_STALE = "RUN_STALE"


#: The log entry kind the reconciler records for a job found RUNNING on a lost worker or past its limit,
#: or waiting with its message gone.
STALE_KIND = "JOB_STALE"

# One "@", no spaces, a dot in the domain: strict enough to catch typos, loose enough for real addresses.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+$")


def is_address(text: object) -> bool:
    """Whether ``text`` looks like an e-mail address (name@example.com)."""
    return isinstance(text, str) and _ADDRESS.match(text) is not None


def scenario_of(event: Event) -> Scenario | None:
    """The scenario an event belongs to, or None when no one can be notified of it."""
    if event.kind == LogKind.RUN_STARTED:
        return Scenario.RUN_STARTED
    if event.kind == LogKind.RUN_FINISHED:
        return {RunStatus.SUCCEEDED: Scenario.RUN_SUCCEEDED, RunStatus.FAILED: Scenario.RUN_FAILED}.get(
            RunStatus(event.status)
        )
    if event.kind == LogKind.PACKAGE_STOPPED:
        return Scenario.PACKAGE_STOPPED
    if event.kind == LogKind.ATTEMPT:
        return {AttemptStatus.FAILED: Scenario.JOB_RETRYING, AttemptStatus.ERROR: Scenario.JOB_FAILED}.get(
            AttemptStatus(event.status)
        )
    if event.kind == STALE_KIND:
        return Scenario.RUN_STALE
    return None


def event_key(event: Event, scenario: Scenario) -> str:
    """The same event always gets the same key: one mail per (key, recipient), however often it is seen."""
    if event.log_id is not None:
        return f"attempt:{event.log_id}:{scenario.lower()}"
    if scenario is Scenario.RUN_STALE:
        # A requeued job can go stale again later: each time is an event of its own.
        return f"job:{event.job_id}:{scenario.lower()}:{event.at.isoformat()}"
    if event.run_id is not None:
        return f"run:{event.run_id}:{scenario.lower()}"
    return f"job:{event.job_id}:{scenario.lower()}"


def _scenarios(value: object, owner: str) -> frozenset[Scenario]:
    if isinstance(value, str | Scenario) or not isinstance(value, Iterable):
        raise ValidationError(
            f"{owner}: on must be a set of scenarios, got {value!r}; e.g. on={{Scenario.RUN_FAILED}}"
        )
    chosen: set[Scenario] = set()
    for item in value:
        text = str(item).strip().upper().replace("-", "_").replace(" ", "_")
        try:
            chosen.add(Scenario(text))
        except ValueError:
            names = [s.value for s in Scenario]
            raise ValidationError(
                f"{owner}: unknown scenario {item!r}{did_you_mean(text, names)}; "
                f"choose from {', '.join(names)}"
            ) from None
    if not chosen:
        raise ValidationError(
            f"{owner}: on is empty; name at least one scenario, e.g. {{Scenario.RUN_FAILED}}"
        )
    return frozenset(chosen)


def _sorted(scenarios: frozenset[Scenario]) -> list[str]:
    order = list(Scenario)
    return [s.value for s in sorted(scenarios, key=order.index)]


def describe_scenarios(scenarios: frozenset[Scenario]) -> str:
    """``run failed, package stopped``: the scenarios in their natural order, as words."""
    return ", ".join(s.lower().replace("_", " ") for s in _sorted(scenarios))


@dataclass(frozen=True)
class Notify:
    """E-mail ``recipients`` (one address or several) when one of the scenarios in ``on`` happens."""

    recipients: str | Sequence[str]
    on: Iterable[Scenario | str]

    def __post_init__(self) -> None:
        raw = [self.recipients] if isinstance(self.recipients, str) else self.recipients
        if not isinstance(raw, Sequence) or not raw:
            raise ValidationError(
                f"Notify: recipients must be an e-mail address or a list of them, got {self.recipients!r}"
            )
        addresses: list[str] = []
        for address in raw:
            check_text("Notify", "a recipient", address)
            if not isinstance(address, str) or not is_address(address.strip()):
                raise ValidationError(
                    f"Notify: {address!r} is not an e-mail address; write it as name@example.com"
                )
            if address.strip() not in addresses:
                addresses.append(address.strip())
        object.__setattr__(self, "recipients", tuple(addresses))
        object.__setattr__(self, "on", _scenarios(self.on, f"Notify({', '.join(addresses)})"))

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.recipients)

    @property
    def scenarios(self) -> frozenset[Scenario]:
        return frozenset(Scenario(s) for s in self.on)

    def describe(self) -> str:
        return ", ".join(self.targets)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "email", "recipients": list(self.targets), "on": _sorted(self.scenarios)}


@dataclass(frozen=True)
class Webhook:
    """POST a JSON document to ``url`` when one of the scenarios in ``on`` happens."""

    url: str
    on: Iterable[Scenario | str]

    def __post_init__(self) -> None:
        check_text("Webhook", "the url", self.url)
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(
                f"Webhook: {self.url!r} is not an http(s) URL; e.g. 'https://hooks.example.com/jqm'"
            )
        object.__setattr__(self, "on", _scenarios(self.on, f"Webhook({parts.scheme}://{parts.hostname})"))

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.url,)

    @property
    def scenarios(self) -> frozenset[Scenario]:
        return frozenset(Scenario(s) for s in self.on)

    def describe(self) -> str:
        return f"webhook {self.url}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "webhook", "url": self.url, "on": _sorted(self.scenarios)}


Rule = Notify | Webhook


def rule_from_dict(data: Mapping[str, Any]) -> Rule:
    if data.get("type") == "webhook":
        return Webhook(str(data["url"]), on=set(data["on"]))
    return Notify(list(data["recipients"]), on=set(data["on"]))


def check_rules(rules: object, owner: str) -> tuple[Rule, ...]:
    """The rules as a tuple; ValidationError for anything that is not a Notify or a Webhook."""
    if isinstance(rules, str | Notify | Webhook) or not isinstance(rules, Iterable):
        raise ValidationError(
            f"{owner}: notifications must be a list of Notify(...) or Webhook(...), got {rules!r}"
        )
    checked = tuple(rules)
    for position, rule in enumerate(checked, start=1):
        if not isinstance(rule, Notify | Webhook):
            raise ValidationError(
                f"{owner}: notification rule {position} must be a Notify or a Webhook, "
                f"got {type(rule).__name__}"
            )
    return checked


@dataclass(frozen=True)
class Targets:
    """Who is told about one scenario: e-mail recipients and webhook URLs, each once."""

    recipients: tuple[str, ...] = ()
    webhooks: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.recipients or self.webhooks)


def targets_for(rules: Iterable[Rule], scenario: Scenario) -> Targets:
    recipients: list[str] = []
    webhooks: list[str] = []
    for rule in rules:
        if scenario not in rule.scenarios:
            continue
        bucket = webhooks if isinstance(rule, Webhook) else recipients
        bucket.extend(t for t in rule.targets if t not in bucket)
    return Targets(tuple(recipients), tuple(webhooks))
