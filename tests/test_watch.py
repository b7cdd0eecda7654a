"""The watch folder, through the real CLI in subprocesses: files taken only
when complete, rendered once, moved to Source or Failed with a reason, the
ledger surviving a crash, and a clean stop on SIGTERM."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_cli
from PIL import Image


def inbox_with(tmp_path, astronaut):
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    (inbox / "shoot.yaml").write_text("targets: [x-image]\n")
    astronaut.save(inbox / "a.jpg", quality=90)
    astronaut.rotate(90).save(inbox / "sub" / "b.jpg", quality=90)
    (inbox / "broken.jpg").write_text("not an image")
    return inbox


LEGACY_LEDGER = ("create table files (path text primary key, size integer, mtime real, "
                 "sha256 text, state text, attempts integer default 0, error text, "
                 "updated text, retry_at real default 0);")


def dead_pid():
    """The pid of a process that has ended (and, for the test's short life, not reused)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def state(inbox):
    with sqlite3.connect(inbox / ".repurpose" / "ledger.db") as db:
        return dict(db.execute("select path, state from files"))


@pytest.mark.slow
def test_once_renders_moves_and_never_renders_twice(tmp_path, astronaut):
    inbox = inbox_with(tmp_path, astronaut)
    done = run_cli("watch", inbox, "--once", "--settle", "0.3")
    assert done.returncode == 1, done.stderr            # broken.jpg failed
    assert (inbox / "Output" / "x-image" / "a.jpg").exists()
    assert (inbox / "Output" / "sub" / "x-image" / "b.jpg").exists()   # the INBOX shoot.yaml
    assert (inbox / "Source" / "a.jpg").exists() and not (inbox / "a.jpg").exists()
    assert (inbox / "Source" / "sub" / "b.jpg").exists()
    reason = (inbox / "Failed" / "broken.jpg.error.txt").read_text()
    assert "not a supported photo" in reason and "--retry-failed" in reason
    assert state(inbox) == {"a.jpg": "done", "sub/b.jpg": "done", "broken.jpg": "failed"}
    assert "a.jpg: done" in done.stderr and "broken.jpg: failed" in done.stderr
    # The same content saved again under another name: recognised, not rendered.
    (inbox / "copy.jpg").write_bytes((inbox / "Source" / "a.jpg").read_bytes())
    again = run_cli("watch", inbox, "--once", "--settle", "0.3")
    assert again.returncode == 0, again.stderr
    assert "same content as a file already rendered" in again.stderr
    assert not (inbox / "Output" / "x-image" / "copy.jpg").exists()
    # A changed file under a rendered name: rendered again.
    astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(inbox / "a.jpg", quality=90)
    changed = run_cli("watch", inbox, "--once", "--settle", "0.3")
    assert "a.jpg: done" in changed.stderr and (inbox / "Source" / "a-2.jpg").exists()
    status = run_cli("watch", inbox, "--status")
    assert "done: 3" in status.stdout and "failed: broken.jpg" in status.stdout
    back = run_cli("watch", inbox, "--retry-failed")
    assert "1 failed file back in the inbox" in back.stdout
    assert (inbox / "broken.jpg").exists() and not (inbox / "Failed" / "broken.jpg").exists()


@pytest.mark.slow
def test_crash_leftovers_are_recovered(tmp_path, astronaut):
    inbox = inbox_with(tmp_path, astronaut)
    (inbox / "broken.jpg").unlink()
    (inbox / "sub" / "b.jpg").unlink()
    (inbox / ".repurpose").mkdir()
    gone = dead_pid()
    stray = inbox / "Output" / "x-image" / f".a.jpg.{gone}.part"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"half")
    running = stray.with_name(f".b.jpg.{os.getpid()}.part")    # a live process's file
    running.write_bytes(b"being written")
    with sqlite3.connect(inbox / ".repurpose" / "ledger.db") as db:   # as a crash leaves it
        db.executescript(LEGACY_LEDGER + "insert into files (path, state, attempts) values "
                                         "('a.jpg', 'rendering', 1);")
    done = run_cli("watch", inbox, "--once", "--settle", "0.3")
    assert done.returncode == 0, done.stderr
    assert "left rendering by a crash are pending again" in done.stderr
    assert not stray.exists() and state(inbox) == {"a.jpg": "done"}
    assert running.read_bytes() == b"being written"


