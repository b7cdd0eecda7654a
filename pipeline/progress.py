"""A progress bar with ETA on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
from typing import Any

import click


class ProgressBar:
    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, total: int) -> None:
        if total and sys.stderr.isatty():
            self._bar = click.progressbar(length=total, label="rendering", show_eta=True,
                                          show_pos=True, file=sys.stderr)
            self._bar.__enter__()

    def advance(self, _outcome: object) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
