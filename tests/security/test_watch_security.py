"""The watch inbox holds content from strangers: links are never followed out of
it, nothing is written through an existing path, one watcher works an inbox at
a time, names cannot collide, overflow or forge a log line, and a shoot.yaml
that came with the files cannot run anything. Real links, real locks, the
real daemon in a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from PIL import Image

from pipeline.outputs import NAME_MAX, assign_stems, remove_stale_temps, short_name, temp_path


def make_inbox(tmp_path: Path, shoot: str = "targets: [x-image]\n") -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "shoot.yaml").write_text(shoot)
    return inbox


def photo(path: Path, colour: str = "red", fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (640, 480), colour).save(path, fmt)
    return path


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def watch_once(inbox: Path, *args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return run_cli("watch", inbox, "--once", "--settle", "0.2", *args)


# ------------------------------------------------------------------------- links


@pytest.mark.slow
def test_a_linked_error_file_is_never_written_through(tmp_path):
    inbox = make_inbox(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (inbox / "Failed").mkdir()
    (inbox / "Failed" / "broken.jpg.error.txt").symlink_to(victim)
    (inbox / "broken.jpg").write_text("not an image")
    done = watch_once(inbox)
    assert done.returncode == 1, done.stderr
    assert victim.read_text() == "precious"
    assert (inbox / "Failed" / "broken.jpg.error.txt").is_symlink()
    assert (inbox / "Failed" / "broken-2.jpg").read_text() == "not an image"
    assert "not a supported photo" in (inbox / "Failed" / "broken-2.jpg.error.txt").read_text()


@pytest.mark.slow
def test_a_linked_master_goes_to_failed_as_the_link_itself(tmp_path):
    inbox = make_inbox(tmp_path)
    secret = photo(tmp_path / "private" / "secret.jpg")
    before = secret.read_bytes()
    (inbox / "evil.jpg").symlink_to(secret)
    (inbox / "folder").symlink_to(secret.parent, target_is_directory=True)
    done = watch_once(inbox)
    assert done.returncode == 1, done.stderr
    assert (inbox / "Failed" / "evil.jpg").is_symlink()
    assert os.readlink(inbox / "Failed" / "evil.jpg") == str(secret)
    assert (inbox / "Failed" / "folder").is_symlink()
    assert secret.read_bytes() == before and [p.name for p in secret.parent.iterdir()] == [
        "secret.jpg"]
    assert not list((inbox / "Output").rglob("*.jpg"))
    reason = (inbox / "Failed" / "evil.jpg.error.txt").read_text()
    assert "a link" in reason and "does not follow links" in reason
    assert "evil.jpg: failed" in done.stderr


@pytest.mark.parametrize("name", ["Output", "Source", "Failed", ".repurpose"])
def test_the_watcher_refuses_to_start_when_its_folders_are_links(tmp_path, name):
    inbox = make_inbox(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (inbox / name).symlink_to(elsewhere, target_is_directory=True)
    for mode in (["--once"], ["--retry-failed"], ["--status"]):
        refused = run_cli("watch", inbox, *mode)
        assert refused.returncode == 2, (mode, refused.stderr)
        (line,) = refused.stderr.splitlines()
        assert str(inbox / name) in line and "is a link" in line and "remove it" in line
    assert not list(elsewhere.iterdir())


def test_with_out_named_a_linked_output_folder_is_not_used(tmp_path):
    inbox = make_inbox(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (inbox / "Output").symlink_to(elsewhere, target_is_directory=True)
    refused = run_cli("watch", inbox, "--once")
    assert refused.returncode == 2 and "--out DIR" in refused.stderr
    done = run_cli("watch", inbox, "--once", "--out", tmp_path / "deliver")
    assert done.returncode == 0, done.stderr


def test_a_folder_where_a_file_should_be_is_refused(tmp_path):
    inbox = make_inbox(tmp_path)
    (inbox / "Source").write_text("a file, not a folder")
    refused = run_cli("watch", inbox, "--once")
    assert refused.returncode == 2 and "is not a folder" in refused.stderr


def test_stale_temps_are_ours_of_dead_processes_only_and_never_through_links(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    (out / "x-image").mkdir(parents=True)
    outside.mkdir()
    gone = dead_pid()
    stale = out / "x-image" / f".a.jpg.{gone}.part"
    running = out / "x-image" / f".b.jpg.{os.getpid()}.part"
    theirs = [out / "x-image" / n for n in (".c.jpg.part", f"c.jpg.{gone}.part",
                                            f".c.jpg.{gone}.partial", ".c.jpg.x1.part")]
    beyond = outside / f".d.jpg.{gone}.part"
    for path in [stale, running, *theirs, beyond]:
        path.write_bytes(b"x")
    (out / "linked").symlink_to(outside, target_is_directory=True)
    (out / "x-image" / f".e.jpg.{gone}.part").symlink_to(beyond)
    assert remove_stale_temps(out) == 1
    assert not stale.exists() and running.exists() and all(p.exists() for p in theirs)
    assert beyond.exists() and (out / "x-image" / f".e.jpg.{gone}.part").is_symlink()
    assert remove_stale_temps(tmp_path / "missing") == 0


def test_a_planted_temporary_name_is_not_written_through(tmp_path):
    from pipeline.outputs import atomic_write

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    final = tmp_path / "out" / "a.jpg"
    final.parent.mkdir()
    temp_path(final).symlink_to(victim)
    atomic_write(final, b"output")
    assert victim.read_text() == "precious" and final.read_bytes() == b"output"
    assert not temp_path(final).exists() and not temp_path(final).is_symlink()


# ------------------------------------------------------------------------- one watcher


@pytest.mark.slow
def test_a_second_watcher_exits_at_once_naming_the_first(tmp_path):
    inbox = make_inbox(tmp_path)
    first = subprocess.Popen([sys.executable, "-m", "pipeline", "watch", str(inbox),
                              "--settle", "0.2"], stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert first.stderr is not None
        line = first.stderr.readline()
        assert "watching" in line, line
        # A render of the first watcher's in progress, as its temporary file shows.
        busy = inbox / "Output" / "x-image" / f".a.jpg.{first.pid}.part"
        busy.parent.mkdir(parents=True)
        busy.write_bytes(b"being encoded")
        for mode in (["--once"], ["--retry-failed"], []):
            second = run_cli("watch", inbox, *mode, timeout=60)
            assert second.returncode == 2, (mode, second.stderr)
            (said,) = second.stderr.splitlines()
            assert f"process {first.pid}" in said and str(inbox) in said
        status = run_cli("watch", inbox, "--status")
        assert status.returncode == 0, status.stderr
        assert busy.read_bytes() == b"being encoded"
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 0
    again = watch_once(inbox)                            # the lock went with the process
    assert again.returncode == 0, again.stderr


# ------------------------------------------------------------------------- names


def asset(label: str, stem: str):  # type: ignore[no-untyped-def]
    from pipeline.model import Asset

    return Asset(Path(label), label, stem, None, label)


def made(source: str, path: str, status: str = "rendered") -> dict[str, str]:
    """An earlier manifest entry."""
    return {"status": status, "source": source, "path": path}


def test_stems_taken_in_an_earlier_run_are_kept_and_never_shared():
    earlier = {"x-image/photo.jpg": made("/in/photo.jpg", "x-image/photo.jpg"),
               "reel/clip.part1.mp4": made("/in/clip.mov", "reel/clip.part1.mp4"),
               "reel/clip.part2.mp4": made("/in/clip.mov", "reel/clip.part2.mp4"),
               "x-image/Shot-2.jpg": made("/in/shot.png", "x-image/Shot-2.jpg")}
    new = [asset("/in/PHOTO.jpeg", "PHOTO"), asset("/in/photo.png", "photo"),
           asset("/in/photo.jpg", "photo"), asset("/in/clip.mp4", "clip"),
           asset("/in/clip.part1.mp4", "clip.part1"), asset("/in/shot.png", "shot")]
    stems = {a.label: s for a, s in assign_stems(new, earlier).items()}
    assert stems["/in/photo.jpg"] == "photo" and stems["/in/shot.png"] == "Shot-2"
    assert stems["/in/PHOTO.jpeg"] == "PHOTO-2" and stems["/in/photo.png"] == "photo-3"
    assert stems["/in/clip.mp4"] == "clip-2" and stems["/in/clip.part1.mp4"] == "clip.part1-2"
    assert assign_stems([asset("/in/clip.mov", "clip")], earlier)[asset("/in/clip.mov",
                                                                        "clip")] == "clip"
    named = {"x-image/a.jpg": made("a.jpg", "x-image/a.jpg")}
    assert list(assign_stems([asset("./a.jpg", "a")], named).values()) == ["a"]
    twice = {"x-image/p.jpg": made("/in/p.jpg", "x-image/p.jpg"),   # an old bug
             "x-video/p.mp4": made("/in/p.png", "x-video/p.mp4")}
    again = assign_stems([asset("/in/p.jpg", "p"), asset("/in/p.png", "p")], twice)
    assert sorted(again.values()) == ["p", "p-2"]
    failed = {"x-image/q.jpg": made("/in/q.jpg", "x-image/q.jpg", "failed")}
    assert list(assign_stems([asset("/in/q.png", "q")], failed).values()) == ["q"]


def test_long_names_fit_the_file_name_limit_and_stay_distinct():
    long_a, long_b = "é" * 126 + "a", "é" * 126 + "b"          # 253 bytes each
    a, b = short_name(long_a, 100), short_name(long_b, 100)
    assert a != b and a == short_name(long_a, 100) and len(a.encode()) <= 100
    assert a.startswith("é" * 45) and "~" in a
    final = Path("/out") / (long_a + ".jpg")
    assert len(temp_path(final).name.encode()) <= NAME_MAX
    assert temp_path(final) == temp_path(final) and temp_path(final).name.endswith(".part")
    stems = assign_stems([asset("/in/a", long_a), asset("/in/b", long_b)]).values()
    assert len(set(stems)) == 2
    assert all(len((s + "-99.part12.transcript.json").encode()) <= NAME_MAX for s in stems)


@pytest.mark.slow
def test_colliding_names_get_their_own_outputs_across_runs(tmp_path):
    inbox = make_inbox(tmp_path)
    photo(inbox / "photo.jpg", "red")
    photo(inbox / "photo.png", "green", "PNG")
    photo(inbox / "PHOTO.jpeg", "blue", "JPEG")
    done = watch_once(inbox)
    assert done.returncode == 0, done.stderr
    made = {p.name for p in (inbox / "Output" / "x-image").glob("*.jpg")}
    assert made == {"PHOTO.jpg", "photo-2.jpg", "photo-3.jpg"}
    photo(inbox / "Photo.JPG", "white", "JPEG")              # a later run, the same stem
    photo(inbox / "photo.jpg", "yellow")                     # changed: keeps its name
    again = watch_once(inbox)
    assert again.returncode == 0, again.stderr
    body = json.loads((inbox / "Output" / "manifest.json").read_text())
    by_source = {Path(v["source"]).name: v["path"] for v in body["variants"]}
    assert by_source == {"PHOTO.jpeg": "x-image/PHOTO.jpg", "photo.jpg": "x-image/photo-2.jpg",
                         "photo.png": "x-image/photo-3.jpg", "Photo.JPG": "x-image/Photo-4.jpg"}
    with Image.open(inbox / "Output" / "x-image" / "photo-2.jpg") as image:
        assert image.convert("RGB").getpixel((5, 5))[2] < 100      # yellow, re-rendered


@pytest.mark.slow
def test_master_names_of_250_bytes_render_and_move(tmp_path):
    inbox = make_inbox(tmp_path)
    name = "é" * 123 + ".jpg"                                 # 250 bytes
    photo(inbox / name)
    (inbox / ("ü" * 124 + ".jpg")).write_text("not an image")  # 252 bytes, fails
    done = watch_once(inbox)
    assert done.returncode == 1, done.stderr
    assert "too long" not in done.stderr
    (made,) = (inbox / "Output" / "x-image").glob("*.jpg")
    assert len(made.name.encode()) <= NAME_MAX and made.name.startswith("é" * 100)
    assert (inbox / "Source" / name).exists()
    notes = list((inbox / "Failed").glob("*.error.txt"))
    assert len(notes) == 1 and len(notes[0].name.encode()) <= NAME_MAX
    assert (inbox / "Failed" / notes[0].name.removesuffix(".error.txt")).exists()


@pytest.mark.slow
def test_control_characters_in_names_are_escaped_in_logs_and_error_files(tmp_path):
    inbox = make_inbox(tmp_path)
    forged = "x.jpg\n12:00:00 y.jpg: done, master moved to Source\n.jpg"
    (inbox / forged).write_text("not an image")
    photo(inbox / "\x1b[2Jclear.jpg")
    (inbox / "\u202egpj.exe.jpg").write_text("not an image either")
    done = watch_once(inbox)
    assert done.returncode == 1, done.stderr
    assert "\x1b" not in done.stderr and "\u202e" not in done.stderr
    stamp = re.compile(r"^\d\d:\d\d:\d\d ")
    assert all(stamp.match(line) for line in done.stderr.splitlines()), done.stderr
    assert "y.jpg: done" not in [line[9:] for line in done.stderr.splitlines()]
    assert "x.jpg\\n12:00:00" in done.stderr and "\\x1b[2Jclear.jpg: done" in done.stderr
    note = (inbox / "Failed" / (forged + ".error.txt")).read_text().splitlines()
    assert note[0] == "x.jpg\\n12:00:00 y.jpg: done, master moved to Source\\n.jpg could " \
                      "not be rendered."
    assert note[1] == "" and "\\n12:00:00 y.jpg" in note[2] and note[3] == ""
    status = run_cli("watch", inbox, "--status").stdout
    assert "\u202e" not in status and "\\u202egpj" in status


@pytest.mark.slow
def test_names_that_are_not_utf8_render_fail_and_come_back(tmp_path):
    inbox = make_inbox(tmp_path)
    good, bad = os.fsdecode(b"\xffgood.jpg"), os.fsdecode(b"\xfe bad.jpg")
    photo(inbox / good)
    (inbox / bad).write_text("not an image")
    done = watch_once(inbox)
    assert done.returncode == 1, done.stderr
    assert "\\udcffgood.jpg: done" in done.stderr and "Traceback" not in done.stderr
    assert (inbox / "Source" / good).exists() and (inbox / "Failed" / bad).exists()
    body = json.loads((inbox / "Output" / "manifest.json").read_text())
    assert [v["path"] for v in body["variants"]] == ["x-image/\udcffgood.jpg"]
    assert "failed: \\udcfe bad.jpg" in run_cli("watch", inbox, "--status").stdout
    back = run_cli("watch", inbox, "--retry-failed")
    assert "1 failed file back" in back.stdout and (inbox / bad).exists()


# ------------------------------------------------------------------------- trust


def writer(tmp_path: Path, marker: Path) -> list[str]:
    """argv of a caption program that leaves a marker when it runs."""
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""\
        import json, pathlib, sys
        json.load(sys.stdin)
        pathlib.Path({str(marker)!r}).write_text("ran")
        print(json.dumps({{"text": "Written by the operator's program."}}))
    """))
    return [sys.executable, str(script)]


