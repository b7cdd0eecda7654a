"""Where a render's time goes, for `make bench`: with REPURPOSE_TIMINGS set to a
file, each timed stage of each master appends one JSON line to it
({"master", "stage", "seconds"} and any facts the stage gives). Unset, timing
costs nothing."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "REPURPOSE_TIMINGS"


@contextmanager
def timed(stage: str, master: str, **facts: object) -> Iterator[None]:
    target = os.environ.get(ENV)
    if not target:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        line = json.dumps({"master": master, "stage": stage,
                           "seconds": round(time.perf_counter() - started, 3), **facts},
                          default=str)
        try:
            with open(target, "a", encoding="utf-8") as sink:
                sink.write(line + "\n")
        except OSError:
            pass
