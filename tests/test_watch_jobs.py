"""`repurpose watch --jobs N`: several masters at once, through the real CLI,
with the ledger's guarantees kept: each rendered once, a manifest that loses
no one's entries, names never claimed twice, and kill -9 in the middle."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from PIL import ImageOps

from pipeline.outputs import sha256_file


def state(inbox: Path) -> dict[str, str]:
    with sqlite3.connect(inbox / ".repurpose" / "ledger.db") as db:
        return dict(db.execute("select path, state from files"))


def most_at_once(said: str) -> int:
    """The most masters being rendered at one moment, read from the watcher's log."""
    running = peak = 0
    for line in said.splitlines():
        if line.endswith(": rendering"):
            running += 1
            peak = max(peak, running)
        elif ": done" in line or ": failed" in line or ": attempt" in line:
            running -= 1
    return peak


@pytest.mark.slow
def test_a_burst_is_rendered_two_at_a_time_each_once(tmp_path, astronaut):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "shoot.yaml").write_text("targets: [x-image, instagram-feed-square]\n")
    for n in range(8):
        picture = astronaut.rotate(n * 11, expand=True) if n % 2 else ImageOps.mirror(
            astronaut.resize((400 + 16 * n, 400 + 16 * n)))
        picture.convert("RGB").save(inbox / f"IMG_{n:04}.jpg", quality=90)
    astronaut.save(inbox / "photo.jpg", quality=90)        # two masters, one stem
    astronaut.rotate(180).save(inbox / "photo.png")
    astronaut.rotate(90).save(inbox / "twin-a.jpg", quality=90)     # one content, twice
    (inbox / "twin-b.jpg").write_bytes((inbox / "twin-a.jpg").read_bytes())
    (inbox / "broken.jpg").write_bytes(b"\xff\xd8 not a photo")

    done = run_cli("watch", inbox, "--once", "--settle", "0.3", "--jobs", "2")
    assert done.returncode == 1, done.stderr                  # broken.jpg failed, alone
    assert most_at_once(done.stderr) == 2, done.stderr
    ledger = state(inbox)
    assert ledger.pop("broken.jpg", None) == "failed", (ledger, done.stderr)
    assert set(ledger.values()) == {"done"} and len(ledger) == 12, (ledger, done.stderr)
    assert "same content as a file already rendered" in done.stderr

    body = json.loads((inbox / "Output" / "manifest.json").read_text())
    paths = sorted(v["path"] for v in body["variants"])
    stems = sorted({Path(p).stem for p in paths})
    assert stems == sorted([f"IMG_{n:04}" for n in range(8)] + ["photo", "photo-2", "twin-a"])
    assert len(paths) == 2 * len(stems) == len(set(paths))
    for entry in body["variants"]:          # every entry is the file on disk, whole
        assert entry["status"] == "rendered"
        assert sha256_file(inbox / "Output" / entry["path"]) == entry["sha256"]
    made = [p for p in (inbox / "Output").rglob("*") if p.is_file()]
    assert not [p for p in made if p.name.startswith(".")]
    assert not [p for p in (inbox / ".repurpose").iterdir() if p.name.startswith("work-")]


def clip(path: Path, pattern: str) -> Path:
    from videomedia import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"{pattern}=s=1280x720:r=30:d=6", "-f", "lavfi", "-i", "sine=f=440:d=6",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


@pytest.mark.slow
def test_kill_9_with_two_masters_rendering_then_restart_renders_each_once(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "shoot.yaml").write_text("targets: [instagram-reel, x-video]\n"
                                      "speech: {provider: none}\n")
    clip(inbox / "one.mp4", "testsrc2")
    clip(inbox / "two.mp4", "smptebars")
    daemon = subprocess.Popen([sys.executable, "-m", "pipeline", "watch", str(inbox),
                               "--settle", "0.3", "--jobs", "2"], stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              start_new_session=True)
    assert daemon.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while sum(line.endswith(": rendering\n") for line in seen) < 2:
        assert time.monotonic() < deadline and daemon.poll() is None, "".join(seen)
        seen.append(daemon.stderr.readline())
    time.sleep(1.0)                                       # inside both encodes
    os.killpg(daemon.pid, signal.SIGKILL)                 # the daemon and its ffmpegs
    daemon.wait()
    assert state(inbox) == {"one.mp4": "rendering", "two.mp4": "rendering"}, "".join(seen)

    done = run_cli("watch", inbox, "--once", "--settle", "0.3", "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert "2 file(s) left rendering by a crash are pending again" in done.stderr
    assert state(inbox) == {"one.mp4": "done", "two.mp4": "done"}
    assert done.stderr.count(": rendering") == 2          # each once after the restart
    made = sorted(str(p.relative_to(inbox / "Output"))
                  for p in (inbox / "Output").rglob("*") if p.is_file())
    assert not [n for n in made if Path(n).name.startswith(".")], made
    for name in ("one", "two"):
        for preset in ("instagram-reel", "x-video"):
            assert f"{preset}/{name}.mp4" in made
    body = json.loads((inbox / "Output" / "manifest.json").read_text())
    assert len([v for v in body["variants"] if v["path"].endswith(".mp4")]) == 4
    assert not [p for p in (inbox / ".repurpose").iterdir() if p.name.startswith("work-")]


def test_masters_that_could_share_a_name_are_never_rendered_at_once():
    from pipeline.watch.daemon import _rivals

    assert _rivals(Path("in/photo.jpg"), Path("in/PHOTO.png"))
    assert _rivals(Path("in/photo-2.jpg"), Path("in/photo.jpg"))
    assert not _rivals(Path("in/photo.jpg"), Path("in/sub/photo.jpg"))
    assert not _rivals(Path("in/photo.jpg"), Path("in/photos.jpg"))


def test_jobs_must_be_a_positive_number(tmp_path):
    done = run_cli("watch", tmp_path, "--once", "--jobs", "0")
    assert done.returncode == 2 and "--jobs" in done.stderr


def test_each_slot_has_its_own_private_copy_folder(tmp_path):
    from pipeline.watch.stage import WORK, Workspace

    names = [Workspace(tmp_path, slot).name for slot in range(3)]
    assert len(set(names)) == 3 and all(WORK.fullmatch(n) for n in names)


def test_a_broker_that_goes_away_pauses_the_watcher_and_costs_no_attempt(tmp_path, astronaut,
                                                                       monkeypatch, capsys):
    from pipeline.queue.remote import BrokerUnreachable
    from pipeline.watch import Watcher

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "shoot.yaml").write_text("targets: [x-image]\n")
    astronaut.save(inbox / "a.jpg", quality=90)

    def away(*args, **kwargs):
        raise BrokerUnreachable("cannot reach the broker redis://127.0.0.1:1/0: refused",
                                hint="start Redis there")

    monkeypatch.setattr("pipeline.runner.run", away)
    watcher = Watcher(inbox, None, [], settle=0.1, jobs=1, broker="redis://127.0.0.1:1/0")
    watcher.take(inbox / "a.jpg")
    row = watcher.ledger.get("a.jpg")
    assert (row["state"], row["attempts"]) == ("pending", 0)
    assert watcher.paused_until > 0 and (inbox / "a.jpg").exists()
    assert "cannot reach the broker" in capsys.readouterr().err
    assert not (inbox / "Failed").exists() or not any((inbox / "Failed").iterdir())
