"""What the web UI adds to the store, on SQLite and PostgreSQL: the package list page, log entries by date,
users and tokens, the web's own settings, and the 0005 migration both ways."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import inspect

from jqm_celery import Entry, JobQueueManager, Package, Recurrence, ValidationError
from jqm_celery.statuses import AttemptStatus
from jqm_celery.store import Store, migrate
from jqm_celery.store.users import UserStore
from tests.store.conftest import FakeClock


def _save(jqm: JobQueueManager, name: str, *, cron: str | None = None) -> None:
    recurrences = [Recurrence.cron(cron)] if cron else []
    jqm.save(
        Package(name, entries=[Entry("billing.export"), Entry("billing.upload")], recurrences=recurrences)
    )


def test_the_package_list_pages_by_name_and_counts_every_match(jqm: JobQueueManager) -> None:
    for i in range(7):
        _save(jqm, f"p{i}")
    first = jqm.package_list(limit=3)
    second = jqm.package_list(limit=3, offset=3)
    assert (first.total, [p.name for p in first.packages]) == (7, ["p0", "p1", "p2"])
    assert [p.name for p in second.packages] == ["p3", "p4", "p5"]
    assert first.packages[0].entries == 2


def test_the_package_list_filters_by_status_and_by_part_of_the_name(jqm: JobQueueManager) -> None:
    _save(jqm, "billing-eu", cron="0 2 * * *")
    _save(jqm, "billing-us")
    _save(jqm, "reports_eu")
    _save(jqm, "reportsxeu")
    jqm.activate("billing-eu")
    active = jqm.package_list(status="active")
    assert [p.name for p in active.packages] == ["billing-eu"]
    assert [p.name for p in jqm.package_list(name_contains="BILL").packages] == ["billing-eu", "billing-us"]
    # LIKE's wildcards are plain characters in a name filter.
    assert [p.name for p in jqm.package_list(name_contains="s_e").packages] == ["reports_eu"]
    assert jqm.package_list(name_contains="%").total == 0


def test_the_package_list_shows_the_next_run_of_an_active_package_only(
    jqm: JobQueueManager, clock: FakeClock
) -> None:
    _save(jqm, "nightly", cron="0 2 * * *")
    assert jqm.package_list().packages[0].next_run_at is None
    jqm.activate("nightly")
    summary = jqm.package_list().packages[0]
    assert summary.next_run_at == (clock.now() + timedelta(days=1)).replace(hour=2, minute=0)
    assert summary.recurrences == 1


def test_the_package_list_shows_the_last_run(jqm: JobQueueManager, clock: FakeClock) -> None:
    _save(jqm, "nightly")
    plan, _ = jqm._store.create_run("nightly", "test", clock.now(), queue_if_busy=True)
    jqm._store.create_run("nightly", "test", clock.now(), queue_if_busy=True)
    last = jqm.package_list().packages[0].last_run
    assert last is not None
    assert last.id == plan.run_id + 1


def test_the_package_list_refuses_a_bad_status_or_limit(jqm: JobQueueManager) -> None:
    with pytest.raises(ValidationError, match="package status 'ACTIV' is not valid"):
        jqm.package_list(status="ACTIV")
    with pytest.raises(ValidationError, match="limit must be a whole number ≥ 1"):
        jqm.package_list(limit=0)


def test_log_entries_filter_by_the_day_they_started(jqm: JobQueueManager, clock: FakeClock) -> None:
    _save(jqm, "nightly")
    for _ in range(2):
        plan, _ = jqm._store.create_run("nightly", "test", clock.now(), queue_if_busy=True)
        claimed = jqm._store.claim_job(plan.jobs[0].id, "w", "t", clock.now(), redelivered=False)
        assert claimed is not None
        jqm._store.end_attempt(claimed, clock.now(), AttemptStatus.DONE)
        clock.advance(timedelta(days=1))
    day_one = clock.now() - timedelta(days=2)
    on_day_one = jqm.log_entries(kind="ATTEMPT", since=day_one, until=day_one + timedelta(days=1))
    assert [e.started_at for e in on_day_one] == [day_one]
    assert len(jqm.log_entries(kind="ATTEMPT", since=day_one + timedelta(hours=1))) == 1
    with pytest.raises(ValidationError, match="since must be an aware datetime"):
        jqm.log_entries(since=day_one.replace(tzinfo=None))


def test_a_user_is_stored_with_a_scrypt_hash_not_the_password(jqm: JobQueueManager) -> None:
    jqm.users().add("ann", "admin", "s3cret-enough")
    record = UserStore(jqm._store).user("ann")
    assert record is not None
    assert record.password_hash.startswith("scrypt$")
    assert "s3cret-enough" not in record.password_hash
    assert jqm.users().authenticate("ann", "s3cret-enough") is not None
    assert jqm.users().authenticate("ann", "wrong password") is None


def test_a_user_name_that_exists_a_bad_role_or_a_short_password_is_refused(jqm: JobQueueManager) -> None:
    jqm.users().add("ann", "admin", "s3cret-enough")
    with pytest.raises(ValidationError, match="user 'ann' already exists"):
        jqm.users().add("ann", "user", "s3cret-enough")
    with pytest.raises(ValidationError, match="role 'admn' is not valid; did you mean 'admin'"):
        jqm.users().add("bob", "admn", "s3cret-enough")
    with pytest.raises(ValidationError, match="use at least 8"):
        jqm.users().add("bob", "user", "short")
    assert [u.name for u in jqm.users().users()] == ["ann"]


def test_an_api_token_finds_its_user_and_only_its_hash_is_stored(jqm: JobQueueManager) -> None:
    users = jqm.users()
    users.add("ann", "viewer", "s3cret-enough")
    token = users.create_token("ann", "script")
    found = users.user_of_token(token)
    assert found is not None
    assert (found.name, found.role.value) == ("ann", "viewer")
    assert users.user_of_token(token + "x") is None
    assert users.users()[0].tokens == 1
    assert users.revoke_tokens("ann") == 1
    assert users.user_of_token(token) is None


def test_the_session_secret_is_generated_once_and_kept(jqm: JobQueueManager) -> None:
    first = jqm.users().session_secret()
    assert len(first) >= 48
    assert jqm.users().session_secret() == first


def test_signing_out_forgets_sessions_ended_longer_ago_than_a_cookie_lives(
    jqm: JobQueueManager, clock: FakeClock
) -> None:
    users = jqm.users()
    users.end_session("early")
    clock.advance(timedelta(hours=11))
    users.end_session("later")
    assert users.session_ended("early")
    assert users.session_ended("later")

    clock.advance(timedelta(hours=2))
    users.end_session("latest")

    # "early" ended 13 hours ago: its cookie has expired anyway, so its row is gone; the others stay.
    assert not users.session_ended("early")
    assert users.session_ended("later")
    assert users.session_ended("latest")


def test_the_session_secret_comes_from_the_setting_when_set(jqm: JobQueueManager) -> None:
    jqm.app.conf.jqm_web_secret = "from-the-settings"
    assert jqm.users().session_secret() == "from-the-settings"


def test_the_web_migration_goes_down_and_up_again(store: Store) -> None:
    store.ensure_schema()
    migrate.upgrade(store.engine, "head")
    assert {"jqm_web_user", "jqm_web_token", "jqm_web_setting"} <= set(
        inspect(store.engine).get_table_names()
    )
    command.downgrade(migrate.alembic_config(store.engine), "0004")
    assert "jqm_web_user" not in inspect(store.engine).get_table_names()
    migrate.upgrade(store.engine)
    assert migrate.current_revision(store.engine) == migrate.head_revision(store.engine)
    assert "jqm_web_user" in inspect(store.engine).get_table_names()
