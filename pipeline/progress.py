"""Progress: a bar with ETA on stderr (shown only when stderr is a terminal),
advanced by the share of each master done.

A job reports its share with `report(fraction)`; ffmpeg runs feed it from
their `-progress` output (pipeline.ffmpeg). The runner decides where reports
go: straight to the bar, or through a queue from worker processes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

_sink: Callable[[float], None] | None = None


def set_sink(sink: Callable[[float], None] | None) -> None:
    """Where this process's current job reports its progress (None: nowhere)."""
    global _sink
    _sink = sink


def reporting() -> bool:
    return _sink is not None


@contextmanager
def within(start: float, end: float) -> Iterator[None]:
    """Reports made inside are shares of the part [start, end] of the job."""
    global _sink
    outer = _sink

    def part(fraction: float) -> None:
        assert outer is not None
        outer(start + (end - start) * min(max(fraction, 0.0), 1.0))

    if outer is not None:
        _sink = part
    try:
        yield
    finally:
        _sink = outer


def report(fraction: float) -> None:
    if _sink is not None:
        _sink(min(max(fraction, 0.0), 1.0))


class ProgressBar:
    STEPS = 1000               # bar units per master

    def __init__(self) -> None:
        self._bar: Any = None
        self._done: dict[int, int] = {}

    def start(self, total: int) -> None:
        if total and sys.stderr.isatty():
            label = f"rendering {total} master{'s' if total != 1 else ''}"
            self._bar = click.progressbar(length=total * self.STEPS, label=label,
                                          show_eta=True, show_percent=True, file=sys.stderr)
            self._bar.__enter__()

    def moved(self, job: int, fraction: float) -> None:
        """Master number `job` is `fraction` done (it never goes back)."""
        steps = round(fraction * self.STEPS)
        gained = steps - self._done.get(job, 0)
        if gained > 0:
            self._done[job] = steps
            if self._bar is not None:
                self._bar.update(gained)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
