"""One page of the package list: what the packages page and ``GET /api/packages`` show for each package."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jqm_celery.records import RunSummary
from jqm_celery.statuses import OnError, PackageStatus


@dataclass(frozen=True)
class PackageSummary:
    """A package as a list shows it: no definition, only what a row needs."""

    name: str
    status: PackageStatus
    description: str
    on_error: OnError
    entries: int
    recurrences: int
    #: The earliest next fire time of an ACTIVE package's recurrences; None for other statuses.
    next_run_at: datetime | None
    last_run: RunSummary | None
    updated_at: datetime


@dataclass(frozen=True)
class PackagePage:
    """``packages`` sorted by name, starting at ``offset``, out of ``total`` that match the filter."""

    total: int
    offset: int
    packages: tuple[PackageSummary, ...]
