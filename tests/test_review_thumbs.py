"""Thumbnails for the review studio: real photos and a real video made here,
decoded back and measured; made once, made again when the file changes, and a
damaged file named in a clear error (pipeline.review.thumbs)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from media import exif_with, quadrants, truncate
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile
from videomedia import make_video

from pipeline.errors import InputError, WriteError
from pipeline.review.thumbs import THUMBS, fit, thumbnail, thumbnails

H264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"]


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6000x4000 camera-sized JPEG of noise (nothing for the encoder to save)."""
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    Image.merge("RGB", [Image.effect_noise((6000, 4000), 24) for _ in range(3)]).save(
        path, quality=90)
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "OUT"
    (folder / "p").mkdir(parents=True)
    return folder


def _decoded(path: Path) -> Image.Image:
    with Image.open(path) as image:
        assert image.format == "JPEG"
        image.load()
        return image.convert("RGB")


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, colour, strict=True))


def test_a_camera_jpeg_is_decoded_at_a_reduced_scale(out: Path, big_jpeg: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int]] = []
    draft = JpegImageFile.draft

    def spy(self: JpegImageFile, mode: str | None, size: tuple[int, int] | None,
            ) -> object:
        asked.append(size or (0, 0))
        return draft(self, mode, size)

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    made = thumbnail(out, big_jpeg)
    assert asked == [(480, 320)]
    assert _decoded(made).size == (480, 320)
    assert made.parent == out / ".repurpose" / "thumbs"
    assert stat.S_IMODE(made.parent.stat().st_mode) == 0o700


def test_transparency_shows_as_a_light_checkerboard(out: Path) -> None:
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    image.paste((220, 20, 20, 255), (0, 0, 100, 100))
    image.save(out / "p" / "alpha.png")
    thumb = _decoded(thumbnail(out, out / "p" / "alpha.png"))
    assert thumb.size == (200, 100)                 # never enlarged to 480
    assert _near(thumb.getpixel((30, 50)), (220, 20, 20))
    clear = np.asarray(thumb)[10:90, 110:190].astype(int)
    assert clear.min() >= 200, "transparent pixels are light, not black"
    assert np.ptp(clear.mean(axis=2)) >= 15, "and show a pattern, not one flat colour"


def test_a_cmyk_jpeg_comes_out_rgb_with_its_colour(out: Path) -> None:
    Image.new("CMYK", (300, 200), (0, 255, 255, 0)).save(out / "p" / "cmyk.jpg", quality=95)
    thumb = _decoded(thumbnail(out, out / "p" / "cmyk.jpg", width=150))
    assert thumb.size == (150, 100)
    assert _near(thumb.getpixel((75, 50)), (255, 0, 0), tol=60)


def test_exif_orientation_turns_the_thumbnail_upright(out: Path) -> None:
    """Stored 600x400 with orientation 6 (turn 90 degrees clockwise to view): the
    viewer sees 400x600 with the stored top-left (red) at the top right."""
    quadrants(600, 400).save(out / "p" / "turned.jpg", exif=exif_with(orientation=6),
                             quality=95)
    thumb = _decoded(thumbnail(out, out / "p" / "turned.jpg", width=200))
    assert thumb.size == (200, 300)
    corners = {"top-left": (50, 75), "top-right": (150, 75), "bottom-left": (50, 225),
               "bottom-right": (150, 225)}
    seen = {name: thumb.getpixel(xy) for name, xy in corners.items()}
    assert _near(seen["top-right"], (255, 0, 0)), seen
    assert _near(seen["top-left"], (0, 0, 255)), seen
    assert _near(seen["bottom-right"], (0, 255, 0)), seen
    assert _near(seen["bottom-left"], (255, 255, 255)), seen


def test_a_very_tall_picture_is_capped_at_four_widths() -> None:
    assert fit(6000, 4000, 480) == (480, 320)
    assert fit(50, 2000, 100) == (10, 400)
    assert fit(100, 50, 480) == (100, 50)
    assert fit(20000, 1, 480) == (480, 1)


def test_a_video_gives_one_frame_at_its_display_shape(out: Path) -> None:
    clip = make_video(out / "p" / "clip.mp4", *H264, seconds=2, audio=False)
    thumb = _decoded(thumbnail(out, clip, width=160))
    assert thumb.size == (160, 120)
    assert np.asarray(thumb).std() > 20, "a picture, not a black frame"
    # Pixels twice as wide as tall (anamorphic): shown 320x240, not 160x240.
    squeezed = make_video(out / "p" / "wide.mov", "-vf", "setsar=2", *H264, seconds=1,
                          size="160x240", audio=False)
    assert _decoded(thumbnail(out, squeezed)).size == (320, 240)


