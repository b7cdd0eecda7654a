"""Races a stranger who can write into the inbox runs against the watcher.

A master or sidecar swapped for a link after it was read (H3) is caught in
the act by a hook placed between two of the watcher's own steps: the real
watcher, the real render, a real link. Planting in the watcher's folders (H1,
H2) is tried by another OS user, with real `ln` and `mv`: the folders are the
watcher's and the inbox sticky, so the kernel says no; the watcher refuses to
start when that is not so."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_cli
from PIL import Image

from pipeline.watch import Watcher
from pipeline.watch.stage import Workspace

RED, BLUE = (200, 30, 30), (30, 30, 200)
NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")


def make_inbox(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "shoot.yaml").write_text("targets: [x-image]\n")
    return inbox


def photo(path: Path, colour: tuple[int, int, int] = RED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (1200, 900), colour).save(path, "JPEG")
    return path


def xmp(path: Path, title: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
        '22-rdf-syntax-ns#" xmlns:dc="http://purl.org/dc/elements/1.1/"><rdf:Description>'
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt>'
        '</dc:title></rdf:Description></rdf:RDF></x:xmpmeta>')
    return path


def swap_for_link(path: Path, target: Path) -> None:
    """The stranger's move: the file they dropped replaced by a link."""
    path.unlink()
    path.symlink_to(target)


def between(monkeypatch: pytest.MonkeyPatch, owner: type, step: str,
            act: Callable[[], None]) -> None:
    """Run `act` just before the watcher's `owner.step`: a race, made certain."""
    real = getattr(owner, step)

    def hooked(self: Any, *args: Any) -> Any:
        act()
        return real(self, *args)

    monkeypatch.setattr(owner, step, hooked)


