"""A run becomes a Celery canvas: a chain in run order, a group where entries share a run order.

A run without groups is sent as its first job, the other steps in its message's ``chain`` field (as
Celery's chain sends them); a run with one is a Celery chain, which turns each group into a chord.

Every signature is immutable, so no result flows from one job into the next. A job that fails for good
is recorded by the runtime, then fails its Celery task; Celery sends no further step of a chain after a
failed one, so each job's own ``link_error`` callback (``jqm.job_failed``) moves the run on from the
store (and records the failure first if the job's wrapper itself died: a hard time limit, a lost
database). The last step closes the run.

A group is the header of a chord; when one of its jobs fails, Celery runs no body but calls the body's
error callbacks, once. So a sent part ends with its first group, followed by ``jqm.advance_run`` whose
error callback is ``jqm.advance_run`` too: the run moves on once, whether the group's jobs all succeeded
or not, and the jobs of the group do not move it on themselves.

A long run is sent in parts of at most ``CHUNK_STAGES`` stages: every message of a Celery chain carries
the signatures of all the steps after it, so one chain of n stages ships O(n²) bytes, and the worker's
handling of each message grows with it. Each part ends with ``jqm.advance_run``, which compiles and sends
the next part from the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery, chain, group
from celery.canvas import Signature

from jqm_celery.plans import JobPlan, RunPlan

JOB_TASK = "jqm.job"
JOB_FAILED_TASK = "jqm.job_failed"
#: Moves a run on: sends its next part, or ends it (``Runtime.advance``).
ADVANCE_RUN_TASK = "jqm.advance_run"
#: The names ``jqm.advance_run`` replaced, still registered so that messages sent by the previous version
#: complete: the end of a run, the next part of a long run, the rest of a run after a recovered job.
FORMER_ADVANCE_TASKS = ("jqm.finish_run", "jqm.continue_run", "jqm.resume_run")
#: The keyword argument of ``jqm.job`` in which the previous version handed a job over, claimed.
HANDED_OVER = "handed_over"

#: The longest argument repr a message carries (Celery's own limit for the reprs it makes).
_REPR_MAX = 1024

#: Stages per sent part of a run (see docs/benchmarks.md for the measurement behind it).
CHUNK_STAGES = 24
#: Stages read from the store to send the next part: those sent, and one more to know if a part follows.
NEXT_PART_STAGES = CHUNK_STAGES + 1


def flower_name(package: str | None, task: str) -> str:
    """The name a job shows under in Flower and in worker logs."""
    return f"{package} › {task}" if package else f"jqm › {task}"


def job_signature(
    app: Celery,
    plan: RunPlan,
    job: JobPlan,
    *,
    control_queue: str | None,
    closes_run: bool = False,
    continues_run: bool = False,
    in_group: bool = False,
) -> Signature:
    # No "shadow" option: jqm.job's shadow_name derives the Flower name from the kwargs when each message
    # is sent, and every message of a chain carries the signatures of all the jobs after it.
    options: dict[str, Any] = {
        "link_error": app.signature(
            JOB_FAILED_TASK,
            # Positional, not keywords: every message of the chain carries the errbacks of all the jobs
            # after it. Celery puts the failed task's id in front of these when it calls the errback.
            args=(job.id, plan.run_id, job.run_order, *((False,) if in_group else ())),
            **_routing(control_queue),
        ),
    }
    if job.queue:
        options["queue"] = job.queue
    if job.soft_time_limit_s is not None:
        options["soft_time_limit"] = job.soft_time_limit_s
    if job.time_limit_s is not None:
        options["time_limit"] = job.time_limit_s
    kwargs: dict[str, Any] = {"run_id": plan.run_id, "package": plan.package, "task": job.task}
    if closes_run:
        kwargs["closes_run"] = True
    if continues_run:
        kwargs["continues_run"] = job.run_order
    options.update(call_reprs(job, kwargs))
    return app.signature(JOB_TASK, args=(job.id,), kwargs=kwargs, immutable=True, **options)


def call_reprs(job: JobPlan, kwargs: Mapping[str, Any]) -> dict[str, str]:
    """The arguments a job's message shows in Flower and worker logs: the user's call, as Celery would
    show the user's task, with jqm's own keyword arguments (and the job's id) first, so that Flower's
    ``kwargs:run_id=42`` search finds them."""
    shown = [*kwargs.items(), ("job_id", job.id), *job.kwargs.items()]
    return {
        "argsrepr": repr(tuple(job.args))[:_REPR_MAX],
        "kwargsrepr": ("{" + ", ".join(f"{k!r}: {v!r}" for k, v in shown) + "}")[:_REPR_MAX],
    }


def compile_run(
    app: Celery, plan: RunPlan, *, control_queue: str | None = None, chunk_stages: int = CHUNK_STAGES
) -> Signature:
    """The canvas of a run (or of what is left of it): stages in run order, then the run's closing step.

    With more than ``chunk_stages`` stages, only the first ``chunk_stages`` are compiled, followed by the
    step that sends the rest once they have finished; a part also ends with its first group (see the
    module's docstring: the step after a group is its chord's body and error callback). When the last
    stage sent is a lone job, that job takes the step on itself once it has an outcome: it closes the run
    (``closes_run``) or sends the rest (``continues_run``), which saves a message and its hop; a run of
    one job is a single task.
    """
    stages = plan.stages()
    sent = stages[:chunk_stages]
    first_group = next((i for i, stage in enumerate(sent) if len(stage) > 1), None)
    if first_group is not None:
        sent = sent[: first_group + 1]
    continues = len(stages) > len(sent)
    last_takes_step = bool(sent) and len(sent[-1]) == 1
    steps: list[Signature] = []
    for index, stage in enumerate(sent):
        takes_step = last_takes_step and index == len(sent) - 1
        signatures = [
            job_signature(
                app,
                plan,
                job,
                control_queue=control_queue,
                closes_run=takes_step and not continues,
                continues_run=takes_step and continues,
                in_group=len(stage) > 1,
            )
            for job in stage
        ]
        if len(signatures) == 1:
            # Nothing reads a lone job's result, so it is not stored (a failure still is, for the job's
            # error callback); the jobs of a group keep theirs: the chord that follows counts them.
            steps.append(signatures[0].set(ignore_result=True))
        else:
            steps.append(group(signatures))
    if not sent:
        steps.append(_advance(app, (plan.run_id,), control_queue))
    elif not last_takes_step:
        last_run_order = sent[-1][0].run_order
        after_group = _advance(
            app, (plan.run_id, last_run_order) if continues else (plan.run_id,), control_queue
        )
        # The chord's error callback when a job of the group failed: Celery then calls the body's error
        # callbacks (a list, as it reads them) instead of the body, once.
        after_group.set(link_error=[_advance(app, (plan.run_id, last_run_order), control_queue)])
        steps.append(after_group)
    if any(isinstance(step, group) for step in steps):
        # Celery turns "group, then the next step" into a chord: the next stage waits for the whole group.
        return chain(*steps)
    # Sent as the first step (every job's argument reprs are given, so Celery does not work them out
    # with its saferepr, which costs more than the rest of building the message). The steps after it
    # travel in its message's "chain" field, last first, which is how Celery's chain sends them; each
    # worker sends the next one when its step returns. Celery's chain would first clone and freeze every
    # step (a task id each, known in advance), which jqm has no use for.
    first, rest = steps[0], steps[1:]
    if rest:
        first.set(chain=list(reversed(rest)))
    return first


def _advance(app: Celery, args: tuple[int, ...], control_queue: str | None) -> Signature:
    return app.signature(
        ADVANCE_RUN_TASK, args=args, immutable=True, ignore_result=True, **_routing(control_queue)
    )


def _routing(queue: str | None) -> dict[str, Any]:
    return {} if queue is None else {"queue": queue}
