"""Records as JSON for the REST API: datetimes as ISO 8601, durations as seconds (``…_s``), enums as text."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from jqm_celery.records import PackageState

# The records' timedelta fields (None or a duration): the API names them with their unit.
_DURATIONS = frozenset({"current_delay", "planned_delay"})


def plain(value: Any) -> Any:
    """A JSON-safe copy of a record; private fields (``_…``) are left out, durations are ``…_s``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            if field.name.startswith("_"):
                continue
            item = getattr(value, field.name)
            key = f"{field.name}_s" if field.name in _DURATIONS else field.name
            out[key] = plain(item)
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def record(value: object) -> dict[str, Any]:
    """``plain`` of one record (a dataclass), as the JSON object it always is."""
    out = plain(value)
    assert isinstance(out, dict)
    return out


def package_json(state: PackageState, next_runs: list[datetime]) -> dict[str, Any]:
    package = state.definition
    return {
        "name": package.name,
        "status": state.status.value,
        "version": state.version,
        "description": package.description,
        "on_error": package.on_error.value,
        "catch_up": package.catch_up.value,
        "allow_overlap": package.allow_overlap,
        "entries": [entry.to_dict() for entry in package.entries],
        "recurrences": [
            {**recurrence.to_dict(), "description": recurrence.describe()}
            for recurrence in package.recurrences
        ],
        "notifications": [rule.to_dict() for rule in package.notifications],
        "created_at": state.created_at.isoformat(),
        "updated_at": state.updated_at.isoformat(),
        "next_run_at": None if state.next_run_at is None else state.next_run_at.isoformat(),
        "last_run": plain(state.last_run),
        "next_runs": [at.isoformat() for at in next_runs],
    }