def colour(path: Path) -> tuple[int, int, int]:
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        return rgb.getpixel((rgb.width // 2, rgb.height // 2))  # type: ignore[return-value]


def everything_in(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
                    and not p.is_symlink())


def watcher_of(inbox: Path) -> Watcher:
    return Watcher(inbox, None, [], settle=0, jobs=1)


# ------------------------------------------------------------------------- H3: private copies


@pytest.mark.slow
@pytest.mark.parametrize("before", ["copying", "rendering"])
def test_a_master_swapped_for_a_link_after_it_was_read_renders_what_was_read(
        tmp_path, monkeypatch, capsys, before):
    inbox = make_inbox(tmp_path)
    master = photo(inbox / "a.jpg", RED)
    secret = photo(tmp_path / "private" / "secret.jpg", BLUE)
    kept = secret.read_bytes()
    owner, step = (Workspace, "stage") if before == "copying" else (Watcher, "_render")
    between(monkeypatch, owner, step, lambda: swap_for_link(master, secret))
    watcher = watcher_of(inbox)
    watcher.take(master)
    made = list((inbox / "Output").rglob("*.jpg"))
    assert made and all(colour(p)[0] > 150 and colour(p)[2] < 90 for p in made)   # red
    said = capsys.readouterr().err
    assert "a.jpg: changed while it was rendered" in said, said
    monkeypatch.undo()
    watcher.take(master)                    # now a link: it fails as the link itself
    assert (inbox / "Failed" / "a.jpg").is_symlink() and secret.read_bytes() == kept


@pytest.mark.slow
def test_a_sidecar_that_is_a_link_is_left_out_and_one_swapped_later_is_not_read(
        tmp_path, monkeypatch, capsys):
    inbox = make_inbox(tmp_path)
    secret = xmp(tmp_path / "private" / "secret.xmp", "SECRET-TITLE")
    photo(inbox / "a.jpg")
    (inbox / "a.xmp").symlink_to(secret)
    watcher = watcher_of(inbox)
    watcher.take(inbox / "a.jpg")
    assert "a.jpg: sidecar a.xmp is a link; not used" in capsys.readouterr().err
    assert b"SECRET-TITLE" not in everything_in(inbox / "Output")
    assert (inbox / "Source" / "a.jpg").exists()
    # A plain sidecar, swapped for a link once copied: the copy is what is read.
    photo(inbox / "b.jpg", BLUE)
    xmp(inbox / "b.xmp", "PUBLIC-TITLE")
    between(monkeypatch, Watcher, "_render", lambda: swap_for_link(inbox / "b.xmp", secret))
    watcher.take(inbox / "b.jpg")
    made = everything_in(inbox / "Output")
    assert b"PUBLIC-TITLE" in made and b"SECRET-TITLE" not in made


@pytest.mark.slow
def test_the_render_reads_a_private_copy_that_is_removed_afterwards(tmp_path, monkeypatch):
    inbox = make_inbox(tmp_path)
    master = photo(inbox / "sub" / "a.jpg")
    xmp(inbox / "sub" / "a.xmp", "PUBLIC-TITLE")
    seen: dict[str, Any] = {}

    def look() -> None:
        work = inbox / ".repurpose" / f"work-{os.getpid()}"
        seen["mode"] = stat.S_IMODE(work.stat().st_mode)
        seen["names"] = sorted(p.name for p in work.iterdir())
        seen["same"] = (work / "a.jpg").read_bytes() == master.read_bytes()

    between(monkeypatch, Watcher, "_render", look)
    watcher_of(inbox).take(master)
    assert seen == {"mode": 0o700, "names": ["a.jpg", "a.xmp"], "same": True}
    assert (inbox / "Output" / "sub" / "x-image" / "a.jpg").is_file()
    assert not [p for p in (inbox / ".repurpose").iterdir() if p.name.startswith("work-")]


def test_a_master_changed_while_it_is_copied_is_taken_again(tmp_path, monkeypatch, capsys):
    inbox = make_inbox(tmp_path)
    master = photo(inbox / "a.jpg")

    def append() -> None:
        with master.open("ab") as stream:       # the same file, written in place
            stream.write(b"\0" * 16)

    between(monkeypatch, Workspace, "stage", append)
    watcher_of(inbox).take(master)
    assert "a.jpg: changed while it was copied" in capsys.readouterr().err
    with sqlite3.connect(inbox / ".repurpose" / "ledger.db") as db:
        assert db.execute("select state, attempts from files").fetchall() == [("pending", 0)]
    assert not list((inbox / "Output").rglob("*.jpg")) and master.exists()
    assert not [p for p in (inbox / ".repurpose").iterdir() if p.name.startswith("work-")]


def test_a_folder_swapped_for_a_link_is_not_read_through(tmp_path, capsys):
    inbox = make_inbox(tmp_path)
    photo(inbox / "sub" / "a.jpg", RED)
    private = tmp_path / "private"
    photo(private / "a.jpg", BLUE)
    watcher = watcher_of(inbox)
    shutil.rmtree(inbox / "sub")            # walked as a folder, then swapped for a link
    (inbox / "sub").symlink_to(private, target_is_directory=True)
    watcher.take(inbox / "sub" / "a.jpg")
    assert "sub/a.jpg: skipped for now" in capsys.readouterr().err
    assert not list((inbox / "Output").rglob("*.jpg")) and (private / "a.jpg").exists()


def test_a_hard_link_to_a_file_elsewhere_is_not_read(tmp_path, capsys):
    inbox = make_inbox(tmp_path)
    secret = photo(tmp_path / "private" / "secret.jpg", BLUE)
    os.link(secret, inbox / "b.jpg")
    watcher_of(inbox).take(inbox / "b.jpg")
    assert "b.jpg: failed" in capsys.readouterr().err
    assert "a hard link" in (inbox / "Failed" / "b.jpg.error.txt").read_text()
    assert not list((inbox / "Output").rglob("*.jpg")) and secret.stat().st_nlink == 2


def test_work_folders_of_dead_watchers_are_removed_at_start(tmp_path):
    inbox = make_inbox(tmp_path)
    state = inbox / ".repurpose"
    state.mkdir(mode=0o700)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.jpg").write_bytes(b"someone else's")
    try:
        for pid in (dead.pid, live.pid):
            (state / f"work-{pid}").mkdir()
            (state / f"work-{pid}" / "a.jpg").write_bytes(b"copy")
        (state / f"work-{dead.pid}" / "out").symlink_to(outside, target_is_directory=True)
        (state / "work-1").symlink_to(outside, target_is_directory=True)    # pid 1 lives
        umask = os.umask(0o022)
        try:
            watcher_of(inbox).cleanup()
        finally:
            os.umask(umask)
        assert not (state / f"work-{dead.pid}").exists()
        assert not (state / "work-1").is_symlink()
        assert (state / f"work-{live.pid}" / "a.jpg").exists()     # its watcher is alive
        assert (outside / "keep.jpg").read_bytes() == b"someone else's"
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()


# ------------------------------------------------------------------------- M14: links in Output/


def watch_once(inbox: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("watch", inbox, "--once", "--settle", "0.2", *args)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.slow
def test_start_up_clean_up_never_deletes_through_links(tmp_path):
    inbox = make_inbox(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    gone = dead_pid()
    beyond = outside / f".a.jpg.{gone}.part"
    beyond.write_bytes(b"someone else's")
    (inbox / "Output" / "x-image").mkdir(parents=True)
    (inbox / "Output" / "linked").symlink_to(outside, target_is_directory=True)
    stale = inbox / "Output" / "x-image" / f".a.jpg.{gone}.part"
    stale.write_bytes(b"ours, left by a kill")
    done = watch_once(inbox)
    assert done.returncode == 0, done.stderr
    assert beyond.read_bytes() == b"someone else's" and not stale.exists()


@pytest.mark.slow
def test_a_link_made_in_output_is_removed_never_written_through(tmp_path):
    inbox = make_inbox(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.json").write_text("precious")
    (inbox / "Output").mkdir()
    (inbox / "Output" / "x-image").symlink_to(outside, target_is_directory=True)
    (inbox / "Output" / "manifest.json").symlink_to(outside / "victim.json")
    photo(inbox / "a.jpg")
    done = watch_once(inbox, "--retry-wait", "60")
    assert done.returncode == 0, done.stderr            # one stranger's link stops nobody
    assert [p.name for p in outside.iterdir()] == ["victim.json"]
    assert (outside / "victim.json").read_text() == "precious"
    for name in ("x-image", "manifest.json"):
        assert f"Output/{name}: a link (to {outside}" in done.stderr and "removed" in done.stderr
    assert (inbox / "Output" / "x-image" / "a.jpg").is_file()
    assert not (inbox / "Output" / "x-image").is_symlink() and "pausing" not in done.stderr


# ------------------------------------------------------------------------- H1, H2: our folders


@pytest.fixture
def shared_inbox() -> Iterator[Path]:
    """An inbox another user can reach and write to (pytest's own folders are
    private), sticky as a shared inbox must be."""
    base = Path(tempfile.mkdtemp(prefix="repurpose-shared-"))
    os.chmod(base, 0o755)
    inbox = base / "inbox"
    inbox.mkdir()
    os.chmod(inbox, 0o1777)
    (inbox / "shoot.yaml").write_text("targets: [x-image]\n")
    try:
        yield inbox
    finally:
        shutil.rmtree(base)


def as_nobody(*argv: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], user=NOBODY, group=NOBODY,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
@as_root
def test_another_user_can_plant_nothing_where_the_watcher_writes(shared_inbox):
    inbox = shared_inbox
    dropped = photo(inbox.parent / "dropped.jpg")
    os.chmod(dropped, 0o644)
    assert as_nobody("cp", dropped, inbox / "a.jpg").returncode == 0     # they may drop files
    done = run_cli("watch", inbox, "--once", "--settle", "0.2")
    assert done.returncode == 0, done.stderr
    victim = inbox.parent / "victim"
    pid = os.getpid()
    tries = {
        "H1: a link over a temporary output": ["ln", "-s", victim,
                                               inbox / "Output" / "x-image" / f".b.jpg.{pid}.part"],
        "H2: a link for a preset folder": ["ln", "-s", victim, inbox / "Output" / "x-video"],
        "H2: Output/ renamed away": ["mv", inbox / "Output", inbox / "Output.old"],
        "a ledger planted": ["touch", inbox / ".repurpose" / "planted.db"],
        "Source/ renamed away": ["mv", inbox / "Source", inbox / "Source.old"],
    }
    for what, argv in tries.items():
        tried = as_nobody(*argv)
        assert tried.returncode != 0, what
        assert "denied" in tried.stderr or "not permitted" in tried.stderr, (what, tried.stderr)
    assert as_nobody("ln", "-s", victim, inbox / "b.jpg").returncode == 0   # but not here
    assert not victim.exists() and not (inbox / "Output.old").exists()


@pytest.mark.slow
def test_the_watcher_makes_its_folders_private_whatever_the_umask(tmp_path):
    inbox = make_inbox(tmp_path)
    photo(inbox / "sub" / "a.jpg")
    done = subprocess.run([sys.executable, "-m", "pipeline", "watch", str(inbox), "--once",
                           "--settle", "0.2"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          preexec_fn=lambda: os.umask(0o002))    # a group-writable default
    assert done.returncode == 0, done.stderr
    modes = {str(p.relative_to(inbox)): stat.S_IMODE(p.stat().st_mode)
             for p in [inbox / n for n in ("Output", "Source", "Failed", ".repurpose")]
             + [p for p in (inbox / "Output").rglob("*") if p.is_dir()]}
    assert modes == {"Output": 0o755, "Source": 0o755, "Failed": 0o755, ".repurpose": 0o700,
                     "Output/sub": 0o755, "Output/sub/x-image": 0o755,
                     "Output/sub/.repurpose": 0o700}        # the manifest's lock, private
    assert not stat.S_IMODE((inbox / "Output" / "sub" / "x-image" / "a.jpg").stat().st_mode) \
        & 0o022


@pytest.mark.parametrize("folder,mode,fix", [
    ("Output", 0o775, "run chmod -R go-w"),
    ("Output/x-image", 0o777, "run chmod -R go-w"),
    ("Source", 0o777, "run chmod go-w"),
    ("Failed", 0o775, "run chmod go-w"),
    (".repurpose", 0o770, "run chmod go-w"),
])
def test_the_watcher_refuses_folders_others_may_write_to(tmp_path, folder, mode, fix):
    inbox = make_inbox(tmp_path)
    (inbox / folder).mkdir(parents=True)
    os.chmod(inbox / folder, mode)
    for args in (["--once"], ["--status"]):
        refused = run_cli("watch", inbox, *args)
        assert refused.returncode == 2, refused.stderr
        (line,) = refused.stderr.splitlines()
        assert f"{inbox / folder} is writable by group or others" in line and fix in line


@as_root
def test_the_watcher_refuses_folders_of_another_user(tmp_path):
    inbox = make_inbox(tmp_path)
    (inbox / "Output").mkdir()
    os.chown(inbox / "Output", NOBODY, NOBODY)
    refused = run_cli("watch", inbox, "--once")
    assert refused.returncode == 2
    (line,) = refused.stderr.splitlines()
    assert "belongs to another user (uid 65534)" in line and "run chown -R root" in line


def test_an_inbox_others_may_write_to_must_be_sticky(tmp_path):
    inbox = make_inbox(tmp_path)
    os.chmod(inbox, 0o777)
    refused = run_cli("watch", inbox, "--once")
    assert refused.returncode == 2
    (line,) = refused.stderr.splitlines()
    assert "without the sticky bit" in line and f"run chmod +t {inbox}" in line
    os.chmod(inbox, 0o1777)
    done = run_cli("watch", inbox, "--once")
    assert done.returncode == 0, done.stderr
