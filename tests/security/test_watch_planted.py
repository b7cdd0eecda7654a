"""What a stranger may plant or learn through the watch inbox: a ledger of their
own making (refused, never run), the operator's paths (never shown: labels are
relative to the inbox), and the same-content shortcut (taken only where the
same shoot.yaml governs the same folder). Real CLI in subprocesses, real
SQLite files."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from PIL import Image

from pipeline.watch import Watcher

FILES = ("create table files (path text primary key, size integer, mtime real, sha256 text, "
         "state text, attempts integer default 0, error text, updated text, "
         "retry_at real default 0);")


def make_inbox(tmp_path: Path, shoot: str = "targets: [x-image]\n") -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "shoot.yaml").write_text(shoot)
    return inbox


def photo(path: Path, colour: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (1200, 900), colour).save(path, "JPEG")
    return path


def watch_once(inbox: Path, *args: str | Path):  # type: ignore[no-untyped-def]
    return run_cli("watch", inbox, "--once", "--settle", "0.2", *args)


def plant(inbox: Path, sql: str | None, raw: bytes = b"") -> Path:
    (inbox / ".repurpose").mkdir(mode=0o700)
    ledger = inbox / ".repurpose" / "ledger.db"
    if sql is None:
        ledger.write_bytes(raw)
    else:
        with sqlite3.connect(ledger) as db:
            db.executescript(sql)
    return ledger


# ------------------------------------------------------------------------- M9: the ledger


@pytest.mark.parametrize("what,sql", [
    ("another shape", "create table files (path text primary key, state text);"),
    ("a trigger", FILES + "create trigger fill after insert on files begin insert into "
                          "files (path) values (zeroblob(1000000000)); end;"),
    ("a view", FILES + "create view everything as select * from files;"),
    ("another table", FILES + "create table extra (x);"),
    ("an index on an expression", FILES + "create index big on files (length(path || "
                                          "zeroblob(1000)));"),
    ("a default that writes", FILES.replace("size integer", "size integer default "
                                                             "(zeroblob(1000000000))")),
    ("not a database", None),
])
def test_a_planted_ledger_is_refused_in_one_line_and_never_run(tmp_path, what, sql):
    inbox = make_inbox(tmp_path)
    photo(inbox / "a.jpg")
    ledger = plant(inbox, sql, b"not a ledger at all " * 100)
    size = ledger.stat().st_size
    for args in (["--once"], ["--status"], ["--retry-failed"]):
        refused = run_cli("watch", inbox, *args)
        assert refused.returncode == 2, (what, args, refused.stderr)
        (line,) = refused.stderr.splitlines()
        assert f"{ledger} is not a ledger of this watcher" in line, line
        assert "move it away" in line
    assert ledger.stat().st_size == size and (inbox / "a.jpg").exists()


def test_ledgers_of_every_version_open_and_are_brought_to_the_last(tmp_path):
    from pipeline.watch import Ledger

    for version, sql in enumerate([FILES, FILES + "alter table files add column moved_to "
                                   "text; create table failures (id integer primary key, "
                                   "path text not null, moved_to text not null, error text, "
                                   "at text); pragma user_version = 1;"]):
        folder = tmp_path / f"v{version}"
        folder.mkdir()
        plant(folder, sql)
        ledger = Ledger(folder)
        assert ledger.db.execute("pragma user_version").fetchone()[0] == 2
        ledger.set("a.jpg", state="done", sha256="d", context="c")
        assert ledger.done_with("d", "c") and not ledger.done_with("d", "other")
        Ledger(folder)                                      # and open again as ours


def test_a_ledger_damaged_under_the_watcher_pauses_it_without_a_traceback(tmp_path, capsys):
    inbox = make_inbox(tmp_path)
    photo(inbox / "a.jpg")
    watcher = Watcher(inbox, None, [], settle=0, jobs=1)
    with sqlite3.connect(inbox / ".repurpose" / "ledger.db") as db:
        db.execute("drop table files")
    watcher.take(inbox / "a.jpg")
    watcher.paused_until = 0
    watcher.step()
    said = capsys.readouterr().err
    assert "a.jpg: cannot read the ledger" in said and "no such table" in said, said
    assert "move it away" in said and said.count("pausing") == 2
    assert (inbox / "a.jpg").exists()


# ------------------------------------------------------------------------- L4: labels


def speech_config(tmp_path: Path) -> Path:
    """An operator config whose speech-to-text is a small program: one cue."""
    tool = tmp_path / "asr.py"
    tool.write_text("import json\nprint(json.dumps({'segments': [{'start': 0.2, 'end': 1.5, "
                    "'text': 'Hello there.', 'words': []}]}))\n")
    config = tmp_path / "operator.yaml"
    config.write_text(f"speech: {{provider: command, command: [{sys.executable}, {tool}]}}\n")
    return config


@pytest.mark.slow
def test_nothing_a_stranger_reads_names_the_operators_paths(tmp_path):
    inbox = make_inbox(tmp_path)
    photo(inbox / "sub" / "photo.jpg")
    (inbox / "broken.jpg").write_text("not an image")
    photo(inbox / "bad" / "b.jpg")
    (inbox / "bad" / "shoot.yaml").write_text("targets: [x-image]\nspeech: {provider: "
                                              "command, command: [evil]}\n")
    (inbox / "talk").mkdir()
    (inbox / "talk" / "shoot.yaml").write_text("targets: [instagram-reel]\n")
    shutil.copy(ROOT / "samples" / "shoot" / "clip.mp4", inbox / "talk" / "clip.mp4")
    done = watch_once(inbox, "--config", speech_config(tmp_path), "--jobs", "1")
    assert done.returncode == 1, done.stderr                   # broken.jpg and bad/b.jpg
    shown = [p for folder in ("Output", "Failed") for p in (inbox / folder).rglob("*")
             if p.is_file() and p.suffix in (".json", ".txt")]
    assert {p.name for p in shown} >= {"manifest.json", "clip.transcript.json",
                                       "broken.jpg.error.txt", "b.jpg.error.txt"}
    for path in shown:
        assert str(tmp_path) not in path.read_text(), path
    body = json.loads((inbox / "Output" / "sub" / "manifest.json").read_text())
    assert {v["source"] for v in body["variants"]} == {"sub/photo.jpg"}
    assert {v["plan"]["source"] for v in body["variants"]} == {"sub/photo.jpg"}
    script = json.loads((inbox / "Output" / "talk" / "clip.transcript.json").read_text())
    assert script["source"] == "talk/clip.mp4" and script["cues"][0]["text"] == "Hello there."
    bad = json.loads((inbox / "Output" / "bad" / "manifest.json").read_text())
    assert bad["errors"][0]["error"].startswith("bad/shoot.yaml:2: speech.provider")


@pytest.mark.slow
def test_manifests_labelled_by_an_earlier_version_are_relabelled_and_names_kept(tmp_path):
    inbox = make_inbox(tmp_path)
    photo(inbox / "sub" / "a.jpg", "red")
    assert watch_once(inbox).returncode == 0
    manifest = inbox / "Output" / "sub" / "manifest.json"
    body = json.loads(manifest.read_text())
    for variant in body["variants"]:        # as earlier versions wrote it
        variant["source"] = variant["plan"]["source"] = str(inbox / "sub" / "a.jpg")
    manifest.write_text(json.dumps(body))
    photo(inbox / "sub" / "a.jpg", "blue")  # saved again: rendered again, under its name
    again = watch_once(inbox)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in (inbox / "Output" / "sub" / "x-image").glob("*.jpg")] == ["a.jpg"]
    assert str(tmp_path) not in manifest.read_text()


# ------------------------------------------------------------------------- L7: same content


@pytest.mark.slow
def test_the_same_content_is_taken_for_rendered_only_under_the_same_shoot(tmp_path):
    inbox = make_inbox(tmp_path)
    first = photo(inbox / "a.jpg")
    done = watch_once(inbox)
    assert done.returncode == 0, done.stderr
    rendered = (inbox / "Source" / "a.jpg").read_bytes()
    drops = {"copy.jpg": "", "sub/a.jpg": "targets: [instagram-feed-square]\n",
             "plain/a.jpg": None, "refused/a.jpg": "speech: {provider: command, command: [x]}\n"}
    for name, shoot in drops.items():
        (inbox / name).parent.mkdir(exist_ok=True)
        (inbox / name).write_bytes(rendered)
        if shoot:
            (inbox / name).with_name("shoot.yaml").write_text(shoot)
    again = watch_once(inbox)
    assert again.returncode == 1, again.stderr                 # refused/a.jpg
    assert again.stderr.count("same content as a file already rendered") == 1
    assert "copy.jpg: same content" in again.stderr            # the same folder and shoot
    assert (inbox / "Output" / "sub" / "instagram-feed-square" / "a.jpg").is_file()
    assert (inbox / "Output" / "plain" / "x-image" / "a.jpg").is_file()
    assert (inbox / "Failed" / "refused" / "a.jpg").is_file()
    assert "speech.provider" in (inbox / "Failed" / "refused" / "a.jpg.error.txt").read_text()
    (inbox / "shoot.yaml").write_text("targets: [x-image, pinterest-pin]\n")   # a new shoot
    first.write_bytes(rendered)
    third = watch_once(inbox)
    assert third.returncode == 0, third.stderr
    assert "same content" not in third.stderr
    assert (inbox / "Output" / "pinterest-pin" / "a.jpg").is_file()