def test_a_thumbnail_is_made_once(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quadrants(640, 480).save(out / "p" / "a.jpg")
    first = thumbnail(out, out / "p" / "a.jpg")
    before = first.stat()
    monkeypatch.setattr("pipeline.review.thumbs._picture",
                        lambda *_: pytest.fail("made again"))
    again = thumbnail(out, out / "p" / "a.jpg")
    after = again.stat()
    assert again == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_changed_file_gets_a_new_thumbnail_and_the_old_one_goes(out: Path) -> None:
    source = out / "p" / "a.png"
    Image.new("RGB", (64, 64), (250, 0, 0)).save(source)
    old = thumbnail(out, source)
    seen = source.stat()
    Image.new("RGB", (64, 64), (0, 0, 250)).save(source)        # same size in bytes, maybe
    os.utime(source, ns=(seen.st_atime_ns, seen.st_mtime_ns + 1_000_000_000))
    new = thumbnail(out, source)
    assert new != old and not old.exists()
    assert _near(_decoded(new).getpixel((32, 32)), (0, 0, 250))
    assert sorted(p.name for p in new.parent.iterdir()) == [new.name]
    other_width = thumbnail(out, source, width=32)              # widths are kept apart
    assert new.exists() and other_width != new


def test_damaged_files_raise_input_errors_naming_them(out: Path, big_jpeg: Path) -> None:
    cut = out / "p" / "cut.jpg"
    cut.write_bytes(big_jpeg.read_bytes())
    truncate(cut, 0.3)
    (out / "p" / "text.jpg").write_text("hello\n")
    (out / "p" / "junk.mp4").write_bytes(os.urandom(4096))
    (out / "p" / "empty.png").write_bytes(b"")
    for name in ("cut.jpg", "text.jpg", "junk.mp4", "empty.png"):
        with pytest.raises(InputError) as caught:
            thumbnail(out, out / "p" / name)
        assert caught.value.path == f"p/{name}"
        assert f"p/{name}" in str(caught.value) and "render it again" in str(caught.value)
    assert list((out / ".repurpose" / "thumbs").iterdir()) == []


def test_a_link_is_no_file_to_thumbnail(out: Path) -> None:
    Image.new("RGB", (8, 8)).save(out / "p" / "a.png")
    (out / "p" / "link.png").symlink_to("a.png")
    with pytest.raises(InputError, match="not a regular file"):
        thumbnail(out, out / "p" / "link.png")


def test_a_master_outside_out_is_named_in_full(out: Path, tmp_path: Path) -> None:
    master = tmp_path / "shoot" / "m.jpg"
    master.parent.mkdir()
    quadrants(300, 200).save(master)
    assert _decoded(thumbnail(out, master)).size == (300, 200)
    master.write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(InputError) as caught:
        thumbnail(out, master)
    assert caught.value.path == str(master) and "export or copy it again" in str(caught.value)


def test_the_cache_folder_is_never_reached_through_a_link(out: Path, tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(out / "p" / "a.png")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / ".repurpose").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(WriteError, match="link"):
        thumbnail(out, out / "p" / "a.png")
    assert list(elsewhere.iterdir()) == []
    (out / ".repurpose").unlink()
    (out / ".repurpose").mkdir()
    (out / ".repurpose" / "thumbs").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(WriteError, match="link"):
        thumbnail(out, out / "p" / "a.png")
    assert list(elsewhere.iterdir()) == []


def test_many_are_made_at_once_and_one_damaged_file_stops_none(out: Path) -> None:
    files = []
    for n in range(6):
        Image.new("RGB", (120, 90), (40 * n, 100, 200)).save(out / "p" / f"{n}.jpg")
        files.append(out / "p" / f"{n}.jpg")
    (out / "p" / "bad.jpg").write_text("nope")
    made = thumbnails(out, [*files, out / "p" / "bad.jpg", files[0]], jobs=3)
    assert list(made) == [*files, out / "p" / "bad.jpg"]
    assert isinstance(made[out / "p" / "bad.jpg"], InputError)
    for file in files:
        thumb = made[file]
        assert isinstance(thumb, Path) and _decoded(thumb).size == (120, 90)
    assert len(list(out.joinpath(*THUMBS).iterdir())) == len(files)
    assert thumbnails(out, []) == {}
