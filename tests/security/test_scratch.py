"""Private temporary folders (pipeline.scratch): named with their owner's pid,
locked while in use, removed on every way out; and those a kill -9 left behind
are removed by the next run, while nothing else in the temp dir is touched."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT
from videomedia import make_video

from pipeline import scratch as scratch_module
from pipeline.scratch import KINDS, claim, release, remove_stale, scratch


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temp dir of the test's own, as tempfile.gettempdir() answers it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()                     # reaped: its pid names no process now
    return proc.pid


def _free(folder: Path) -> bool:
    """Whether nobody holds the folder's lock."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_folder_is_ours_private_locked_and_goes_on_exit(tmp, kind):
    with scratch(kind) as folder:
        assert folder.parent == tmp
        assert folder.name.startswith(f"repurpose-{kind}-{os.getpid()}-")
        assert folder.stat().st_mode & 0o777 == 0o700
        (folder / "work.bin").write_bytes(b"x")
        assert not _free(folder)
        assert remove_stale(tmp) == 0          # our own, alive and locked: kept
    assert not folder.exists()


def test_an_error_inside_removes_the_folder_too(tmp):
    with pytest.raises(RuntimeError), scratch("subs") as folder:
        (folder / "half.srt").write_text("1")
        raise RuntimeError("boom")
    assert list(tmp.iterdir()) == []


def test_claim_and_release_for_folders_that_outlive_a_block(tmp):
    folder, lock = claim("zip")
    assert not _free(folder)
    release(folder, lock)
    assert not folder.exists()
    with pytest.raises(OSError):
        os.fstat(lock)                          # the lock's descriptor is closed


def test_unknown_kinds_are_refused(tmp):
    with pytest.raises(ValueError, match="known: analysis, ass"), scratch("Bench"):
        pass
    assert list(tmp.iterdir()) == []


def test_stale_folders_of_every_kind_go_and_nothing_else(tmp, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.jpg").write_bytes(b"mine")
    dead, alive = _dead_pid(), os.getppid()
    stale = [tmp / f"repurpose-{kind}-{dead}-ab_c12" for kind in sorted(KINDS)]
    for folder in stale:
        (folder / "inner").mkdir(parents=True)
        (folder / "inner" / "frame.raw").write_bytes(b"x" * 1000)
        (folder / "inner" / "link").symlink_to(outside / "keep.jpg")
        (folder / "dirlink").symlink_to(outside)
    kept = {
        "alive": tmp / f"repurpose-ass-{alive}-abc123",
        "locked": tmp / f"repurpose-analysis-{dead}-locked1",    # another pid namespace
        "link": tmp / f"repurpose-speech-{dead}-link12",
        "file": tmp / f"repurpose-still-{dead}-file12",
        "unknown kind": tmp / f"repurpose-bench-{dead}-abc123",
        "bench": tmp / "repurpose-eval-cache-abc123",
        "no pid": tmp / "repurpose-subs-abcdef",
        "nested": tmp / "deeper" / f"repurpose-zip-{dead}-abc123",
    }
    for name, path in kept.items():
        path.parent.mkdir(exist_ok=True)
        if name == "link":
            path.symlink_to(outside)
        elif name == "file":
            path.write_bytes(b"x")
        else:
            path.mkdir()
    fd = os.open(kept["locked"], os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        assert remove_stale(tmp) == len(stale)
    finally:
        os.close(fd)
    assert not any(os.path.lexists(f) for f in stale)
    assert all(os.path.lexists(p) for p in kept.values())
    assert (outside / "keep.jpg").read_bytes() == b"mine"
    assert remove_stale(tmp) == 1               # unlocked now: it goes
    assert not kept["locked"].exists()


def test_a_temp_dir_that_cannot_be_read_removes_nothing(tmp_path):
    assert remove_stale(tmp_path / "missing") == 0


def test_ingest_runs_the_clean_up(tmp, tmp_path):
    from pipeline.ingest import ingest

    left = tmp / f"repurpose-analysis-{_dead_pid()}-abc123"
    left.mkdir()
    with ingest([tmp_path / "missing.jpg"]):
        pass
    assert not left.exists()


def test_the_pattern_matches_what_mkdtemp_makes(tmp):
    for kind in sorted(KINDS):
        folder, lock = claim(kind)
        try:
            assert scratch_module._NAME.fullmatch(folder.name)
        finally:
            release(folder, lock)


# -- a real render killed with SIGKILL while a scratch folder is in use -----------------

PRESETS = ("- id: tall-subs\n  extends: instagram-reel\n  size: [360, 640]\n"
           "  speed: ultrafast\n  fit: pad\n  background: black\n"
           "  subtitles: {burn: true, style: bold-social}\n")


def _session(sid: int) -> list[str]:
    found = subprocess.run(["ps", "-o", "pid=,comm=", "-s", str(sid)], capture_output=True,
                           text=True).stdout
    return [line.strip() for line in found.splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="children die with their parent on Linux only")
def test_a_folder_left_by_kill_9_is_removed_by_the_next_run(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    master = make_video(tmp_path / "clip.mp4", seconds=40, size="640x360")
    (tmp_path / "clip.srt").write_text("1\n00:00:01,000 --> 00:00:39,000\nBurned in\n")
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "subs.yaml").write_text(PRESETS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
    argv = [sys.executable, "-m", "pipeline", "render", str(master), "--out",
            str(tmp_path / "out"), "--presets-dir", str(presets), "-p", "tall-subs", "--jobs", "1"]
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not (written := sorted(tmp.glob("repurpose-ass-*/*.ass"))):    # the encode is on
        assert proc.poll() is None, "the render ended before its folder was seen"
        assert time.monotonic() < deadline, "no scratch folder appeared"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)           # no chance to clean up, as the OOM killer
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _session(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session(proc.pid) == []
    folder = written[0].parent
    assert folder.is_dir() and list(folder.glob("*.ass")), "the kill left nothing behind"
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert not folder.exists()
    assert sorted(tmp.glob("repurpose-*")) == []
