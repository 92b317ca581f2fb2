"""Who started a run by hand: the audit trail's RUN_NOW entries ("run 42 via web UI") of a package."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select

from jqm_celery.queue_records import AuditAction
from jqm_celery.store.queue_models import AuditRow
from jqm_celery.store.store import Store

_RUN = re.compile(r"^run (\d+)(?:\b|$)(?:.* via (.+))?")


def run_starters(store: Store, package: str, run_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """``{run id: (actor, via)}`` for the runs of ``package`` among ``run_ids`` that someone started."""
    wanted = set(run_ids)
    if not wanted:
        return {}
    found: dict[int, tuple[str, str]] = {}
    with store.transaction() as s:
        rows = s.execute(
            select(AuditRow.actor, AuditRow.detail)
            .where(AuditRow.package_name == package, AuditRow.action == AuditAction.RUN_NOW)
            .order_by(AuditRow.id.desc())
            .limit(max(100, 4 * len(wanted)))
        )
        for actor, detail in rows:
            match = _RUN.match(detail or "")
            if match and int(match.group(1)) in wanted:
                found.setdefault(int(match.group(1)), (actor, match.group(2) or ""))
    return found
