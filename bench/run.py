"""`make bench`: every benchmark beside its anchor, in one run, as ratios.
`python bench/run.py photo` (or video, shared, burst) runs one part.

Each command runs in its own process; wall time, CPU time (user + system,
including worker processes) and peak memory (largest single process) come
from wait4. Medians over REPURPOSE_BENCH_REPEAT interleaved rounds (default 5).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import burst  # noqa: E402
import photo  # noqa: E402
import shared  # noqa: E402
import video  # noqa: E402

if __name__ == "__main__":
    which = sys.argv[1:] or ["photo", "video", "shared", "burst"]
    if "photo" in which:
        photo.main(int(os.environ.get("REPURPOSE_BENCH_REPEAT", "5")))
    if "video" in which:
        # Video rounds take minutes each; one round unless asked for more.
        video.main(int(os.environ.get("REPURPOSE_BENCH_VIDEO_REPEAT", "1")))
    if "shared" in which:
        # Each round renders two masters into every built-in preset twice (minutes).
        shared.main(int(os.environ.get("REPURPOSE_BENCH_SHARED_REPEAT", "1")))
    if "burst" in which:
        burst.main(int(os.environ.get("REPURPOSE_BENCH_BURST_REPEAT", "1")))
