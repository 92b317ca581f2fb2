"""schemathesis against the REST API's OpenAPI document, as an Administrator: no request gets a 5xx.

It runs on Redis + PostgreSQL with the session's worker, so generated requests reach a real store (with
its integer and text limits) and, for run now, cancel and abort, a real broker. Every operation gets
``MAX_EXAMPLES`` valid and as many invalid requests.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from jqm_celery import Entry, JobQueueManager, Package
from jqm_celery.web import create_app
from tests.integration.conftest import Backend, Worker

pytestmark = pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)
MAX_EXAMPLES = 25


def test_no_generated_request_gets_a_server_error(backend: Backend, worker: Worker) -> None:
    jqm = JobQueueManager.of(backend.app())
    jqm.save(Package("fuzzed", entries=[Entry("tests.noop")]))
    users = jqm.users()
    if users.user("fuzz-admin") is None:
        users.add("fuzz-admin", "admin", "correct horse battery")
    headers = {"Authorization": f"Bearer {users.create_token('fuzz-admin', 'schemathesis')}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(jqm))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    failures: list[str] = []
    for operation in operations:
        strategies = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]

        @given(case=st.one_of(strategies))
        @settings(max_examples=2 * MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            call()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert failures == [], "\n\n".join(failures)
