"""What notifications cost a run: the same package with notification rules on and off.

``python -m benchmarks.notify_overhead [--backend redis-pg|embedded|rabbitmq-pg|all] [--n 200]
[--repeat 5] [--concurrency 2]``

Per backend, one worker subprocess (prefork) runs the app of ``benchmarks.dispatch`` with an SMTP server
configured: aiosmtpd on loopback, in this process. Two packages have the same N trivial entries in run
order; one of them has a rule that mails two recipients on every scenario (so each run sends a "run
started" and a "run succeeded" mail to each). Measured from ``run_now`` until the run has finished,
alternating on and off; reported: ms per entry (median of the repetitions, and their spread), the ratio
on/off (target ≤ 1.05), and how many mails the SMTP server received.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack

from sqlalchemy import select

from benchmarks.dispatch import NOOP, Bench, backend_conf, make_app
from benchmarks.harness import Spread, Worker, delete_queues, run_per_backend, scratch_dir, wait_until
from jqm_celery import Entry, Notify, OnError, Package, Scenario
from jqm_celery.statuses import RunStatus
from jqm_celery.store.models import RunRow
from tests.integration.mailserver import MailServer

BACKENDS = ("redis-pg", "embedded", "rabbitmq-pg")
DEFAULT_BACKENDS = ("redis-pg", "embedded")
OFF = "bench-notify-off"
ON = "bench-notify-on"
RECIPIENTS = ["ops@bench.example.com", "cfo@bench.example.com"]


def _package(name: str, n: int, *, notify: bool) -> Package:
    rules = [Notify(RECIPIENTS, on=set(Scenario))] if notify else []
    entries = [Entry(NOOP, run_order=order) for order in range(1, n + 1)]
    return Package(name, entries=entries, on_error=OnError.CONTINUE, notifications=rules)


def _timed_run(bench: Bench, name: str, timeout_s: float) -> float:
    started = time.perf_counter()
    run_id = bench.jqm.run_now(name).id
    status = select(RunRow.status).where(RunRow.id == run_id)

    def finished() -> bool:
        with bench.poll_engine.connect() as conn:
            return RunStatus(conn.execute(status).scalar_one()).finished

    wait_until(finished, timeout_s, 0.005, f"run {run_id} of {name}")
    elapsed = time.perf_counter() - started
    with bench.poll_engine.connect() as conn:
        if conn.scalar(status) != RunStatus.SUCCEEDED:
            raise RuntimeError(f"benchmark run {run_id} of {name} did not succeed")
    return elapsed


def run_backend(name: str, args: argparse.Namespace) -> str:
    with ExitStack() as stack:
        mail = MailServer().start()
        stack.callback(mail.stop)
        folder = stack.enter_context(scratch_dir())
        base, description = stack.enter_context(backend_conf(name, folder))
        conf = {
            **base,
            "jqm_notification_queue": f"{base['task_default_queue']}-notify",
            "jqm_smtp_url": mail.url,
            "jqm_mail_from": "jqm@bench.example.com",
        }
        app = make_app(conf)
        bench = Bench(app, args.n, 1, args.timeout)
        stack.callback(bench.dispose)
        if name != "embedded":
            queues = [conf["task_default_queue"], conf["jqm_notification_queue"]]
            stack.callback(delete_queues, app, queues)
        bench.jqm.upgrade_db()
        worker = Worker(
            "benchmarks.dispatch:make_app",
            conf,
            ["--pool=prefork", f"--concurrency={args.concurrency}", "--loglevel=WARNING"],
            folder=folder,
        )
        stack.enter_context(worker)
        started = time.monotonic()
        bench.jqm.save(_package(OFF, args.n, notify=False))
        bench.jqm.save(_package(ON, args.n, notify=True))
        for package in (OFF, ON):  # warm-up, not measured
            _timed_run(bench, package, args.timeout)
        samples: dict[str, list[float]] = {OFF: [], ON: []}
        for rep in range(args.repeat):
            order = [OFF, ON] if rep % 2 == 0 else [ON, OFF]
            for package in order:
                samples[package].append(_timed_run(bench, package, args.timeout))
        expected = 2 * len(RECIPIENTS) * (args.repeat + 1)
        wait_until(lambda: len(mail.inbox.received) >= expected, 60, 0.05, f"{expected} mails")
        off = Spread(tuple(1000 * s / args.n for s in samples[OFF]))
        on = Spread(tuple(1000 * s / args.n for s in samples[ON]))
        paired = Spread(tuple(b / a for a, b in zip(samples[OFF], samples[ON], strict=True)))
        lines = [
            f"backend {name}: {description}; SMTP aiosmtpd on loopback; worker prefork ×{args.concurrency}; "
            f"median of {args.repeat}",
            f"{'measurement':<44}{'ms/entry':>10}   spread ms/entry",
            f"{f'package, {args.n} entries, notifications off':<44}{off.median:>10.3f}   {off.range_text()}",
            f"{f'package, {args.n} entries, notifications on':<44}{on.median:>10.3f}   {on.range_text()}",
            f"on/off time per entry: {on.median / off.median:.3f} (per repetition {paired.range_text()}; "
            "target ≤ 1.05)",
            f"mails received: {len(mail.inbox.received)} (expected {expected}: 2 per run and recipient)",
            f"(measured in {time.monotonic() - started:.0f} s)",
        ]
        return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.notify_overhead", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backend", action="append", choices=[*BACKENDS, "all"])
    parser.add_argument("--n", type=int, default=200, help="entries in the package")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions; the median is reported")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per run")
    args = parser.parse_args(argv)
    chosen = args.backend or list(DEFAULT_BACKENDS)
    args.backend = list(BACKENDS) if "all" in chosen else list(dict.fromkeys(chosen))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = f"n={args.n}, repeat={args.repeat}"
    return run_per_backend(
        "notification overhead benchmark", settings, args.backend, lambda name: run_backend(name, args)
    )


if __name__ == "__main__":
    sys.exit(main())
