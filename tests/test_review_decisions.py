"""Decisions on a rendered OUT folder (pipeline.review.decisions), on the manifest
of a real render: what approve, reject, reset and a caption edit record, two tabs
with one stale, bulk all or nothing, two processes deciding at once, a render that
ends after a decision was made, and `repurpose captions` on the same code."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import presets_dir
from PIL import Image, ImageDraw

from pipeline.clicaptions import captions
from pipeline.errors import WriteError
from pipeline.model import JobResult
from pipeline.outputs import MANIFEST, manifest_lock
from pipeline.review.decisions import (
    Conflict,
    ReviewError,
    decide,
    edit_caption,
    locked_manifest,
    review_state,
    version,
)
from pipeline.runner import Report, run

SHOOT = "brief: {title: Launch day}\ntargets: [t-square-jpeg, t-tall-png, x-image, " \
        "youtube-thumbnail]\n"
X, SQUARE, TALL = "x-image/a.jpg", "t-square-jpeg/a.jpg", "t-tall-png/a.png"
THUMB, FAILED = "youtube-thumbnail/a.jpg", "youtube-thumbnail/b.jpg"   # no caption; b too small
WAIT = 120          # seconds a test waits for the other side before it fails, not a timing


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, astronaut: Image.Image) -> Path:
    """Two masters, a.jpg and b.jpg, rendered once; each test gets a copy."""
    root = tmp_path_factory.mktemp("rendered")
    (root / "shoot").mkdir()
    astronaut.save(root / "shoot" / "a.jpg")
    astronaut.resize((300, 200)).save(root / "shoot" / "b.jpg")
    (root / "shoot" / "shoot.yaml").write_text(SHOOT)
    presets_dir(root)
    render(root)
    return root


@pytest.fixture
def root(rendered: Path, tmp_path: Path) -> Path:
    for name in ("shoot", "out", "test-presets"):
        shutil.copytree(rendered / name, tmp_path / name, symlinks=True)
    return tmp_path


def render(root: Path, **options: Any) -> Report:
    return run([root / "shoot"], root / "out", [root / "test-presets"], jobs=1, **options)


def entries(out: Path) -> dict[str, dict[str, Any]]:
    return {v["path"]: v for v in json.loads((out / MANIFEST).read_text())["variants"]}


def test_approve_reject_reset_round_trip(root: Path) -> None:
    out = root / "out"
    (done,) = decide(out, [X], "approve", "Ana")
    entry = entries(out)[X]
    assert done == entry and review_state(entry) == "approved"
    assert entry["review"] == {"status": "approved", "by": "Ana", "at": entry["review"]["at"],
                               "sha256": entry["sha256"]}
    assert entry["review"]["at"].endswith("+00:00")
    caption = entry["caption"]
    assert (caption["status"], caption["approved_by"]) == ("approved", "Ana")
    assert caption["approved_at"] == entry["review"]["at"]

    before = (out / MANIFEST).read_bytes()
    for blank in (None, "", "  \n"):
        with pytest.raises(ReviewError, match="a reason is required"):
            decide(out, [X], "reject", "Bo", reason=blank)
    assert (out / MANIFEST).read_bytes() == before

    decide(out, [X], "reject", "Bo", reason="the crop cuts the helmet")
    entry = entries(out)[X]
    assert review_state(entry) == "rejected"
    assert entry["review"]["reason"] == "the crop cuts the helmet"
    assert entry["caption"]["status"] == "rejected" and "approved_by" not in entry["caption"]

    decide(out, [X], "reset", "Cy")
    entry = entries(out)[X]
    assert "review" not in entry and review_state(entry) == "pending"
    assert entry["caption"]["status"] == "draft"

    edit_caption(out, X, "Our own words.", "Di")        # a person's words stay theirs
    decide(out, [X], "approve", "Ana")
    decide(out, [X], "reset")
    assert entries(out)[X]["caption"]["status"] == "edited"


def test_variants_without_caption_or_output(root: Path) -> None:
    out = root / "out"
    (thumb,) = decide(out, [THUMB], "approve", "Ana")
    assert review_state(thumb) == "approved" and thumb.get("caption") is None
    with pytest.raises(ReviewError, match="youtube-thumbnail/b.jpg: no output to approve"):
        decide(out, [FAILED], "approve", "Ana")
    (failed,) = decide(out, [FAILED], "reject", "Ana", reason="too small for a thumbnail")
    assert review_state(failed) == "rejected"
    with pytest.raises(ReviewError, match="no variant nope/a.jpg, ../manifest.json in it"):
        decide(out, ["nope/a.jpg", "../manifest.json"], "approve", "Ana")
    with pytest.raises(ReviewError, match="unknown action 'publish'"):
        decide(out, [X], "publish", "Ana")
    with pytest.raises(ReviewError, match="has no caption to edit"):
        edit_caption(out, THUMB, "words", "Ana")
    with pytest.raises(ReviewError, match=r"manifest.json: cannot read it .*render into .* first"):
        decide(root / "shoot", [X], "approve", "Ana")
    assert not (root / "shoot" / ".repurpose").exists()


def test_a_stale_version_is_a_conflict(root: Path) -> None:
    out = root / "out"
    seen = version(entries(out)[X])                 # both tabs load the page
    first, second = {X: seen}, {X: seen}
    decide(out, [X], "approve", "Ana", expected=first)
    before = (out / MANIFEST).read_bytes()
    with pytest.raises(Conflict, match=r"someone else changed x-image/a.jpg \(now approved, "
                                       r"by Ana at .*\) since you loaded it.*reload"):
        decide(out, [X], "reject", "Bo", reason="no", expected=second)
    with pytest.raises(Conflict, match="x-image/a.jpg"):
        edit_caption(out, X, "Bo's words.", "Bo", expected=second)
    assert (out / MANIFEST).read_bytes() == before
    assert not (out / "x-image" / "a.caption.txt").read_text().startswith("Bo's")

    fresh = {X: version(entries(out)[X])}           # the second tab reloads
    entry = edit_caption(out, X, "Bo's words.\n", "Bo", expected=fresh)
    assert version(entry) == version(entries(out)[X]) != fresh[X]
    assert entry["caption"]["edited_by"] == "Bo" and entry["caption"]["status"] == "edited"
    assert (out / "x-image" / "a.caption.txt").read_text() == "Bo's words.\n"
    decide(out, [X], "approve", "Ana", expected={X: version(entry)})


def test_bulk_is_all_or_nothing(root: Path) -> None:
    out = root / "out"
    stale = {SQUARE: version(entries(out)[SQUARE])}
    decide(out, [SQUARE], "reject", "Ana", reason="too dark")
    before = (out / MANIFEST).read_bytes()
    for paths, expected in (([X, TALL, "nope/a.jpg"], None), ([X, TALL, FAILED], None),
                            ([X, TALL, SQUARE], stale)):
        with pytest.raises(ReviewError):
            decide(out, paths, "approve", "Bo", expected=expected)
        assert (out / MANIFEST).read_bytes() == before
    done = decide(out, [X, TALL, SQUARE], "approve", "Bo")
    assert [d["path"] for d in done] == [X, TALL, SQUARE]
    assert {review_state(entries(out)[p]) for p in (X, TALL, SQUARE)} == {"approved"}


def test_an_edit_is_measured_like_the_guard_and_kept_by_a_render(root: Path) -> None:
    out = root / "out"
    long = ("Too long for X. " * 20).rstrip()
    entry = edit_caption(out, X, long, "Ana")
    assert any(f.startswith("over the platform's limit: 319 of 280 (x_weighted)")
               for f in entry["caption"]["findings"])
    short = edit_caption(out, X, "Short.", "Ana")
    assert not any("over the platform's limit" in f for f in short["caption"]["findings"])
    decide(out, [SQUARE], "reject", "Bo", reason="draft it again")
    render(root, force=True)                        # byte-stable: the same outputs
    after = entries(out)
    assert after[X]["caption"]["text"] == "Short." and after[X]["caption"]["status"] == "edited"
    assert after[SQUARE]["caption"]["status"] == "draft"         # drafted afresh
    assert review_state(after[SQUARE]) == "rejected"


def test_a_changed_output_says_changed_an_unchanged_one_stays_approved(root: Path) -> None:
    out = root / "out"
    decide(out, [X, "x-image/b.jpg"], "approve", "Ana")
    decide(out, [SQUARE], "reject", "Ana", reason="crop")
    with Image.open(root / "shoot" / "a.jpg") as image:     # a new version of master a
        changed = image.copy()
    ImageDraw.Draw(changed).rectangle((0, 0, 200, 200), fill="red")
    changed.save(root / "shoot" / "a.jpg")
    render(root)
    after = entries(out)
    assert after["x-image/b.jpg"]["status"] == "unchanged"
    assert review_state(after["x-image/b.jpg"]) == "approved"
    assert after[X]["status"] == "rendered" and review_state(after[X]) == "changed"
    assert review_state(after[SQUARE]) == "changed"
    assert after[X]["review"]["by"] == "Ana"        # who decided on what came before


def _decider(out: Path, paths: list[str], name: str, rounds: int, start: Any) -> None:
    start.wait()
    for k in range(rounds):
        for path in paths:
            decide(out, [path], "approve", f"{name}-{k}")
            if k < rounds - 1:
                decide(out, [path], "reset", name)


def test_two_processes_deciding_at_once_lose_nothing(root: Path) -> None:
    out = root / "out"
    mine = sorted(p for p, e in entries(out).items() if e["status"] != "failed")
    halves = {"a": mine[::2], "b": mine[1::2]}
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    workers = [context.Process(target=_decider, args=(out, paths, name, 6, start))
               for name, paths in halves.items()]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
        assert worker.exitcode == 0
    after = entries(out)
    for name, paths in halves.items():
        for path in paths:
            assert after[path]["review"]["by"] == f"{name}-5", path


def test_a_decision_made_while_a_render_runs_survives_its_manifest(root: Path) -> None:
    """The render (forced: every output written again, byte for byte) pauses after
    its first master, having read the manifest long before; decisions and an edit
    are made then, one on the master still to render, whose caption.txt the render
    then drafts over. Its manifest write must keep all of them."""
    out = root / "out"
    rendered, decided = threading.Event(), threading.Event()
    first: list[str] = []

    def paused(outcome: JobResult) -> None:
        if not first:
            first.extend(r.path for r in outcome.results)
            rendered.set()
            assert decided.wait(WAIT)

    worker = threading.Thread(target=render, args=(root,),
                              kwargs={"force": True, "progress": paused})
    worker.start()
    assert rendered.wait(WAIT)
    done, later = ("a", "b") if X in first else ("b", "a")
    try:
        decide(out, [f"x-image/{done}.jpg"], "approve", "Ana")
        decide(out, [f"t-square-jpeg/{done}.jpg"], "reject", "Bo", reason="crop")
        decide(out, [f"t-square-jpeg/{later}.jpg"], "approve", "Ana")
        edit_caption(out, f"x-image/{later}.jpg", "Typed during the render.", "Cy")
    finally:
        decided.set()
        worker.join(WAIT)
    after = entries(out)
    assert review_state(after[f"x-image/{done}.jpg"]) == "approved"
    assert after[f"x-image/{done}.jpg"]["caption"]["approved_by"] == "Ana"
    assert review_state(after[f"t-square-jpeg/{done}.jpg"]) == "rejected"
    assert review_state(after[f"t-square-jpeg/{later}.jpg"]) == "approved"
    edited = after[f"x-image/{later}.jpg"]["caption"]
    assert (edited["text"], edited["status"]) == ("Typed during the render.", "edited")
    txt = out / "x-image" / f"{later}.caption.txt"
    assert txt.read_text() == "Typed during the render.\n"


def test_a_render_ending_keeps_what_another_render_wrote_meanwhile(root: Path) -> None:
    """Two renders into one new OUT, of a.jpg and b.jpg: the one that read an empty
    manifest and ends last keeps the other's variants."""
    out, shoot = root / "new", root / "shoot"
    started, finished = threading.Event(), threading.Event()

    def paused(outcome: JobResult) -> None:
        started.set()
        assert finished.wait(WAIT)

    first = threading.Thread(target=run, args=([shoot / "a.jpg"], out, [root / "test-presets"]),
                             kwargs={"jobs": 1, "progress": paused})
    first.start()
    assert started.wait(WAIT)
    try:
        run([shoot / "b.jpg"], out, [root / "test-presets"], jobs=1)
    finally:
        finished.set()
        first.join(WAIT)
    made = entries(out)
    assert {p.rsplit("/", 1)[1] for p, e in made.items() if e["status"] == "rendered"} == {
        "a.jpg", "a.png", "b.jpg", "b.png"}


