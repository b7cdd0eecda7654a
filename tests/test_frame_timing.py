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
