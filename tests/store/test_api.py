"""The Python API's lifecycle rules and bad input: clear errors, and nothing written."""

from __future__ import annotations

import pytest
from celery import Celery

from jqm_celery import (
    ConfigError,
    Entry,
    JobQueueManager,
    NotFoundError,
    OnError,
    Package,
    PackageStatus,
    StateError,
    ValidationError,
)
from tests.services import REDIS_RESULTS_DB, redis_url
from tests.store.conftest import register_billing_tasks

BILLING = Package(
    "nightly-billing",
    entries=[
        Entry("billing.export", run_order=10),
        Entry("billing.upload", args=[7], run_order=20),
        Entry("billing.notify", run_order=30),
        Entry("billing.mark_paid", run_order=30),
    ],
)


def test_a_saved_package_starts_as_draft_and_reads_back_equal(jqm: JobQueueManager) -> None:
    state = jqm.save(BILLING)
    assert state.status is PackageStatus.DRAFT
    assert state.version == 1
    assert jqm.package("nightly-billing").definition == BILLING


def test_the_lifecycle_goes_draft_active_on_hold_active(jqm: JobQueueManager) -> None:
    jqm.save(BILLING)
    assert jqm.activate("nightly-billing").status is PackageStatus.ACTIVE
    assert jqm.hold("nightly-billing").status is PackageStatus.ON_HOLD
    assert jqm.activate("nightly-billing").status is PackageStatus.ACTIVE


def test_an_unknown_task_is_refused_with_a_suggestion_and_nothing_is_written(jqm: JobQueueManager) -> None:
    typo = Package("typo", entries=[Entry("billing.uplaod")])
    suggestion = r"unknown task 'billing\.uplaod'; did you mean 'billing\.upload'"
    with pytest.raises(ValidationError, match=suggestion):
        jqm.save(typo)
    assert jqm.packages() == []


def test_create_refuses_a_name_that_exists(jqm: JobQueueManager) -> None:
    jqm.create(BILLING)
    with pytest.raises(ValidationError, match="'nightly-billing' already exists"):
        jqm.create(BILLING)


def test_editing_an_active_package_is_refused_and_says_to_hold_it_first(jqm: JobQueueManager) -> None:
    jqm.save(BILLING)
    jqm.activate("nightly-billing")
    changed = Package("nightly-billing", entries=[Entry("billing.export")], on_error=OnError.CONTINUE)
    with pytest.raises(StateError, match=r"is ACTIVE: cannot edit it; put it on hold first"):
        jqm.save(changed)
    assert jqm.package("nightly-billing").definition == BILLING


def test_saving_an_unchanged_definition_of_an_active_package_is_a_no_op(jqm: JobQueueManager) -> None:
    jqm.save(BILLING)
    jqm.activate("nightly-billing")
    state = jqm.save(BILLING)
    assert state.status is PackageStatus.ACTIVE
    assert state.version == 1


def test_an_edit_while_on_hold_is_saved_and_bumps_the_version(jqm: JobQueueManager) -> None:
    jqm.save(BILLING)
    jqm.activate("nightly-billing")
    jqm.hold("nightly-billing")
    changed = Package("nightly-billing", entries=[Entry("billing.export")], on_error=OnError.CONTINUE)
    state = jqm.save(changed)
    assert state.version == 2
    assert state.definition == changed
    assert state.status is PackageStatus.ON_HOLD


def test_deleting_an_active_package_is_refused(jqm: JobQueueManager) -> None:
    jqm.save(BILLING)
    jqm.activate("nightly-billing")
    with pytest.raises(StateError, match="cannot delete it; put it on hold first"):
        jqm.delete("nightly-billing")
    jqm.hold("nightly-billing")
    jqm.delete("nightly-billing")
    assert jqm.packages() == []


def test_only_an_active_package_can_be_put_on_hold(jqm: JobQueueManager) -> None:
    jqm.save(BILLING)
    with pytest.raises(StateError, match="only an ACTIVE package can be put on hold"):
        jqm.hold("nightly-billing")


@pytest.mark.parametrize("action", ["package", "activate", "hold", "run_now", "delete"])
def test_an_unknown_package_name_is_reported_with_a_suggestion(jqm: JobQueueManager, action: str) -> None:
    jqm.save(BILLING)
    with pytest.raises(
        NotFoundError, match="package 'nightly-biling' does not exist; did you mean 'nightly-billing'"
    ):
        getattr(jqm, action)("nightly-biling")


