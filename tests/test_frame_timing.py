"""Frame timing (issue 11, item 7): outputs last their kept range, at the
constant frame rate their preset asks for; camera paths stay inside the frame;
a variant ffmpeg cannot render fails alone; ffmpeg children die with their
parent. Real encodes of generated masters, decoded and measured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="PR_SET_PDEATHSIG is Linux's")


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


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


HELPER = """
import subprocess, sys
from pipeline.ffmpeg import GLOBAL_ARGS, child_options, ffmpeg_exe, run_ffmpeg
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
        (child,) = wait_for(lambda: children(parent.pid), "ffmpeg to start")
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


@linux_only
def test_ffmpeg_started_by_run_ffmpeg_dies_with_its_killed_parent():
    _, survived = _orphan_after_kill("run", patience=30)
    assert not survived
    _, control = _orphan_after_kill("plain", patience=2)   # without it, the child lives on
    assert control


@linux_only
def test_die_with_parent_called_at_worker_start_sets_the_death_signal():
    code = ("import ctypes; from pipeline.ffmpeg import die_with_parent; die_with_parent(); "
            "got = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(got), 0, 0, 0); "
            "print(got.value)")                     # PR_GET_PDEATHSIG
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert int(done.stdout) == signal.SIGKILL


# -- constant frame rate ----------------------------------------------------------------

def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def encode(out: Path, source: str, *args: str, audio: str | None = None) -> Path:
    inputs = ["-f", "lavfi", "-i", source]
    if audio:
        inputs += ["-f", "lavfi", "-i", audio]
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *inputs, *args, str(out)], check=True)
    return out


def info(path: Path):
    from pipeline.model import Asset
    from pipeline.probe import probe_video

    return probe_video(Asset(path, path.name, path.stem, path.parent, path.name))


def b_frames(count: int, keyint: int) -> list[str]:
    """x264 with `count` B-frames in a fixed pattern: in decode order every reference
    frame comes before the frames shown ahead of it."""
    return ["-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p", "-x264-params",
            f"bframes={count}:b-adapt=0:b-pyramid=none:scenecut=0:keyint={keyint}"]


@pytest.mark.parametrize("count,keyint,ext", [(1, 250, "mp4"), (2, 1000, "mp4"), (3, 250, "mp4"),
                                              (3, 1000, "mp4"), (3, 300, "mp4"), (3, 250, "mkv")])
def test_constant_rate_with_b_frames_is_not_taken_for_variable(tmp_path, count, keyint, ext):
    """The probe samples the first 600 packets; with B-frames the last of them may be a
    reference frame whose neighbours in display order were not read yet."""
    made = encode(tmp_path / f"b.{ext}", "testsrc2=s=64x48:r=30:d=21", *b_frames(count, keyint))
    probed = info(made)
    assert probed.fps == 30 and not probed.variable_fps
