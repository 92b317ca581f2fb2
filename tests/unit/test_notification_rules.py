"""Notification rules, scenarios and event keys: pure values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jqm_celery import Entry, Notify, Package, Scenario, ValidationError, Webhook
from jqm_celery.events import Event
from jqm_celery.notifications.rules import event_key, rule_from_dict, scenario_of, targets_for
from jqm_celery.statuses import AttemptStatus, LogKind, RunStatus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _event(kind: str, status: str, **fields: object) -> Event:
    # A plain string stands for a kind recorded by another module (the reconciler's JOB_STALE).
    return Event(kind, status, NOW, "pkg", **fields)  # type: ignore[arg-type]


def test_a_package_keeps_its_rules_in_its_definition() -> None:
    package = Package(
        "nightly-billing",
        entries=[Entry("billing.upload")],
        notifications=[
            Notify("ops@example.com", on={Scenario.RUN_FAILED, Scenario.PACKAGE_STOPPED}),
            Notify(["cfo@example.com", "controller@example.com"], on={Scenario.RUN_SUCCEEDED}),
        ],
    )
    assert package.notifications[0].recipients == ("ops@example.com",)
    assert package.notifications[1].recipients == ("cfo@example.com", "controller@example.com")


def test_rules_survive_a_round_trip_through_their_dict() -> None:
    rules = [
        Notify(["a@example.com", "b@example.com"], on={Scenario.JOB_FAILED, Scenario.RUN_STARTED}),
        Webhook("https://hooks.example.com/jqm", on={Scenario.RUN_STALE}),
    ]
    assert [rule_from_dict(r.to_dict()) for r in rules] == rules


def test_scenario_names_are_accepted_as_strings_in_any_case() -> None:
    assert Notify("a@example.com", on={"run_failed", "Package stopped"}).scenarios == {
        Scenario.RUN_FAILED,
        Scenario.PACKAGE_STOPPED,
    }


@pytest.mark.parametrize("address", ["ops", "ops@", "ops@example", "two words@example.com", "a@@example.com"])
def test_a_malformed_address_is_refused_with_the_address_and_the_fix(address: str) -> None:
    with pytest.raises(ValidationError, match=r"is not an e-mail address; write it as name@example.com"):
        Notify(address, on={Scenario.RUN_FAILED})


def test_an_unknown_scenario_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ValidationError, match=r"unknown scenario 'RUN_FIALED'; did you mean 'RUN_FAILED'\?"):
        Notify("ops@example.com", on={"RUN_FIALED"})


def test_a_rule_without_scenarios_is_refused() -> None:
    with pytest.raises(ValidationError, match="on is empty"):
        Notify("ops@example.com", on=set())


def test_a_single_scenario_string_is_refused_rather_than_split_into_letters() -> None:
    with pytest.raises(ValidationError, match="on must be a set of scenarios"):
        Notify("ops@example.com", on="RUN_FAILED")


def test_a_package_refuses_a_notification_that_is_not_a_rule() -> None:
    with pytest.raises(ValidationError, match="notification rule 1 must be a Notify or a Webhook"):
        Package("p", entries=[Entry("t")], notifications=["ops@example.com"])  # type: ignore[list-item]


def test_a_webhook_needs_an_http_url() -> None:
    with pytest.raises(ValidationError, match="is not an http"):
        Webhook("ftp://example.com/x", on={Scenario.RUN_FAILED})


@pytest.mark.parametrize(
    ("kind", "status", "scenario"),
    [
        (LogKind.RUN_STARTED, RunStatus.RUNNING, Scenario.RUN_STARTED),
        (LogKind.RUN_FINISHED, RunStatus.SUCCEEDED, Scenario.RUN_SUCCEEDED),
        (LogKind.RUN_FINISHED, RunStatus.FAILED, Scenario.RUN_FAILED),
        (LogKind.RUN_FINISHED, RunStatus.STOPPED, None),
        (LogKind.ATTEMPT, AttemptStatus.FAILED, Scenario.JOB_RETRYING),
        (LogKind.ATTEMPT, AttemptStatus.ERROR, Scenario.JOB_FAILED),
        (LogKind.PACKAGE_STOPPED, "ERROR", Scenario.PACKAGE_STOPPED),
        (LogKind.JOB_SKIPPED, "SKIPPED", None),
        ("JOB_STALE", "QUEUED", Scenario.RUN_STALE),
    ],
)
def test_each_event_maps_to_its_scenario(kind: str, status: str, scenario: Scenario | None) -> None:
    assert scenario_of(_event(kind, status)) == scenario


def test_the_same_event_always_has_the_same_key_and_different_events_differ() -> None:
    finished = _event(LogKind.RUN_FINISHED, RunStatus.FAILED, run_id=7)
    stopped = _event(LogKind.PACKAGE_STOPPED, "ERROR", run_id=7)
    attempt = _event(LogKind.ATTEMPT, AttemptStatus.FAILED, run_id=7, job_id=3, log_id=11)
    assert event_key(finished, Scenario.RUN_FAILED) == event_key(finished, Scenario.RUN_FAILED)
    keys = {
        event_key(finished, Scenario.RUN_FAILED),
        event_key(stopped, Scenario.PACKAGE_STOPPED),
        event_key(attempt, Scenario.JOB_RETRYING),
    }
    assert len(keys) == 3


def test_targets_collect_each_recipient_once_for_the_scenario_only() -> None:
    rules = [
        Notify(["ops@example.com", "dev@example.com"], on={Scenario.RUN_FAILED}),
        Notify("ops@example.com", on={Scenario.RUN_FAILED, Scenario.RUN_SUCCEEDED}),
        Webhook("https://hooks.example.com/a", on={Scenario.RUN_FAILED}),
    ]
    failed = targets_for(rules, Scenario.RUN_FAILED)
    assert failed.recipients == ("ops@example.com", "dev@example.com")
    assert failed.webhooks == ("https://hooks.example.com/a",)
    assert targets_for(rules, Scenario.RUN_SUCCEEDED).recipients == ("ops@example.com",)
    assert not targets_for(rules, Scenario.RUN_STARTED)