def test_an_unknown_package_name_in_a_log_filter_is_reported(jqm: JobQueueManager) -> None:
    with pytest.raises(NotFoundError, match="package 'nope' does not exist"):
        jqm.log_entries(package="nope")


def test_an_unknown_run_id_is_reported(jqm: JobQueueManager) -> None:
    with pytest.raises(NotFoundError, match="run 999 does not exist"):
        jqm.run(999)
    with pytest.raises(NotFoundError, match="run 999 does not exist"):
        jqm.log_entries(run_id=999)


def test_an_unknown_run_status_filter_lists_the_valid_ones(jqm: JobQueueManager) -> None:
    with pytest.raises(ValidationError, match="choose one of QUEUED, RUNNING, SUCCEEDED"):
        jqm.runs(status="DONE")


def test_parallel_entries_need_a_result_backend_that_supports_chords(database_url: str) -> None:
    app = Celery("rpc-app", set_as_current=False)
    app.conf.update(jqm_database_url=database_url, jqm_auto_migrate=True, result_backend="rpc://")
    register_billing_tasks(app)
    jqm = JobQueueManager(app)
    with pytest.raises(ValidationError, match="needs a result backend that supports chords"):
        jqm.save(BILLING)
    assert jqm.packages() == []
    jqm.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a database URL"),
        ("postgres://user:hunter2@db/jqm", "uses the scheme 'postgres'"),
        ("nosuchdb://user:hunter2@db/jqm", "has no dialect 'nosuchdb'"),
        ("", "jqm_database_url is empty"),
    ],
)
def test_a_malformed_database_url_fails_at_start_up_without_showing_the_password(
    url: str, message: str
) -> None:
    app = Celery("bad-url", set_as_current=False)
    app.conf.jqm_database_url = url
    with pytest.raises(ConfigError, match=message) as caught:
        JobQueueManager(app).packages()
    assert "hunter2" not in str(caught.value)


def test_the_drop_in_config_keeps_the_apps_own_settings() -> None:
    app = Celery("mine", set_as_current=False)
    app.conf.update(
        worker_send_task_events=False,
        result_backend=redis_url(REDIS_RESULTS_DB),
        accept_content=["msgpack"],
        jqm_database_url="sqlite:///:memory:",
    )
    app.conf.worker_send_task_events = False
    JobQueueManager(app)
    assert app.conf.result_backend == redis_url(REDIS_RESULTS_DB)
    assert app.conf.accept_content == ["msgpack", "json"]
    assert app.conf.task_send_sent_event is True


def test_the_drop_in_config_tunes_redis_restore_sweeps_and_keeps_the_apps_own_options() -> None:
    app = Celery("mine", set_as_current=False)
    app.conf.update(
        broker_url=redis_url(REDIS_RESULTS_DB),
        broker_transport_options={"visibility_timeout": 60, "unacked_mutex_expire": 120},
        jqm_database_url="sqlite:///:memory:",
    )
    JobQueueManager(app)
    assert app.conf.broker_transport_options == {
        "unacked_restore_throttle": 1,
        "visibility_timeout": 60,
        "unacked_mutex_expire": 120,
    }
    bare = Celery("bare", set_as_current=False)
    bare.conf.update(broker_url=redis_url(REDIS_RESULTS_DB), jqm_database_url="sqlite:///:memory:")
    JobQueueManager(bare)
    assert bare.conf.broker_transport_options == {"unacked_restore_throttle": 1, "unacked_mutex_expire": 30}


def test_the_drop_in_config_adds_a_result_backend_beside_the_store_when_there_is_none(
    tmp_path: object,
) -> None:
    app = Celery("bare", set_as_current=False)
    app.conf.jqm_database_url = "sqlite:////tmp/x/jqm.sqlite"
    JobQueueManager(app)
    assert app.conf.result_backend == "jqm+sqlite:////tmp/x/jqm-results.sqlite"
    assert app.conf.worker_send_task_events is True
    assert {"jqm.job", "jqm.finish_run", "jqm.job_failed"} <= set(app.tasks.keys())
