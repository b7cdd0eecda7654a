"""`make bench`: every benchmark beside its anchor, in one run, as ratios.

Each command runs in its own process; wall time, CPU time (user + system,
including worker processes) and peak memory (largest single process) come
from wait4. Medians over REPURPOSE_BENCH_REPEAT interleaved rounds (default 5).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import photo  # noqa: E402

if __name__ == "__main__":
    repeat = int(os.environ.get("REPURPOSE_BENCH_REPEAT", "5"))
    photo.main(repeat)
