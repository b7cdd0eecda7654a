"""Faults outside the master: a full or read-only disk (a real tmpfs, mounted in
a private mount namespace) pauses the watcher with one clear line per file, and
it carries on once the disk takes writes again; the ledger stays right. Faults
of the master (a definite error) go to Failed/ at once, never retried."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from PIL import Image
from watchdaemon import ENV, WATCH, Daemon, inbox_at, photo

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


@pytest.fixture
def disk(tmp_path):  # type: ignore[no-untyped-def]
    made: list[TinyDisk] = []

    def mount(where: Path, size: str = "2m") -> TinyDisk:
        made.append(TinyDisk(where, size))
        return made[-1]

    yield mount
    for one in made:
        one.close()


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

