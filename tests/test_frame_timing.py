"""Frame timing (issue 11, item 7): outputs last their kept range, at the
constant frame rate their preset asks for, and the probe does not take a
constant rate with B-frames for a variable one. Real encodes of generated
masters, decoded and measured."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from videomedia import ffmpeg_exe
from videotiming import SMALL, assert_lasts, encode, info, presets, render

from pipeline.presets import load_catalog
from pipeline.runner import run

# -- constant frame rate ----------------------------------------------------------------

def b_frames(count: int, keyint: int) -> list[str]:
    """x264 with `count` B-frames in a fixed pattern: in decode order every reference
    frame comes before the frames shown ahead of it."""
    return ["-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p", "-x264-params",
            f"bframes={count}:b-adapt=0:b-pyramid=none:scenecut=0:keyint={keyint}"]


@pytest.mark.parametrize("count,keyint,ext", [(1, 250, "mp4"), (2, 1000, "mp4"), (3, 250, "mp4"),
                                              (3, 1000, "mp4"), (3, 300, "mp4"), (3, 250, "mkv")])
def test_constant_rate_with_b_frames_is_not_taken_for_variable(tmp_path, count, keyint, ext):
    """The probe samples the first 600 packets; with B-frames the last of them may be a
    reference frame whose neighbours in display order were not read yet."""
    made = encode(tmp_path / f"b.{ext}", "testsrc2=s=64x48:r=30:d=21", *b_frames(count, keyint))
    probed = info(made)
    assert probed.fps == 30 and not probed.variable_fps


# -- outputs last the kept range, at a constant rate -------------------------------------

def vfr_master(out: Path) -> Path:
    """6.00 s of sound under a variable frame rate picture whose last frame ends at
    5.867 s: 30 fps for 0.8 s, then every fifth frame (6 fps)."""
    return encode(out, "testsrc2=s=320x240:r=30:d=6", "-vf", "select='lt(n,25)+not(mod(n,5))'",
                  "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast",
                  "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "48000",
                  audio="sine=f=440:d=6:r=48000")


def test_variable_frame_rate_master_keeps_its_last_moment(tmp_path):
    master = vfr_master(tmp_path / "vfr.mp4")
    probed = info(master)
    assert probed.variable_fps and probed.duration_ms == 6000 and probed.picture_ms < 5900
    report, out = render(tmp_path, [master], SMALL, ["t-wide", "t-tall"])
    assert not report.errors, report.errors
    for result in report.results:
        assert result.plan["segments"] == [[0, 6000]]
        assert_lasts(out / result.path, 6000, Fraction(result.plan["fps"]))


def test_cut_ranges_last_their_length_at_any_rate(tmp_path):
    """A 25 fps master into 30 fps parts whose ends fall between the master's frames."""
    master = encode(tmp_path / "m.mp4", "testsrc2=s=320x240:r=25:d=5.1", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    audio="sine=f=440:d=5.1")
    text = SMALL + """\
- id: t-split
  extends: t-tall
  duration: {min: 1, max: 1.75, recommended_max: 1.75}
  cut: split
"""
    report, out = render(tmp_path, [master], text, ["t-split"])
    assert not report.errors, report.errors
    assert len(report.results) == 3
    for result in report.results:
        (start, end), = result.plan["segments"]
        assert_lasts(out / result.path, end - start, Fraction(30))


@pytest.mark.slow
def test_low_frame_rate_long_master_gets_constant_rate_reels_and_stories(tmp_path):
    """15 fps for 75 s, enlarged: the reel is raised to 30 fps, the story to 23 fps and
    cut to its 60 s, both encoded with B-frames (x264's default preset)."""
    master = encode(tmp_path / "low.mp4", "testsrc2=s=256x144:r=15:d=75", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    audio="sine=f=440:d=75")
    text = """\
- id: t-reel
  extends: instagram-reel
  size: [180, 320]
  max_upscale: 16
- id: t-story
  extends: instagram-story-video
  size: [180, 320]
  max_upscale: 16
"""
    report, out = render(tmp_path, [master], text, ["t-reel", "t-story"])
    assert not report.errors, report.errors
    made = {r.preset: r for r in report.results}
    assert_lasts(out / made["t-reel"].path, 75_000, Fraction(30))
    assert_lasts(out / made["t-story"].path, 60_000, Fraction(23))
    assert all(c.ok for r in made.values() for c in r.checks)


def scaled_builtins() -> str:
    """Every built-in video preset at a fifth of its size, with its own encoder settings."""
    catalog = load_catalog()
    lines = []
    for pid in catalog.ids():
        preset = catalog.get(pid)
        if preset.media == "video":
            width, height = preset.size
            lines.append(f"- id: s-{pid}\n  extends: {pid}\n"
                         f"  size: [{width // 5}, {height // 5}]\n")
    return "".join(lines)


@pytest.mark.slow
def test_plain_30fps_master_into_every_builtin_video_preset(tmp_path):
    master = encode(tmp_path / "plain.mp4", "testsrc2=s=384x216:r=30:d=21", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    audio="sine=f=440:d=21")
    text = scaled_builtins()
    ids = [line.split(": ")[1] for line in text.splitlines() if line.startswith("- id: ")]
    assert len(ids) >= 12
    report, out = render(tmp_path, [master], text, ids)
    assert not report.errors, report.errors
    assert sorted(r.preset for r in report.results) == sorted(ids)
    for result in report.results:
        (start, end), = result.plan["segments"]
        assert_lasts(out / result.path, end - start, Fraction(result.plan["fps"]))


