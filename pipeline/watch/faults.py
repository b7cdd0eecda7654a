"""Which failures the watch folder tries again, and how long it waits."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import ProcessDied, WriteError

MAX_ATTEMPTS = 3            # renders of one master whose worker died, before Failed/
MAX_WAIT_S = 900.0          # the longest pause between tries


def transient(errors: Sequence[BaseException]) -> bool:
    """Whether a master that failed with `errors` is tried again later (True) or
    goes to Failed/ at once (False).

    Waiting helps only when every fault lies outside the master and its settings:
    the output disk (WriteError: full, read-only, not writable) or a render process
    that died. InputError and its kin, ConfigError from a shoot.yaml, PlanError
    (the upscale limit), a variant failing its checks and internal errors would
    fail the same way again. A master that vanished mid-read is not judged here:
    it is no longer there to move."""
    return bool(errors) and all(disk_fault(e) or died(e) for e in errors)


def disk_fault(error: BaseException) -> bool:
    """A write the output disk refused: the whole watcher pauses, no master is blamed."""
    return isinstance(error, WriteError)


def died(error: BaseException) -> bool:
    """A process of the render died (a worker, or ffmpeg killed by a signal)."""
    return isinstance(error, ProcessDied)


def backoff(first: float, tries: int) -> float:
    """Seconds to wait after the `tries`-th failure in a row: doubling, capped."""
    return float(min(first * 2 ** max(tries - 1, 0), MAX_WAIT_S))
