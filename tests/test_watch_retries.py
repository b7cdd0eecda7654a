"""Faults of the render process while the watcher runs: an encoder killed as the
out-of-memory killer would is run again in smaller passes, and when that fails
too the master is retried with backoff, a master saved again while it
renders is taken again, and a master that keeps stopping the watcher goes to
Failed/ instead of being rendered once more."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from watchdaemon import WATCH, Daemon, inbox_at, photo


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is `pid`."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                argv = (stat_file.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                found.append((int(stat_file.parent.name), argv.decode("utf-8", "replace")))
        except (OSError, IndexError, ValueError):
            continue
    return found


def video_inbox(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "shoot.yaml").write_text("targets: [instagram-reel, x-video]\n"
                                      "speech: {provider: none}\n")
    return inbox


@pytest.mark.slow
def test_a_render_process_that_dies_is_retried_with_backoff(tmp_path):
    inbox = video_inbox(tmp_path)
    daemon = Daemon([*WATCH, str(inbox), "--settle", "0.3", "--jobs", "1",
                     "--retry-wait", "0.2"])
    try:
        daemon.wait_for("watching")
        shutil.copy(ROOT / "samples" / "shoot" / "clip.mp4", inbox / "clip.mp4")
        daemon.wait_for("clip.mp4: rendering")
        # The pass is run again twice in smaller passes (pipeline.render.passes): the
        # attempt fails when the third encoder is killed too.
        killed: set[int] = set()
        deadline = time.monotonic() + 120
        while len(killed) < 3 and time.monotonic() < deadline:
            for pid, argv in children(daemon.proc.pid):
                if "ffmpeg" in argv and ".part" in argv and pid not in killed:
                    os.kill(pid, signal.SIGKILL)        # as the out-of-memory killer does
                    killed.add(pid)
            time.sleep(0.05)
        assert len(killed) == 3, f"encoders seen and killed: {len(killed)}"
        line = daemon.wait_for("clip.mp4: attempt 1 failed, retrying")
        assert "exit -9" in line
        daemon.wait_for("clip.mp4: done")
    finally:
        said = daemon.stop()
    assert (inbox / "Source" / "clip.mp4").exists(), said
    assert not list((inbox / "Failed").iterdir()), said


@pytest.mark.slow
def test_a_master_saved_again_while_it_renders_is_taken_again(tmp_path):
    inbox = video_inbox(tmp_path)
    daemon = Daemon([*WATCH, str(inbox), "--settle", "0.3", "--jobs", "1"])
    try:
        daemon.wait_for("watching")
        clip = ROOT / "samples" / "shoot" / "clip.mp4"
        shutil.copy(clip, inbox / "clip.mp4")
        daemon.wait_for("clip.mp4: rendering")
        newer = inbox / ".clip.mp4.saving"                  # an editor saves a new version
        newer.write_bytes(clip.read_bytes() + b"\0" * 16)   # (trailing bytes: new content)
        newer.replace(inbox / "clip.mp4")
        daemon.wait_for("clip.mp4: changed while it was rendered")
        daemon.wait_for("clip.mp4: done")
    finally:
        said = daemon.stop()
    assert said.count("clip.mp4: rendering") == 2 and "failed" not in said, said
    assert (inbox / "Source" / "clip.mp4").stat().st_size == clip.stat().st_size + 16


@pytest.mark.slow
def test_a_master_that_keeps_stopping_the_watcher_goes_to_failed(tmp_path):
    import hashlib

    inbox = inbox_at(tmp_path / "inbox")
    photo(inbox / "a.jpg")
    digest = hashlib.sha256((inbox / "a.jpg").read_bytes()).hexdigest()
    (inbox / ".repurpose").mkdir()
    with sqlite3.connect(inbox / ".repurpose" / "ledger.db") as db:    # a third crash on it
        db.executescript("create table files (path text primary key, size integer, mtime "
                         "real, sha256 text, state text, attempts integer default 0, error "
                         "text, updated text, retry_at real default 0);")
        db.execute("insert into files (path, sha256, state, attempts) values (?, ?, ?, ?)",
                   ("a.jpg", digest, "rendering", 3))
    done = run_cli("watch", inbox, "--once", "--settle", "0.2")
    assert done.returncode == 1, done.stderr
    assert "a.jpg: rendering" not in done.stderr
    assert "stopped while it rendered this file" in (inbox / "Failed" / "a.jpg.error.txt"
                                                     ).read_text()
