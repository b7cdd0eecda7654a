"""A `repurpose render` killed with SIGKILL (no chance to clean up) leaves no
process behind: its workers and every ffmpeg die with it, on Linux. The next
run removes the temporary files it left and renders the masters whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_cli
from videomedia import make_video

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="children die with their parent on Linux only")


def session(sid: int) -> list[str]:
    """Processes left in a session (the killed render started one of its own)."""
    found = subprocess.run(["ps", "-o", "pid=,comm=", "-s", str(sid)], capture_output=True,
                           text=True).stdout
    return [line.strip() for line in found.splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigkill_of_render_leaves_no_ffmpeg_and_the_next_run_cleans_up(tmp_path, jobs):
    masters = tmp_path / "masters"
    masters.mkdir()
    for n in range(2):
        make_video(masters / f"m{n}.mp4", seconds=8, size="640x360")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "pipeline", "render", str(masters), "--out", str(out),
            "--jobs", jobs, "-p", "x-video"]
    proc = subprocess.Popen(argv, start_new_session=True, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    while not list(out.rglob(".*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(out.rglob(".*.part")), "the render never started writing"
    assert any("ffmpeg" in p for p in session(proc.pid))
    os.kill(proc.pid, signal.SIGKILL)           # the render alone, not its group
    proc.wait(timeout=10)
    deadline = time.monotonic() + 15
    while session(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session(proc.pid) == []
    left = list(out.rglob(".*.part"))
    assert left                                 # nothing could remove them: the next run does
    again = run_cli("render", masters, "--out", out, "--jobs", jobs, "-p", "x-video")
    assert again.returncode == 0, again.stderr
    assert not list(out.rglob(".*.part"))
    assert sorted(p.name for p in (out / "x-video").glob("*.mp4")) == ["m0.mp4", "m1.mp4"]
