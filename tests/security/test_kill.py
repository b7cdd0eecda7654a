"""A `repurpose render` killed with SIGKILL (no chance to clean up) leaves no
process behind: its workers and every ffmpeg die with it, on Linux. The next
run removes the temporary files it left and renders the masters whole. An
ffmpeg started through run_ffmpeg dies with its killed parent (and one started
without it lives on), and die_with_parent sets the death signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from videomedia import make_video
from videotiming import SMALL, encode, presets

from pipeline.ffmpeg import ffmpeg_exe as pipeline_ffmpeg

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="children die with their parent on Linux only")


def session(sid: int, what: str = "comm") -> list[str]:
    """Processes left in a session (the killed render started one of its own): pid
    and name, or pid and command line with `what="args"`."""
    found = subprocess.run(["ps", "-ww", "-o", f"pid=,{what}=", "-s", str(sid)],
                           capture_output=True, text=True).stdout
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

    def encoding() -> bool:     # an ffmpeg writing a claimed output (.part), not a meter
        return any("ffmpeg" in p and ".part" in p for p in session(proc.pid, "args"))

    # Short ffmpeg runs (the loudness meter) come and go before the encode: only the
    # encode's own command line counts, seen once.
    while not (started := encoding()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started, ("the render never started encoding: "
                     f"{list(out.rglob('.*.part'))} {session(proc.pid)} {proc.poll()}")
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


# -- children die with their parent ------------------------------------------------------

def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(n) for n in text.split()]
    return found


def wait_for(condition, what: str, limit: float = 60.0):
    """Poll until `condition()` is truthy (a generous limit: this is no timing test)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _is_encode(pid: int) -> bool:
    """The helper's ffmpeg running its encode: not the `ffmpeg -version` imageio-ffmpeg
    runs to find the binary, nor a child between fork and exec (still Python)."""
    argv = _cmdline(pid).split(b"\0")
    return argv[0] == pipeline_ffmpeg().encode() and b"testsrc2=d=120" in argv


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


HELPER = """
import subprocess, sys
from pipeline.ffmpeg import GLOBAL_ARGS, ffmpeg_exe, run_ffmpeg
argv = [ffmpeg_exe(), *GLOBAL_ARGS, "-re", "-f", "lavfi", "-i", "testsrc2=d=120", "-f", "null", "-"]
if sys.argv[1] == "run":
    run_ffmpeg(argv, "helper")
else:                                  # the control: a child started without the option
    subprocess.Popen(argv, stdin=subprocess.DEVNULL).wait()
"""


def _orphan_after_kill(mode: str, patience: float) -> tuple[int, bool]:
    parent = subprocess.Popen([sys.executable, "-c", HELPER, mode], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        (child,) = wait_for(lambda: [pid for pid in children(parent.pid)
                                     if _is_encode(pid)], "ffmpeg to start")
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        try:
            wait_for(lambda: not alive(child), "the child to die", limit=patience)
        except AssertionError:
            os.kill(child, signal.SIGKILL)
            return child, True
        return child, False
    finally:
        parent.kill()
        parent.wait()


def test_ffmpeg_started_by_run_ffmpeg_dies_with_its_killed_parent():
    _, survived = _orphan_after_kill("run", patience=30)
    assert not survived
    _, control = _orphan_after_kill("plain", patience=2)   # without it, the child lives on
    assert control


@pytest.mark.slow
def test_sigkill_of_repurpose_render_stops_its_encode(tmp_path):
    """kill -9 of the CLI mid-encode: its ffmpeg goes too, and nothing writes the .part."""
    master = encode(tmp_path / "long.mp4", "testsrc2=s=640x360:r=30:d=120", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    out = tmp_path / "out"
    out.mkdir()
    cli = subprocess.Popen([sys.executable, "-m", "pipeline", "render", str(master), "--out",
                            str(out), "-p", "t-wide", "--presets-dir",
                            str(presets(tmp_path, SMALL.replace("ultrafast", "veryslow")))],
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        (encoder,) = wait_for(lambda: [pid for pid in children(cli.pid)
                                       if b"-filter_complex" in _cmdline(pid)], "the encode")
        (part,) = wait_for(lambda: list(out.rglob("*.part")), "the .part file")
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait()
        wait_for(lambda: not alive(encoder), "ffmpeg to die with the CLI", limit=30)
        assert not [pid for pid in _all_pids() if str(part).encode() in _cmdline(pid)]
    finally:
        cli.kill()
        cli.wait()


def test_die_with_parent_called_at_worker_start_sets_the_death_signal():
    code = ("import ctypes; from pipeline.ffmpeg import die_with_parent; die_with_parent(); "
            "got = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(got), 0, 0, 0); "
            "print(got.value)")                     # PR_GET_PDEATHSIG
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert int(done.stdout) == signal.SIGKILL
