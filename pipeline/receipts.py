"""Receipts: each variant written in place is reported as soon as it is, so a
queue task that is delivered again after its worker died (pipeline.queue)
skips what the dead worker had already finished instead of writing it twice.

A job's runner decides where receipts go (`set_sink`); render code calls
`written` after a variant took its final name. Without a sink nothing happens.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.model import VariantResult

_sink: Callable[[VariantResult], None] | None = None


def set_sink(sink: Callable[[VariantResult], None] | None) -> None:
    global _sink
    _sink = sink


def written(made: VariantResult) -> None:
    if _sink is not None:
        _sink(made)