@pytest.mark.slow
def test_cuts_from_a_shared_encode_with_b_frames_keep_a_constant_rate(tmp_path):
    """A 2.5 s head of the same picture as a 22 s variant is cut from its packets."""
    from videomedia import make_story

    master = make_story(tmp_path / "story.mp4", [
        ("color=c=gray", "sine=f=220", 9), ("testsrc2", "sine=f=440", 4),
        ("color=c=navy", "sine=f=330", 9)])
    text = """\
- id: t-long
  extends: instagram-reel
  size: [180, 320]
  max_upscale: 8
- id: t-short
  extends: t-long
  duration: {min: 1, max: 2.5, recommended_max: 2.5}
"""
    report, out = render(tmp_path, [master], text, ["t-long", "t-short"])
    assert not report.errors, report.errors
    made = {r.preset: out / r.path for r in report.results}
    assert_lasts(made["t-long"], 22_000, Fraction(30))
    assert_lasts(made["t-short"], 2500, Fraction(30))
    with av.open(str(made["t-long"])) as long, av.open(str(made["t-short"])) as short:
        pairs = zip(long.decode(video=0), short.decode(video=0), strict=False)
        assert all(np.array_equal(a.to_ndarray(format="gray"), b.to_ndarray(format="gray"))
                   for a, b in pairs)                      # copied packets, not an encode


def face_clip(out: Path, head, size: tuple[int, int], *args: str, seconds: float = 4,
              rate: int = 30) -> Path:
    """A head crossing a gradient, down and to the right, as `size` pictures piped to
    ffmpeg (`args` say how they are encoded)."""
    from PIL import Image

    width, height = size
    ramp = np.linspace(70, 190, width, dtype=np.uint8)
    back = Image.fromarray(np.dstack([np.tile(ramp, (height, 1))] * 3))
    tall = round(height * 0.55)
    face = head.crop((140, 20, 330, 240))
    face = face.resize((round(tall * face.width / face.height), tall))
    encoder = subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
         f"{width}x{height}", "-r", str(rate), "-i", "-", *args, str(out)],
        stdin=subprocess.PIPE)
    assert encoder.stdin is not None
    frames = round(seconds * rate)
    for n in range(frames):
        u = n / max(frames - 1, 1)
        frame = back.copy()
        frame.paste(face, (round((0.05 + 0.6 * u) * width), round(height * (0.35 - 0.3 * u))))
        encoder.stdin.write(frame.tobytes())
    encoder.stdin.close()
    assert encoder.wait() == 0
    return out


def small_builtins(tmp_path: Path) -> tuple[str, list[str]]:
    text = scaled_builtins().replace("]\n", "]\n  speed: ultrafast\n")
    return text, [line.split(": ")[1] for line in text.splitlines() if line.startswith("- id:")]


ODD = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"]     # 4:2:0 needs even
ANAMORPHIC = ["-vf", "scale=176:144,setsar=193/176", "-c:v", "libx264", "-preset", "ultrafast",
              "-pix_fmt", "yuv420p"]                 # QCIF pixels shown 193x144


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["odd", "anamorphic"])
def test_small_odd_and_anamorphic_footage_renders_every_variant(tmp_path, astronaut, kind):
    """A 193x144 clip without sound (the classic "carphone" sequence's size), as odd
    square pixels or as 176x144 pixels shown wider: every variant is rendered, the
    moving crop windows included."""
    args = ODD if kind == "odd" else ANAMORPHIC
    master = face_clip(tmp_path / "carphone.mp4", astronaut, (193, 144), *args)
    probed = info(master)
    assert (probed.width, probed.height) == (193, 144) and not probed.audio
    text, ids = small_builtins(tmp_path)
    report, out = render(tmp_path, [master], text, ids)
    assert not report.errors, report.errors
    assert sorted(r.preset for r in report.results) == sorted(ids)
    assert any(r.plan["path"] for r in report.results)           # a camera that moves
    for result in report.results:
        assert_lasts(out / result.path, 4000, Fraction(result.plan["fps"]), audio=False)


@pytest.mark.slow
def test_anamorphic_master_is_cropped_where_its_square_twin_is(tmp_path, astronaut):
    """The same window of the display picture, whatever the master's pixel shape."""
    pictures = {}
    for name, args in (("square", ODD), ("wide", ANAMORPHIC)):
        shoot, out = tmp_path / name, tmp_path / f"out-{name}"
        shoot.mkdir()
        out.mkdir()
        face_clip(shoot / "clip.mp4", astronaut, (193, 144), *args, seconds=3.2)
        (shoot / "shoot.yaml").write_text("sources:\n  clip.mp4: {focus: [0.5, 0.9]}\n")
        report = run([shoot], out, [presets(tmp_path, SMALL)], ["t-wide", "t-tall"], jobs=1)
        assert not report.errors, report.errors
        for result in report.results:
            with av.open(str(out / result.path)) as container:
                frame = next(iter(container.decode(video=0)))
                pictures[name, result.preset] = frame.to_ndarray(format="rgb24")
    for preset in ("t-wide", "t-tall"):
        a, b = pictures["square", preset].astype(float), pictures["wide", preset].astype(float)
        assert np.abs(a - b).mean() < 8, (preset, np.abs(a - b).mean())
        assert np.abs(a - b[:, ::-1]).mean() > 20                     # the comparison can fail
