"""The next 24 hours of fires across packages, laid out for ``timeline.html``: one row per package, a
tick per fire, the hours of the viewer's zone as a grid, and the minutes where packages fire together."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

LABEL_W, CHART_W, ROW_H, TOP = 230, 720, 18, 24
MAX_ROWS = 60


@dataclass(frozen=True)
class Row:
    package: str
    y: int
    ticks: tuple[tuple[float, datetime], ...]  # (x, fire time)


@dataclass(frozen=True)
class Timeline:
    start: datetime
    end: datetime
    rows: tuple[Row, ...]
    hidden: int  # packages with fires that have no row (more than MAX_ROWS)
    hours: tuple[tuple[float, str], ...]  # (x, "08:00") for each hour of the viewer's zone
    collisions: tuple[tuple[datetime, tuple[str, ...]], ...]  # minutes where two or more packages fire
    fires: int
    width: int
    height: int


def lay_out(fires: list[tuple[datetime, str]], start: datetime, span: timedelta, zone: ZoneInfo) -> Timeline:
    end = start + span
    by_package: dict[str, list[datetime]] = defaultdict(list)
    for at, package in fires:
        by_package[package].append(at)
    order = sorted(by_package, key=lambda p: (by_package[p][0], p))
    shown = order[:MAX_ROWS]

    def x(at: datetime) -> float:
        return LABEL_W + max(0.0, min(1.0, (at - start) / span)) * CHART_W

    rows = tuple(
        Row(package, TOP + i * ROW_H, tuple((round(x(at), 1), at) for at in by_package[package]))
        for i, package in enumerate(shown)
    )
    first_hour = start.astimezone(zone).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = []
    hour = first_hour
    while hour < end:
        hours.append((round(x(hour), 1), hour.strftime("%H:%M")))
        hour = (hour + timedelta(hours=1)).astimezone(zone)
    minutes: dict[datetime, set[str]] = defaultdict(set)
    for at, package in fires:
        minutes[at.replace(second=0, microsecond=0)].add(package)
    together = Counter({minute: len(names) for minute, names in minutes.items() if len(names) > 1})
    collisions = tuple((minute, tuple(sorted(minutes[minute]))) for minute, _ in together.most_common(10))
    return Timeline(
        start,
        end,
        rows,
        len(order) - len(shown),
        tuple(hours),
        collisions,
        len(fires),
        LABEL_W + CHART_W + 10,
        TOP + max(1, len(rows)) * ROW_H + 10,
    )