def command_captions(argv: list[str]) -> str:
    return f"captions:\n  provider: command\n  options: {{argv: {json.dumps(argv)}}}\n"


@pytest.mark.slow
def test_a_content_shoot_yaml_cannot_run_a_program(tmp_path):
    marker = tmp_path / "ran.txt"
    inbox = make_inbox(tmp_path, "targets: [x-image]\n" + command_captions(
        writer(tmp_path, marker)))
    photo(inbox / "a.jpg")
    done = watch_once(inbox)
    assert done.returncode == 1, done.stderr
    assert not marker.exists() and "a.jpg: failed" in done.stderr
    reason = (inbox / "Failed" / "a.jpg.error.txt").read_text()
    assert "captions.provider" in reason and "--config" in reason


@pytest.mark.slow
def test_trust_inbox_and_operator_config(tmp_path):
    marker = tmp_path / "ran.txt"
    argv = writer(tmp_path, marker)
    inbox = make_inbox(tmp_path, "targets: [x-image]\n" + command_captions(argv))
    photo(inbox / "a.jpg")
    trusted = watch_once(inbox, "--trust-inbox")
    assert trusted.returncode == 0, trusted.stderr
    assert "trusting shoot.yaml files in" in trusted.stderr.splitlines()[0]
    assert marker.exists() and "privileged: " in trusted.stderr
    marker.unlink()
    (inbox / "shoot.yaml").write_text("targets: [x-image]\n")
    config = tmp_path / "operator.yaml"
    config.write_text(command_captions(argv))
    photo(inbox / "b.jpg", "blue")
    operated = watch_once(inbox, "--config", config)
    assert operated.returncode == 0, operated.stderr
    assert marker.exists()
    caption = (inbox / "Output" / "x-image" / "b.caption.txt").read_text()
    assert "Written by the operator's program." in caption
    config.write_text("bogus: 1\n")
    refused = watch_once(inbox, "--config", config)
    assert refused.returncode == 2 and f"{config}:1: bogus" in refused.stderr


@pytest.mark.slow
def test_a_broken_trusted_shoot_yaml_fails_its_files_with_the_problems(tmp_path):
    inbox = make_inbox(tmp_path, "targets: [x-image]\nbogus: 1\n")
    photo(inbox / "a.jpg")
    done = watch_once(inbox, "--trust-inbox")
    assert done.returncode == 1, done.stderr
    reason = (inbox / "Failed" / "a.jpg.error.txt").read_text()
    assert "shoot.yaml:2: bogus" in reason


@pytest.mark.slow
def test_media_named_like_a_sidecar_goes_to_failed_with_the_reason(tmp_path):
    inbox = make_inbox(tmp_path)
    photo(inbox / "manifest.json", fmt="JPEG")
    (inbox / "notes.txt").write_text("a real sidecar stays")
    done = watch_once(inbox)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("manifest.json: failed") == 1
    reason = (inbox / "Failed" / "manifest.json.error.txt").read_text()
    assert "named like a sidecar" in reason and (inbox / "notes.txt").exists()
