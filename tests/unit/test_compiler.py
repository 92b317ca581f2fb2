"""A run compiles to a chain in run order, a group where entries share one, immutable signatures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery
from celery.canvas import Signature, _chain, _chord, group

from jqm_celery import JobQueueManager
from jqm_celery.compiler import (
    ADVANCE_RUN_TASK,
    CHUNK_STAGES,
    JOB_FAILED_TASK,
    JOB_TASK,
    compile_run,
    flower_name,
)
from jqm_celery.plans import JobPlan, RunPlan

APP = Celery("compiler-tests", set_as_current=False)
PLAN = RunPlan(
    run_id=42,
    package="nightly-billing",
    jobs=(
        JobPlan(1, "billing.export", 10, None, None, None),
        JobPlan(2, "billing.upload", 20, "bank", 50.0, 60.0),
        JobPlan(3, "billing.notify", 30, None, None, None),
        JobPlan(4, "billing.mark_paid", 30, None, None, None),
    ),
)


def _steps(canvas: Signature) -> list[Signature]:
    """The chain's steps, with a chord (group + next step) unfolded into its group and its body.

    A run without groups is its first step, the others in its "chain" option, last first.
    """
    if not isinstance(canvas, _chain):
        return [canvas, *(Signature(step) for step in reversed(canvas.options.get("chain", [])))]
    steps: list[Signature] = []
    for step in canvas.tasks:
        if isinstance(step, _chord):
            steps += [group(step.tasks), step.body]
        else:
            steps.append(step)
    return steps


def test_stages_follow_run_order_and_the_run_is_closed_last() -> None:
    steps = _steps(compile_run(APP, PLAN))
    assert [s.task if not isinstance(s, group) else "group" for s in steps] == [
        JOB_TASK,
        JOB_TASK,
        "group",
        ADVANCE_RUN_TASK,
    ]
    assert isinstance(compile_run(APP, PLAN).tasks[2], _chord), "group + next step must be a chord"
    assert steps[0].args == (1,)
    assert steps[1].args == (2,)
    assert [s.args for s in steps[2].tasks] == [(3,), (4,)]
    assert steps[3].args == (42,)


def test_every_signature_is_immutable() -> None:
    steps = _steps(compile_run(APP, PLAN))
    flat = [*steps[:2], *steps[2].tasks, steps[3]]
    assert all(s.immutable for s in flat)


def test_jobs_carry_their_queue_time_limits_and_error_callback() -> None:
    upload = _steps(compile_run(APP, PLAN))[1]
    assert upload.options["queue"] == "bank"
    assert upload.options["soft_time_limit"] == 50.0
    assert upload.options["time_limit"] == 60.0
    errback = upload.options["link_error"]
    assert errback["task"] == JOB_FAILED_TASK
    assert (errback["args"], errback["kwargs"]) == ((2, 42, 20), {})
    assert upload.kwargs == {"run_id": 42, "package": "nightly-billing", "task": "billing.upload"}


def test_jqm_bookkeeping_goes_to_the_control_queue_when_one_is_set() -> None:
    steps = _steps(compile_run(APP, PLAN, control_queue="jqm-control"))
    assert steps[-1].options["queue"] == "jqm-control"
    assert steps[0].options["link_error"]["options"]["queue"] == "jqm-control"


def test_a_stand_alone_job_is_named_after_jqm_and_its_task() -> None:
    assert flower_name(None, "reports.build") == "jqm › reports.build"


def test_lone_jobs_and_the_closing_step_store_no_result_and_jobs_of_a_group_do() -> None:
    steps = _steps(compile_run(APP, PLAN))
    assert [steps[0].options.get("ignore_result"), steps[1].options.get("ignore_result")] == [True, True]
    assert [s.options.get("ignore_result") for s in steps[2].tasks] == [None, None]
    assert steps[3].options["ignore_result"] is True


def test_each_job_message_is_sent_under_its_flower_name(tmp_path: Path) -> None:
    app = Celery("compiler-names", broker="memory://", set_as_current=False)
    app.conf.jqm_database_url = f"sqlite:///{tmp_path / 'jqm.sqlite'}"
    JobQueueManager(app)
    sent: list[tuple[str, str]] = []

    def capture(producer: object, name: str, message: Any, **options: object) -> None:
        sent.append((message.headers["task"], message.headers["shadow"]))

    app.amqp.send_task_message = capture
    compile_run(app, PLAN).apply_async()
    assert sent == [(JOB_TASK, "nightly-billing › billing.export")]


def test_a_run_without_groups_is_one_message_that_carries_the_steps_after_it() -> None:
    app = Celery("compiler-chain", broker="memory://", set_as_current=False)
    sent: list[tuple[str, tuple[Any, ...], list[Any]]] = []

    def capture(producer: object, name: str, message: Any, **options: object) -> None:
        args, _, embed = message.body
        sent.append((message.headers["task"], tuple(args), embed["chain"]))

    app.amqp.send_task_message = capture
    plan = RunPlan(3, "p", tuple(JobPlan(job, "t", job, None, None, None) for job in (1, 2, 3)))
    compile_run(app, plan).apply_async()

    [(task, args, rest)] = sent
    assert (task, args) == (JOB_TASK, (1,))
    assert [(step["task"], tuple(step["args"])) for step in rest] == [(JOB_TASK, (3,)), (JOB_TASK, (2,))]
    assert rest[0]["kwargs"]["closes_run"] is True, "the last step, which closes the run, is popped last"
    assert all(step["immutable"] and step["options"]["link_error"] for step in rest)


def test_a_run_longer_than_one_part_is_sent_in_parts_whose_last_job_sends_the_next() -> None:
    long_plan = RunPlan(
        run_id=7,
        package="long",
        jobs=tuple(JobPlan(order, "t", order * 10, None, None, None) for order in range(1, CHUNK_STAGES + 3)),
    )
    steps = _steps(compile_run(APP, long_plan))
    assert [s.task for s in steps] == [JOB_TASK] * CHUNK_STAGES, "no separate step sends the next part"
    assert steps[-1].kwargs["continues_run"] == CHUNK_STAGES * 10, "the next part starts after its run order"
    assert all("continues_run" not in s.kwargs and "closes_run" not in s.kwargs for s in steps[:-1])


def test_a_part_that_ends_with_a_group_is_followed_by_a_step_that_sends_the_next() -> None:
    jobs = [JobPlan(order, "t", order, None, None, None) for order in range(1, CHUNK_STAGES)]
    jobs += [
        JobPlan(100, "t", CHUNK_STAGES, None, None, None),
        JobPlan(101, "t", CHUNK_STAGES, None, None, None),
    ]
    jobs += [JobPlan(200, "t", CHUNK_STAGES + 1, None, None, None)]
    steps = _steps(compile_run(APP, RunPlan(7, "long", tuple(jobs))))
    assert len(steps) == CHUNK_STAGES + 1
    assert isinstance(steps[-2], group)
    assert steps[-1].task == ADVANCE_RUN_TASK
    assert steps[-1].args == (7, CHUNK_STAGES), "the next part starts after the last run order sent"
    assert steps[-1].immutable


def test_a_run_of_exactly_one_part_is_closed_by_its_last_job() -> None:
    plan = RunPlan(7, "p", tuple(JobPlan(o, "t", o, None, None, None) for o in range(1, CHUNK_STAGES + 1)))
    steps = _steps(compile_run(APP, plan))
    assert [s.task for s in steps] == [JOB_TASK] * CHUNK_STAGES, "no separate closing step"
    assert steps[-1].kwargs["closes_run"] is True
    assert all("closes_run" not in s.kwargs for s in steps[:-1])


def test_a_run_of_one_job_is_one_task_that_closes_the_run() -> None:
    canvas = compile_run(APP, RunPlan(9, "single", (JobPlan(5, "t", 0, None, None, None),)))
    assert not isinstance(canvas, _chain)
    assert (canvas.task, canvas.args) == (JOB_TASK, (5,))
    assert canvas.kwargs == {"run_id": 9, "package": "single", "task": "t", "closes_run": True}
    assert canvas.options["ignore_result"] is True
    assert canvas.options["link_error"]["args"] == (5, 9, 0), "a wrapper that dies still resumes the run"


def test_what_is_left_of_a_finished_run_is_its_closing_step() -> None:
    canvas = compile_run(APP, RunPlan(9, "single", ()))
    assert (canvas.task, canvas.args) == (ADVANCE_RUN_TASK, (9,))


MID_GROUP = RunPlan(
    run_id=7,
    package="p",
    jobs=(
        JobPlan(1, "a", 10, None, None, None),
        JobPlan(2, "b", 20, None, None, None),
        JobPlan(3, "c", 20, None, None, None),
        JobPlan(4, "d", 30, None, None, None),
    ),
)


def test_a_sent_part_ends_with_its_first_group_then_the_step_that_sends_the_rest() -> None:
    steps = _steps(compile_run(APP, MID_GROUP))
    assert [s.task if not isinstance(s, group) else "group" for s in steps] == [
        JOB_TASK,
        "group",
        ADVANCE_RUN_TASK,
    ]
    assert steps[2].args == (7, 20)


def test_the_jobs_of_a_group_leave_moving_the_run_on_to_the_chords_error_callback() -> None:
    steps = _steps(compile_run(APP, MID_GROUP))
    assert [s.options["link_error"]["args"] for s in steps[1].tasks] == [(2, 7, 20, False), (3, 7, 20, False)]
    assert steps[0].options["link_error"]["args"] == (1, 7, 10)
    (on_group_failure,) = steps[2].options["link_error"]
    assert (on_group_failure["task"], on_group_failure["args"]) == (ADVANCE_RUN_TASK, (7, 20))
    assert on_group_failure.immutable


def test_a_run_ending_on_a_group_closes_it_or_on_a_failure_moves_on_from_the_group() -> None:
    steps = _steps(compile_run(APP, PLAN))
    assert steps[3].args == (42,)
    (on_group_failure,) = steps[3].options["link_error"]
    assert on_group_failure["args"] == (42, 30)


def test_a_jobs_message_shows_the_users_call_with_jqms_keywords_first() -> None:
    plan = RunPlan(
        run_id=5,
        package="p",
        jobs=(JobPlan(9, "billing.upload", 10, None, None, None, (7,), {"region": "eu"}),),
    )
    upload = _steps(compile_run(APP, plan))[0]
    assert upload.options["argsrepr"] == "(7,)"
    assert upload.options["kwargsrepr"] == (
        "{'run_id': 5, 'package': 'p', 'task': 'billing.upload', 'closes_run': True, 'job_id': 9, "
        "'region': 'eu'}"
    )
