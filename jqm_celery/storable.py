"""What every store can hold: the one check of values before anything is written.

A definition (``Entry``, ``RetryPolicy``) and a stand-alone job check their values here when they are
built, so the Python API, the CLI, the web forms and the REST API refuse the same input with the same
message. The limits are documented in README.md ("Limits of stored values").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from jqm_celery.errors import ValidationError

#: Integer columns (run order, retries) are 32-bit on every database.
MAX_COLUMN_INT = 2**31 - 1
#: Task and queue names: the width of their columns.
MAX_NAME_CHARS = 255
#: Integers inside args and kwargs: the range a JSON number keeps exactly (IEEE double, JavaScript).
MAX_JSON_INT = 2**53 - 1
#: Lists and dicts nested inside args or kwargs, counting the outer list or dict as 1.
MAX_JSON_DEPTH = 32
#: The serialised size of an entry's or a job's args, and of its kwargs, in bytes (UTF-8 JSON).
MAX_JSON_BYTES = 64 * 1024

_HINT = "pass plain numbers, strings, lists and dicts, e.g. an id instead of an object"


def check_json(owner: str, label: str, value: object) -> None:
    """Raise ValidationError unless ``value`` is JSON that every store and the broker keep as it is."""
    problem = _problem(value, label, 1)
    if problem is not None:
        raise ValidationError(f"{owner}: {problem}")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{owner}: {label} must be JSON-serialisable ({exc}); {_HINT}") from None
    size = len(text.encode("utf-8"))
    if size > MAX_JSON_BYTES:
        raise ValidationError(
            f"{owner}: {label} is {size} bytes as JSON, above the limit of {MAX_JSON_BYTES}; "
            "pass a reference (an id, a path or a URL) to large data instead of the data itself"
        )


def check_column_int(owner: str, label: str, value: int, example: str) -> None:
    """Raise ValidationError unless ``value`` fits the store's integer columns."""
    if not -MAX_COLUMN_INT - 1 <= value <= MAX_COLUMN_INT:
        raise ValidationError(
            f"{owner}: {label} {value} is out of range; it must be at most {MAX_COLUMN_INT}, e.g. {example}"
        )


def _problem(value: object, path: str, depth: int) -> str | None:
    if isinstance(value, str):
        return _string_problem(value, path)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if abs(value) > MAX_JSON_INT:
            return (
                f"{path} is {value}, beyond ±{MAX_JSON_INT} (the integers JSON keeps exactly); "
                "pass a larger number as a string"
            )
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{path} is {value}, which JSON cannot hold; pass a finite number, or None"
        return None
    if isinstance(value, list | tuple | Mapping) and depth > MAX_JSON_DEPTH:
        return (
            f"{path} nests lists and dicts deeper than {MAX_JSON_DEPTH} levels; "
            "flatten it, or pass a reference to the data"
        )
    if isinstance(value, list | tuple):
        return _first(_problem(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
    if isinstance(value, Mapping):
        return _mapping_problem(value, path, depth)
    return None  # json.dumps names what it cannot serialise


def _mapping_problem(value: Mapping[Any, Any], path: str, depth: int) -> str | None:
    for key, item in value.items():
        if isinstance(key, str):
            problem = _string_problem(key, f"a key of {path}")
            if problem is not None:
                return problem
        problem = _problem(item, f"{path}[{key!r}]", depth + 1)
        if problem is not None:
            return problem
    return None


def _string_problem(text: str, path: str) -> str | None:
    if "\x00" in text:
        return (
            f"{path} contains a NUL character (\\u0000), which PostgreSQL cannot store; "
            "remove it, or encode binary data (e.g. base64)"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return (
            f"{path} contains a lone surrogate (e.g. \\ud800), which is not valid UTF-8; "
            "decode the text properly, or encode binary data (e.g. base64)"
        )
    return None


def _first(problems: Any) -> str | None:
    return next((p for p in problems if p is not None), None)


def check_text(owner: str, label: str, value: object, *, max_chars: int | None = None) -> None:
    """Raise ValidationError if a text field holds a character no store can hold, or is too long."""
    if isinstance(value, str):
        problem = _string_problem(value, label)
        if problem is not None:
            raise ValidationError(f"{owner}: {problem}")
        if max_chars is not None and len(value) > max_chars:
            raise ValidationError(
                f"{owner}: {label} is {len(value)} characters long, above the limit of {max_chars}; "
                "use a shorter name"
            )