def test_the_lock_lives_in_a_private_folder_and_is_never_followed(root: Path) -> None:
    out = root / "out"
    state = out / ".repurpose"
    assert state.stat().st_mode & 0o777 == 0o700
    with locked_manifest(out) as body:              # unchanged: nothing written
        body["variants"] = list(body["variants"])
    shutil.rmtree(state)
    (root / "elsewhere").mkdir()
    state.symlink_to(root / "elsewhere")
    with pytest.raises(WriteError, match="is a link"):
        decide(out, [X], "approve", "Ana")
    with pytest.raises(WriteError, match="is a link"), manifest_lock(out):
        pass
    assert list((root / "elsewhere").iterdir()) == []


def test_the_captions_cli_records_what_it_did(root: Path, cli_runner: Any) -> None:
    out = root / "out"
    done = cli_runner.invoke(captions, ["approve", str(out), "--variant", X, "--by", "Ana"])
    assert done.exit_code == 0 and done.output == "1 caption approved by Ana\n"
    entry = entries(out)[X]
    assert (entry["caption"]["status"], entry["caption"]["approved_by"]) == ("approved", "Ana")
    assert entry["caption"]["approved_at"] == entry["review"]["at"]
    assert review_state(entry) == "approved" and entry["review"]["by"] == "Ana"

    done = cli_runner.invoke(captions, ["reject", str(out), "--variant", X, "--reason", " "])
    assert done.exit_code == 2 and "a reason is required" in done.output
    done = cli_runner.invoke(captions, ["reject", str(out), "--variant", X, "--variant",
                                        SQUARE, "--reason", "off brand", "--by", "Bo"])
    assert done.exit_code == 0 and done.output == "2 captions rejected by Bo\n"
    assert entries(out)[SQUARE]["review"]["reason"] == "off brand"
    done = cli_runner.invoke(captions, ["reset", str(out), "--variant", X])
    assert done.exit_code == 0 and done.output == "1 caption reset\n"
    assert review_state(entries(out)[X]) == "pending"

    done = cli_runner.invoke(captions, ["edit", str(out), TALL, "--text", "Ours.\n"])
    assert done.exit_code == 0 and done.output == f"{TALL}: caption edited\n"
    assert entries(out)[TALL]["caption"]["text"] == "Ours."
    assert (out / "t-tall-png" / "a.caption.txt").read_text() == "Ours.\n"
    done = cli_runner.invoke(captions, ["approve", str(out), "--variant", THUMB])
    assert done.exit_code == 2 and "no captioned variant youtube-thumbnail/a.jpg" in done.output
