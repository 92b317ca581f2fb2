"""The run as a picture: its stages left to right in run order, the parallel jobs of a stage one above
the other, each job a box coloured by its status. Laid out here; ``_run_picture.html`` draws it as SVG."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from jqm_celery.records import Job, Run

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 190, 54, 46, 12, 10

#: Fill colours by job status (text stays dark on each).
COLOURS = {
    "QUEUED": "#e8eaf0",
    "DELAYED": "#e8eaf0",
    "RUNNING": "#bbdefb",
    "RETRYING": "#ffe0b2",
    "DONE": "#c8e6c9",
    "ERROR": "#ffcdd2",
    "SKIPPED": "#eeeeee",
    "CANCELLED": "#eeeeee",
    "ABORTED": "#f8bbd0",
}


@dataclass(frozen=True)
class Box:
    job: Job
    x: int
    y: int
    colour: str


@dataclass(frozen=True)
class Arrow:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    stages: tuple[tuple[int, int], ...]  # (run order, x of the stage's column)


def run_picture(run: Run) -> Picture:
    stages = [list(jobs) for _, jobs in groupby(sorted(run.jobs, key=_order), key=lambda j: j.run_order)]
    tallest = max((len(stage) for stage in stages), default=1)
    height = PAD * 2 + 18 + tallest * BOX_H + (tallest - 1) * GAP_Y
    boxes: list[Box] = []
    arrows: list[Arrow] = []
    columns: list[tuple[int, int]] = []
    middle = 18 + PAD + (height - 18 - 2 * PAD) // 2
    for column, stage in enumerate(stages):
        x = PAD + column * (BOX_W + GAP_X)
        columns.append((stage[0].run_order, x))
        top = middle - (len(stage) * BOX_H + (len(stage) - 1) * GAP_Y) // 2
        for row, job in enumerate(stage):
            boxes.append(Box(job, x, top + row * (BOX_H + GAP_Y), COLOURS.get(job.status, "#eeeeee")))
        if column:
            arrows.append(Arrow(x - GAP_X + 4, middle, x - 4, middle))
    width = PAD * 2 + max(1, len(stages)) * BOX_W + max(0, len(stages) - 1) * GAP_X
    return Picture(width, height, tuple(boxes), tuple(arrows), tuple(columns))


def _order(job: Job) -> tuple[int, int]:
    return job.run_order, job.id