@pytest.mark.slow
def test_daemon_waits_for_a_slow_copy_and_stops_on_sigterm(tmp_path, astronaut):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "shoot.yaml").write_text("targets: [x-image]\n")
    daemon = subprocess.Popen([sys.executable, "-m", "pipeline", "watch", str(inbox),
                               "--settle", "1.0"], stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        time.sleep(1.0)
        data = io.BytesIO()
        astronaut.save(data, "JPEG", quality=95)
        blob = data.getvalue()
        target = inbox / "slow.jpg"
        with target.open("wb") as stream:      # a slow network copy: 4 chunks over ~2.4 s
            for n in range(4):
                stream.write(blob[n * len(blob) // 4:(n + 1) * len(blob) // 4])
                stream.flush()
                time.sleep(0.6)
        deadline = time.monotonic() + 60
        while not (inbox / "Source" / "slow.jpg").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (inbox / "Output" / "x-image" / "slow.jpg").exists()
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, said = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, said
    assert "slow.jpg: rendering" in said and "failed" not in said and "stopped" in said
    assert said.count("slow.jpg: rendering") == 1


def test_a_file_still_open_for_writing_or_without_its_index_is_not_complete(tmp_path):
    from pipeline.watch import complete, has_movie_index

    copying = tmp_path / "copying.jpg"
    with copying.open("wb") as stream:
        stream.write(b"\xff\xd8" + b"\0" * 1000)
        stream.flush()
        if os.path.isdir("/proc"):
            assert not complete(copying)        # another program still writes it
    assert complete(copying)
    movie = (ROOT / "samples" / "shoot" / "clip.mp4").read_bytes()
    (tmp_path / "whole.mp4").write_bytes(movie)
    (tmp_path / "cut.mp4").write_bytes(movie[:movie.find(b"moov") - 4])
    assert has_movie_index(tmp_path / "whole.mp4") and complete(tmp_path / "whole.mp4")
    assert not has_movie_index(tmp_path / "cut.mp4") and not complete(tmp_path / "cut.mp4")


def test_lightroom_style_call_with_many_files(tmp_path, astronaut):
    """Lightroom's "open in other application" passes every exported file at once."""
    import json

    files = []
    for n in range(5):
        path = tmp_path / "export" / f"IMG_{n:04}.jpg"
        path.parent.mkdir(exist_ok=True)
        astronaut.rotate(n * 10).save(path, quality=85)
        files.append(path)
    done = run_cli("render", "--out", tmp_path / "deliver", "-p", "x-image", *files)
    assert done.returncode == 0, done.stderr
    body = json.loads((tmp_path / "deliver" / "manifest.json").read_text())
    assert sorted(v["path"] for v in body["variants"]) == [
        f"x-image/IMG_{n:04}.jpg" for n in range(5)]


@pytest.mark.slow
def test_kill_9_mid_render_then_restart_renders_it_once(tmp_path):
    import shutil as _shutil

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "shoot.yaml").write_text("targets: [instagram-reel, x-video]\n"
                                      "speech: {provider: none}\n")
    _shutil.copy(ROOT / "samples" / "shoot" / "clip.mp4", inbox / "clip.mp4")
    daemon = subprocess.Popen([sys.executable, "-m", "pipeline", "watch", str(inbox),
                               "--settle", "0.3", "--jobs", "1"], stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              start_new_session=True)
    line = ""
    deadline = time.monotonic() + 60
    while "clip.mp4: rendering" not in line and time.monotonic() < deadline:
        line = daemon.stderr.readline()
    time.sleep(1.0)                                       # well inside the encode
    os.killpg(daemon.pid, signal.SIGKILL)                 # the daemon and its ffmpeg
    daemon.wait()
    assert state(inbox) == {"clip.mp4": "rendering"}
    assert not (inbox / "Output" / "instagram-reel" / "clip.mp4").exists()
    done = run_cli("watch", inbox, "--once", "--settle", "0.3")
    assert done.returncode == 0, done.stderr
    assert "pending again" in done.stderr and state(inbox) == {"clip.mp4": "done"}
    made = sorted(p.name for p in (inbox / "Output").rglob("*") if p.is_file())
    assert "clip.mp4" in made and not [n for n in made if n.startswith(".")]
    assert (inbox / "Source" / "clip.mp4").exists()


def test_a_file_gone_before_it_is_read_does_not_stop_the_watch(tmp_path, capsys):
    from pipeline.watch import Watcher

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watcher = Watcher(inbox, None, [], settle=0.1, jobs=1)
    gone = inbox / "moved-away.jpg"          # seen settled, then taken away before reading
    watcher.take(gone)
    assert "moved-away.jpg: skipped for now" in capsys.readouterr().err
    assert not watcher._pending(gone)        # --once does not wait for it


@pytest.mark.slow
def test_retry_failed_brings_back_every_failure_of_a_name(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "shoot.yaml").write_text("targets: [x-image]\n")
    for attempt in ("first", "second"):
        (inbox / "broken.jpg").write_text(f"not an image, {attempt} try")
        failed = run_cli("watch", inbox, "--once", "--settle", "0.2")
        assert failed.returncode == 1 and "broken.jpg: failed" in failed.stderr
    assert (inbox / "Failed" / "broken.jpg").read_text() == "not an image, first try"
    assert (inbox / "Failed" / "broken-2.jpg").read_text() == "not an image, second try"
    assert (inbox / "Failed" / "broken-2.jpg.error.txt").exists()
    status = run_cli("watch", inbox, "--status").stdout
    assert "failed: broken.jpg:" in status and "(in Failed/broken-2.jpg)" in status
    back = run_cli("watch", inbox, "--retry-failed")
    assert "2 failed files back in the inbox" in back.stdout, back.stderr
    assert (inbox / "broken.jpg").read_text() == "not an image, first try"
    assert (inbox / "broken-2.jpg").read_text() == "not an image, second try"
    assert not [p.name for p in (inbox / "Failed").iterdir()]
    assert "pending: 2" in run_cli("watch", inbox, "--status").stdout


def test_a_legacy_ledger_is_migrated_with_its_failures(tmp_path):
    from pipeline.watch import Ledger

    (tmp_path / ".repurpose").mkdir()
    with sqlite3.connect(tmp_path / ".repurpose" / "ledger.db") as db:
        db.executescript(LEGACY_LEDGER + "insert into files (path, state, error) values "
                                         "('x.jpg', 'failed', 'bad'), ('y.jpg', 'done', null);")
    ledger = Ledger(tmp_path)
    assert [tuple(r.values()) for r in ledger.failed()] == [(1, "x.jpg", "x.jpg", "bad")]
    ledger.failure("x.jpg", "x-2.jpg", "bad again")
    assert [r["moved_to"] for r in ledger.failed()] == ["x.jpg", "x-2.jpg"]
    assert ledger.get("x.jpg")["moved_to"] == "x-2.jpg"
    assert len(Ledger(tmp_path).failed()) == 2            # opened again: nothing re-migrated


@pytest.mark.slow
def test_once_exits_1_while_a_file_is_left_in_the_inbox(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "empty.jpg").write_bytes(b"")               # a copy that has not begun
    left = run_cli("watch", inbox, "--once", "--settle", "0.2")
    assert left.returncode == 1 and (inbox / "empty.jpg").exists()
