"""The review studio serves only regular files inside OUT, named plainly: real
files, real links and real FIFOs in a temporary folder, and every traversal form
refused (pipeline.review.files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from pipeline.review.files import inside, looks_like_media, master, refusal

MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def _jpeg(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), colour).save(path, "JPEG")
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """OUT as a render leaves it, plus what a stranger or an accident could put there."""
    out = tmp_path / "OUT"
    _jpeg(out / "ig-post" / "a.jpg")
    for name in ("Café crème 🎉.jpg", "with space.png", "UPPER.JPG", "100% off.jpg",
                 "-dash.webp", "a.caption.txt", "a.txt", "a.transcript.json"):
        (out / "ig-post" / name).write_bytes(b"x")
    (out / "reel").mkdir()
    for name in ("v.mp4", "v.srt", "v.vtt", "v.mov", "v.webm"):
        (out / "reel" / name).write_bytes(MP4_HEAD)
    (out / "manifest.json").write_text("{}")
    (out / ".repurpose").mkdir()
    (out / ".repurpose" / "manifest.lock").write_bytes(b"")
    (out / "ig-post" / ".a.jpg.4242.part").write_bytes(b"x")
    (out / "ig-post" / "dir.jpg").mkdir()
    os.mkfifo(out / "reel" / "fifo.mp4")
    outside = tmp_path / "outside"
    _jpeg(outside / "secret.jpg")
    (out / "ig-post" / "evil.jpg").symlink_to(outside / "secret.jpg")
    (out / "linked").symlink_to(outside, target_is_directory=True)
    (out / "ig-post" / "inner.jpg").symlink_to("a.jpg")        # a link that stays in OUT
    _jpeg(out / "%2e%2e" / "secret.jpg")                       # a folder named so, literally
    (out / "ig-post\\a.jpg").write_bytes(b"x")                  # a name with a backslash
    return out


# Each of these names a file that exists when the path is taken naively (joined,
# normalised, decoded again, or links followed): refusing them is what matters.
EXISTING_BUT_REFUSED = {
    "dot-dot": "../outside/secret.jpg",
    "dot-dot-deeper": "ig-post/../../outside/secret.jpg",
    "dot-dot-inside": "ig-post/../ig-post/a.jpg",
    "encoded-dots-literal": "%2e%2e/secret.jpg",
    "backslash-literal-name": "ig-post\\a.jpg",
    "link-to-outside": "ig-post/evil.jpg",
    "linked-folder": "linked/secret.jpg",
    "link-inside-out": "ig-post/inner.jpg",
    "state": ".repurpose/manifest.lock",
    "manifest": "manifest.json",
    "temporary": "ig-post/.a.jpg.4242.part",
    "dot-segment": "./ig-post/a.jpg",
    "dot-segment-middle": "ig-post/./a.jpg",
    "other-text": "ig-post/a.txt",
    "transcript": "ig-post/a.transcript.json",
}
NEVER_LOOKED_UP = {
    "encoded-slash": "..%2foutside%2fsecret.jpg",
    "encoded-dots": "%2E%2E/outside/secret.jpg",
    "double-encoded": "%252e%252e/outside/secret.jpg",
    "double-encoded-slash": "..%252f..%252foutside/secret.jpg",
    "split-double-encoding": "%%32%65%%32%65/outside/secret.jpg",
    "triple-encoded": "%25252e%25252e/outside/secret.jpg",
    "encoded-backslash": "..%5coutside/secret.jpg",
    "encoded-nul": "ig-post/a.jpg%00.png",
    "backslash": "..\\outside\\secret.jpg",
    "nul": "ig-post/a.jpg\x00.png",
    "nul-middle": "ig-post/a\x00.jpg",
    "newline": "ig-post/a\n.jpg",
    "fullwidth-dots": "ig-post/\uff0e\uff0e/\uff0e\uff0e/outside/secret.jpg",
    "fullwidth-slash": "..\uff0foutside\uff0fsecret.jpg",
    "drive": "C:/Windows/win.jpg",
    "unc": "\\\\server\\share\\x.jpg",
    "empty": "",
    "double-slash": "ig-post//a.jpg",
    "trailing-slash": "ig-post/a.jpg/",
    "hidden-file": "ig-post/.hidden.jpg",
    "no-stem": "ig-post/.jpg",
    "too-deep": "/".join(["d"] * 20) + "/x.jpg",
}


@pytest.mark.parametrize("rel", EXISTING_BUT_REFUSED.values(), ids=EXISTING_BUT_REFUSED.keys())
def test_existing_files_reached_by_traversal_links_or_state_are_refused(out: Path,
                                                                         rel: str) -> None:
    assert os.path.isfile(os.path.join(out, rel)), "the test must aim at a real file"
    assert inside(out, rel) is None


@pytest.mark.parametrize("rel", NEVER_LOOKED_UP.values(), ids=NEVER_LOOKED_UP.keys())
def test_traversal_encodings_and_odd_characters_are_refused_by_their_text(out: Path,
                                                                          rel: str) -> None:
    assert refusal(rel) is not None
    assert inside(out, rel) is None


def test_absolute_paths_are_refused_even_into_out(out: Path, tmp_path: Path) -> None:
    for target in (tmp_path / "outside" / "secret.jpg", out / "ig-post" / "a.jpg",
                   out.resolve() / "ig-post" / "a.jpg"):
        assert target.is_file()
        assert inside(out, str(target)) is None
        assert refusal(str(target)) == "absolute path"


@pytest.mark.parametrize("rel", ["ig-post/dir.jpg", "reel/fifo.mp4", "reel/missing.mp4",
                                 "nowhere/a.jpg"])
def test_folders_fifos_and_missing_files_are_not_served(out: Path, rel: str) -> None:
    assert refusal(rel) is None             # fine by its text: the file itself decides
    assert inside(out, rel) is None         # and the FIFO's open never hangs: none is made


@pytest.mark.parametrize("rel", [
    "ig-post/a.jpg", "ig-post/Café crème 🎉.jpg", "ig-post/with space.png",
    "ig-post/UPPER.JPG", "ig-post/100% off.jpg", "ig-post/-dash.webp",
    "ig-post/a.caption.txt", "reel/v.mp4", "reel/v.srt", "reel/v.vtt", "reel/v.mov",
    "reel/v.webm",
])
def test_variants_and_their_sidecars_are_served_by_their_real_path(out: Path, rel: str) -> None:
    found = inside(out, rel)
    assert found == out.resolve() / rel
    assert found.is_file() and not found.is_symlink()


def test_out_itself_may_be_the_operators_link(out: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(out, target_is_directory=True)
    assert inside(alias, "ig-post/a.jpg") == out.resolve() / "ig-post" / "a.jpg"
    assert inside(alias, "ig-post/evil.jpg") is None


def test_a_folder_swapped_for_a_link_is_refused(out: Path, tmp_path: Path) -> None:
    """The check is made when asked: a folder that becomes a link is refused from then on."""
    assert inside(out, "reel/v.mp4") is not None
    (out / "reel").rename(tmp_path / "elsewhere")
    (out / "reel").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert inside(out, "reel/v.mp4") is None


# ------------------------------------------------------------------ masters


@pytest.fixture
def shoot(tmp_path: Path) -> Path:
    """A render's working folder: its masters, and OUT beside them."""
    folder = tmp_path / "work"
    _jpeg(folder / "shoot" / "m.jpg")
    (folder / "shoot" / "clip.mov").write_bytes(MP4_HEAD + bytes(100))
    (folder / "OUT").mkdir()
    return folder


