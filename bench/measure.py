"""Run a command and measure it: wall seconds, CPU seconds, peak RSS (MiB).

The command is started from a small launcher process, so the benchmark's own
memory (it generates the test images) never counts as the command's peak.
CPU time includes every worker process the command waited for.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass

LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"wall": time.perf_counter() - start, "status": os.waitstatus_to_exitcode(status),
                  "cpu": usage.ru_utime + usage.ru_stime, "peak": usage.ru_maxrss / 1024}))
"""


@dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float
    peak_mib: float


def measure(argv: list[str], env: dict[str, str] | None = None) -> Sample:
    # Every run starts with an empty analysis cache: a shoot is analysed once, for real.
    with tempfile.TemporaryDirectory(prefix="repurpose-bench-cache-") as cache:
        done = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, *argv],
                              env={**os.environ, "REPURPOSE_CACHE": cache, **(env or {})},
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark launcher failed: {argv}\n{done.stderr}")
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    if facts["status"] != 0:
        raise SystemExit(f"benchmark command failed ({facts['status']}): {argv}\n{done.stderr}")
    return Sample(facts["wall"], facts["cpu"], facts["peak"])


def median(samples: list[Sample]) -> Sample:
    return Sample(statistics.median(s.wall for s in samples),
                  statistics.median(s.cpu for s in samples),
                  max(s.peak_mib for s in samples))
