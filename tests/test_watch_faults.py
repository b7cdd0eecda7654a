"""Faults outside the master: a full or read-only disk (a real tmpfs, mounted in
a private mount namespace) pauses the watcher with one clear line per file, and
it carries on once the disk takes writes again; the ledger stays right. Faults
of the master (a definite error) go to Failed/ at once, never retried."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from PIL import Image

from pipeline.errors import (
    ConfigError,
    InputError,
    PipelineError,
    ProcessDied,
    RenderError,
    WriteError,
)
from pipeline.ffmpeg import FfmpegDied, FfmpegError, FfmpegWriteError, ffmpeg_exe, run_ffmpeg
from pipeline.planning.common import PlanError
from pipeline.watch.faults import MAX_WAIT_S, backoff, transient

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
WATCH = [sys.executable, "-m", "pipeline", "watch"]


class TinyDisk:
    """A tmpfs of `size` at `where`, mounted in a private mount namespace held by one
    process: only what runs through `enter` sees it; the test reaches its files
    through /proc/<holder>/root."""

    def __init__(self, where: Path, size: str) -> None:
        missing = [tool for tool in ("unshare", "nsenter") if shutil.which(tool) is None]
        if missing:
            pytest.skip(f"util-linux {' and '.join(missing)} missing: no private tmpfs")
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs in a private mount namespace needs root "
                        "(CI runs as root)")
        where.mkdir(parents=True, exist_ok=True)
        self.where = where
        self.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             f'mount -t tmpfs -o size={size} tmpfs "$0" && echo ready && exec sleep 3600',
             str(where)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != "ready":
            self.holder.kill()
            _, said = self.holder.communicate()
            pytest.skip(f"cannot mount a tmpfs in a private mount namespace: {said.strip()}")

    def seen(self, path: Path) -> Path:
        return Path(f"/proc/{self.holder.pid}/root{path}")

    def enter(self) -> list[str]:
        return ["nsenter", f"--mount=/proc/{self.holder.pid}/ns/mnt", "--"]

    def remount(self, mode: str) -> None:
        subprocess.run([*self.enter(), "mount", "-o", f"remount,{mode}", str(self.where)],
                       check=True)

    def query(self, db: Path, sql: str) -> list[list[object]]:
        """Rows of a SQLite file on the disk, read inside the namespace (SQLite resolves
        /proc/<pid>/root as a link, back to this namespace)."""
        code = ("import json, sqlite3, sys\n"
                "print(json.dumps(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall()))")
        said = subprocess.run([*self.enter(), sys.executable, "-c", code, str(db), sql],
                              capture_output=True, text=True, check=True)
        rows: list[list[object]] = json.loads(said.stdout)
        return rows

    def fill(self) -> Path:
        filler = self.seen(self.where / ".filler")
        with filler.open("wb") as stream:
            try:
                while True:
                    stream.write(b"\0" * 65536)
                    stream.flush()
            except OSError:
                pass
        return filler

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()


class Daemon:
    """`repurpose watch` in a subprocess, its stderr read line by line."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=ENV)
        self.said: list[str] = []
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, *words: str, within: float = 300) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.said.append(line)
            if all(w in line for w in words):
                return line
        raise AssertionError(f"no line with {words}; it said:\n{''.join(self.said)}")

    def stop(self) -> str:
        """SIGTERM, then the rest of what it said; the running render finishes first."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        while (line := self.lines.get(timeout=10)) is not None:
            self.said.append(line)
        return "".join(self.said)


@pytest.fixture
def disk(tmp_path):  # type: ignore[no-untyped-def]
    made: list[TinyDisk] = []

    def mount(where: Path, size: str = "2m") -> TinyDisk:
        made.append(TinyDisk(where, size))
        return made[-1]

    yield mount
    for one in made:
        one.close()


def photo(path: Path, colour: str = "red") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (800, 600), colour).save(path, "JPEG")


def refuse(tiny: TinyDisk, fault: str) -> None:
    if fault == "full":
        tiny.fill()
    else:
        tiny.remount("ro")


def undo(tiny: TinyDisk, fault: str) -> None:
    if fault == "full":
        tiny.seen(tiny.where / ".filler").unlink()
    else:
        tiny.remount("rw")


def inbox_at(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shoot.yaml").write_text("targets: [x-image]\n")
    return folder


# ------------------------------------------------------------------------- which faults


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_ffmpeg_on_a_full_disk_is_a_write_error_and_pickles_as_one():
    import pickle

    argv = [ffmpeg_exe(), "-nostdin", "-v", "error", "-f", "lavfi", "-i",
            "testsrc2=s=320x240:d=2", "-f", "rawvideo", "-y", "/dev/full"]
    with pytest.raises(FfmpegWriteError) as caught:
        run_ffmpeg(argv, "clip.mp4")
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is FfmpegWriteError and transient([again])
    assert "disk is full" in (again.hint or "")


def test_only_faults_outside_the_master_are_transient():
    definite = [InputError("truncated"), ConfigError([]), PlanError("needs 30x upscale"),
                RenderError("output fails its preset's checks: dimensions"),
                PipelineError("internal error: KeyError: 'x'"),
                FfmpegError("ffmpeg failed (exit 1): Invalid data found")]
    for error in definite:
        assert not transient([error]), error
    assert transient([WriteError("disk full: cannot write out/x.jpg")])
    assert transient([ProcessDied("the process rendering this master stopped unexpectedly")])
    assert transient([FfmpegDied("ffmpeg failed (exit -9): killed")])
    assert transient([FfmpegWriteError("ffmpeg failed (exit 1): x", stderr_tail="x.part: No "
                                       "space left on device")])
    assert not transient([RenderError("stopped unexpectedly")])     # types decide, not words
    assert not transient([WriteError("disk full"), PlanError("too small")])
    assert not transient([])
    assert [backoff(30, n) for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(30, 50) == MAX_WAIT_S


@pytest.mark.slow
def test_a_definite_error_goes_to_failed_at_the_first_attempt(tmp_path):
    inbox = inbox_at(tmp_path / "inbox")
    Image.new("RGB", (40, 30), "red").save(inbox / "tiny.jpg")      # over the upscale limit
    done = run_cli("watch", inbox, "--once", "--settle", "0.2", "--retry-wait", "0.1")
    assert done.returncode == 1, done.stderr
    assert "max_upscale" in (inbox / "Failed" / "tiny.jpg.error.txt").read_text()
    assert "retrying" not in done.stderr and done.stderr.count("tiny.jpg: rendering") == 1


# ------------------------------------------------------------------------- the output disk


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_an_output_disk_that_refuses_writes_pauses_the_watcher_until_it_takes_them(
        tmp_path, disk, fault):
    out = tmp_path / "deliver"
    tiny = disk(out, "1m")
    inbox = inbox_at(tmp_path / "inbox")
    daemon = Daemon([*tiny.enter(), *WATCH, str(inbox), "--out", str(out), "--settle", "0.2",
                     "--retry-wait", "0.5"])
    try:
        daemon.wait_for("watching")
        refuse(tiny, fault)
        photo(inbox / "a.jpg")
        line = daemon.wait_for("a.jpg:", "cannot write")
        said = "disk full" if fault == "full" else "read-only disk"
        assert said in line and "pausing" in line, line
        assert daemon.proc.poll() is None and (inbox / "a.jpg").exists()
        undo(tiny, fault)
        daemon.wait_for("a.jpg: done")
        assert tiny.seen(out / "x-image" / "a.jpg").is_file()
        assert (inbox / "Source" / "a.jpg").is_file()
    finally:
        said_all = daemon.stop()
    assert daemon.proc.returncode == 0, said_all
    assert "Traceback" not in said_all and "internal error" not in said_all
    with sqlite3.connect(inbox / ".repurpose" / "ledger.db") as db:
        assert db.execute("select state, attempts from files where path='a.jpg'").fetchone() \
            == ("done", 1)


@pytest.mark.slow
def test_once_exits_1_when_the_disk_stays_full(tmp_path, disk):
    out = tmp_path / "deliver"
    tiny = disk(out, "1m")
    tiny.fill()
    inbox = inbox_at(tmp_path / "inbox")
    photo(inbox / "a.jpg")
    done = subprocess.run([*tiny.enter(), *WATCH, str(inbox), "--once", "--out", str(out),
                           "--settle", "0.2", "--retry-wait", "60"],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 1, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if "cannot write" in ln]
    assert "a.jpg:" in line and "disk full" in line and "Traceback" not in done.stderr
    assert (inbox / "a.jpg").exists() and not list((inbox / "Failed").iterdir())


# ------------------------------------------------------------------------- the ledger's disk


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["full"])     # a tmpfs with open files cannot turn ro
def test_a_ledger_that_cannot_be_written_pauses_and_stays_right(tmp_path, disk, fault):
    inbox = tmp_path / "inbox"
    tiny = disk(inbox, "4m")
    inbox_at(tiny.seen(inbox))
    daemon = Daemon([*tiny.enter(), *WATCH, str(inbox), "--out", str(tmp_path / "deliver"),
                     "--settle", "0.3", "--retry-wait", "0.5"])
    try:
        daemon.wait_for("watching")
        photo(tiny.seen(inbox / "a.jpg"))
        (tiny.seen(inbox / "broken.jpg")).write_text("not an image")
        refuse(tiny, fault)
        line = daemon.wait_for("ledger", "pausing")
        assert "disk full" in line, line
        assert daemon.proc.poll() is None
        undo(tiny, fault)
        daemon.wait_for("a.jpg: done")
        daemon.wait_for("broken.jpg: failed")
        ledger = inbox / ".repurpose" / "ledger.db"
        assert dict(tiny.query(ledger, "select path, state from files")) == {
            "a.jpg": "done", "broken.jpg": "failed"}
        assert tiny.query(ledger, "select path, moved_to from failures") == [
            ["broken.jpg", "broken.jpg"]]
        assert tiny.seen(inbox / "Failed" / "broken.jpg.error.txt").is_file()
        assert tiny.seen(inbox / "Source" / "a.jpg").is_file()
    finally:
        said = daemon.stop()
    assert daemon.proc.returncode == 0, said
    assert "Traceback" not in said and "internal error" not in said


@pytest.mark.slow
def test_an_inbox_on_a_read_only_disk_is_one_line_at_start(tmp_path, disk):
    inbox = tmp_path / "inbox"
    tiny = disk(inbox, "2m")
    inbox_at(tiny.seen(inbox))
    argv = [*tiny.enter(), *WATCH, str(inbox), "--once", "--settle", "0.2"]
    first = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=300)
    assert first.returncode == 0, first.stderr                 # the ledger is there
    tiny.remount("ro")
    refused = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=300)
    assert refused.returncode == 1
    (line,) = refused.stderr.splitlines()
    assert line.startswith("error: read-only disk: cannot write") and ".repurpose" in line


# ------------------------------------------------------------------------- the render process


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
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            encoders = [pid for pid, argv in children(daemon.proc.pid)
                        if "ffmpeg" in argv and ".part" in argv]
            if encoders:
                os.kill(encoders[0], signal.SIGKILL)       # as the out-of-memory killer does
                break
            time.sleep(0.05)
        else:
            pytest.fail("no encoder started")
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