def test_a_master_is_found_from_an_absolute_source_outside_out(shoot: Path) -> None:
    source = shoot / "shoot" / "m.jpg"
    assert master(shoot / "OUT", str(source)) == source.resolve()


def test_a_relative_source_is_looked_up_from_the_working_folder_then_outs_parent(
        shoot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(shoot)
    assert master(Path("OUT"), "shoot/m.jpg") == (shoot / "shoot" / "m.jpg").resolve()
    monkeypatch.chdir(tmp_path)                 # elsewhere: OUT's parent is the next guess
    assert master(shoot / "OUT", "shoot/clip.mov") == (shoot / "shoot" / "clip.mov").resolve()
    assert master(shoot / "OUT", "m.jpg") is None
    assert master(shoot / "OUT", "m.jpg", bases=[shoot / "shoot"]) == (
        shoot / "shoot" / "m.jpg").resolve()
    assert master(shoot / "OUT", "../shoot/m.jpg", bases=[shoot / "shoot"]) == (
        shoot / "shoot" / "m.jpg").resolve()


def test_a_master_is_refused_unless_a_regular_photo_or_video(shoot: Path) -> None:
    folder = shoot / "shoot"
    (folder / "link.jpg").symlink_to(folder / "m.jpg")
    (folder / "notes.jpg").write_text("not a picture\n")
    (folder / "sidecar.json").write_bytes((folder / "m.jpg").read_bytes())
    _jpeg(folder / ".private" / "m.jpg")
    (folder / "folder.jpg").mkdir()
    os.mkfifo(folder / "pipe.mp4")
    for name in ("link.jpg", "notes.jpg", "sidecar.json", ".private/m.jpg", "folder.jpg",
                 "pipe.mp4", "missing.jpg"):
        assert master(shoot / "OUT", str(folder / name)) is None, name
    for source in ("/etc/passwd", "/dev/zero", "shoot/m.jpg\x00", "", "shoot/m\n.jpg"):
        assert master(shoot / "OUT", source, bases=[shoot]) is None, repr(source)


def test_media_is_told_by_its_first_bytes() -> None:
    assert looks_like_media(b"\xff\xd8\xff\xe0" + bytes(60))
    assert looks_like_media(MP4_HEAD)
    assert looks_like_media(b"RIFF\x00\x00\x00\x00AVI LIST")
    assert looks_like_media(b"\x1a\x45\xdf\xa3" + bytes(60))
    assert looks_like_media((b"\x47" + bytes(187)) * 3)         # MPEG-TS
    assert not looks_like_media(b"root:x:0:0:root:/root:/bin/bash\n")
    assert not looks_like_media(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    assert not looks_like_media(b"")
