"""Notification rules in the store (SQLite and PostgreSQL): part of the definition, edit lock, queue rules."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from alembic import command
from celery import Celery

from jqm_celery import (
    ConfigError,
    Entry,
    JobQueueManager,
    Notify,
    Package,
    Recurrence,
    Scenario,
    StateError,
    Webhook,
)
from jqm_celery.events import Event
from jqm_celery.statuses import AttemptStatus, LogKind
from jqm_celery.store import migrate
from jqm_celery.store.schedule import fire_due, start_package_run
from tests.store.conftest import register_billing_tasks
from tests.store.test_store import NOW

RULES = (
    Notify("ops@example.com", on={Scenario.RUN_FAILED, Scenario.PACKAGE_STOPPED}),
    Notify(["cfo@example.com", "controller@example.com"], on={Scenario.RUN_SUCCEEDED}),
    Webhook("https://hooks.example.com/jqm", on={Scenario.JOB_FAILED}),
)
BILLING = Package("nightly-billing", entries=[Entry("billing.export")], notifications=RULES)


def test_rules_are_stored_with_the_package_and_read_back_equal(jqm: JobQueueManager) -> None:
    jqm.save(BILLING)
    assert jqm.package("nightly-billing").definition.notifications == RULES


def test_changing_the_rules_of_an_active_package_is_refused_and_keeps_the_old_rules(
    jqm: JobQueueManager,
) -> None:
    jqm.save(BILLING)
    jqm.activate("nightly-billing")
    changed = dataclasses.replace(
        BILLING, notifications=[Notify("new@example.com", on={Scenario.RUN_FAILED})]
    )
    with pytest.raises(StateError, match="put it on hold first"):
        jqm.save(changed)
    assert jqm.package("nightly-billing").definition.notifications == RULES


def test_rules_of_a_held_package_can_be_replaced(jqm: JobQueueManager) -> None:
    jqm.save(BILLING)
    jqm.activate("nightly-billing")
    jqm.hold("nightly-billing")
    fewer = (Notify("new@example.com", on={Scenario.RUN_STARTED}),)
    jqm.save(dataclasses.replace(BILLING, notifications=fewer))
    assert jqm.package("nightly-billing").definition.notifications == fewer


def test_queue_rules_are_kept_per_queue(jqm: JobQueueManager) -> None:
    jqm.notifications.set_queue_rules("emails", [Notify("mail-team@example.com", on={Scenario.JOB_FAILED})])
    jqm.notifications.set_queue_rules("reports", [])
    assert jqm.notifications.queue_rules("emails") == (Notify("mail-team@example.com", on={"JOB_FAILED"}),)
    assert jqm.notifications.queue_rules("reports") == ()


def test_a_malformed_smtp_url_fails_at_start_up_and_writes_nothing(database_url: str) -> None:
    app = Celery("bad-smtp")
    app.conf.update(
        jqm_database_url=database_url,
        jqm_smtp_url="smtp://jqm:Very-Secret@mail.example.com:port",
        jqm_mail_from="jqm@example.com",
    )
    register_billing_tasks(app)
    with pytest.raises(
        ConfigError, match=r"jqm_smtp_url 'smtp://jqm:\*\*\*@mail.example.com:port'"
    ) as caught:
        JobQueueManager(app)
    assert "Very-Secret" not in str(caught.value)
    assert not hasattr(app, "jqm")


def test_the_notification_tables_migrate_down_and_up_again(jqm: JobQueueManager) -> None:
    jqm.save(BILLING)
    engine = jqm._store.engine
    command.downgrade(migrate.alembic_config(engine), "0003")
    assert migrate.current_revision(engine) == "0003"
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)


def _listening(jqm: JobQueueManager, package: Package) -> list[Event]:
    """Save ``package``; the events the store tells its listeners from then on."""
    jqm.save(package)
    seen: list[Event] = []
    jqm.event_listeners.append(seen.append)
    return seen


@pytest.mark.parametrize("rules", [(), RULES], ids=["no rules", "rules"])
def test_a_run_end_tells_the_notifier_whether_its_package_has_rules(
    jqm: JobQueueManager, rules: tuple[object, ...]
) -> None:
    seen = _listening(jqm, dataclasses.replace(BILLING, notifications=rules))
    plan, _ = jqm._store.create_run("nightly-billing", "test", NOW, queue_if_busy=False)
    [job] = plan.jobs
    claimed = jqm._store.claim_job(job.id, "w1@host", "task-1", NOW, redelivered=False)
    assert claimed is not None
    jqm._store.end_attempt(claimed, NOW, AttemptStatus.DONE)

    assert jqm._store.close_run(plan.run_id, NOW) is not None

    [finished] = [event for event in seen if event.kind is LogKind.RUN_FINISHED]
    assert finished.notify is bool(rules), "a package without rules needs no look-up of them"


def _started(seen: list[Event]) -> Event:
    [started] = [event for event in seen if event.kind is LogKind.RUN_STARTED]
    return started


@pytest.mark.parametrize("rules", [(), RULES], ids=["no rules", "rules"])
def test_run_now_tells_the_notifier_the_run_started_and_whether_its_package_has_rules(
    jqm: JobQueueManager, rules: tuple[object, ...]
) -> None:
    seen = _listening(jqm, dataclasses.replace(BILLING, notifications=rules))

    plan, _ = jqm._store.create_run("nightly-billing", "test", NOW, queue_if_busy=False)

    started = _started(seen)
    assert (started.run_id, started.package, started.notify) == (plan.run_id, "nightly-billing", bool(rules))


@pytest.mark.parametrize("rules", [(), RULES], ids=["no rules", "rules"])
def test_runs_a_schedule_starts_tell_the_notifier_they_started(
    jqm: JobQueueManager, rules: tuple[object, ...]
) -> None:
    every_minute = Recurrence.every(timedelta(minutes=1), earliest_start=NOW)
    jqm.save(dataclasses.replace(BILLING, notifications=rules, recurrences=[every_minute]))
    jqm.save(dataclasses.replace(BILLING, name="by-django", notifications=rules))
    jqm.activate("nightly-billing")
    jqm.activate("by-django")
    seen: list[Event] = []
    jqm.event_listeners.append(seen.append)

    fired = fire_due(jqm._store, NOW + timedelta(minutes=1), grace=timedelta(seconds=10))
    [plan] = fired.plans
    by_beat = _started(seen)
    seen.clear()
    bridged, _ = start_package_run(jqm._store, "by-django", "django-celery-beat", NOW)
    by_django = _started(seen)

    assert (by_beat.run_id, by_beat.package, by_beat.notify) == (plan.run_id, "nightly-billing", bool(rules))
    assert bridged is not None
    assert (by_django.run_id, by_django.package) == (bridged.run_id, "by-django")
    assert by_django.notify is bool(rules)
