"""Subtitles: sources, retiming through cuts, layout with real font metrics,
glyph coverage, burn-in inside the safe area and sidecar files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageFont
from test_render_video import frame_at, render
from videomedia import ffmpeg_exe

from pipeline.subtitles.cues import Cue, Word
from pipeline.subtitles.files import missing_glyphs
from pipeline.subtitles.layout import FONTS, MAX_CHARS, frame_of, layout, styles
from pipeline.subtitles.retime import retime
from pipeline.subtitles.sources import find_sidecar, load_cues

LONG = ("Hello from the launch pad, this is a rather long line that needs wrapping "
        "across several lines before it can be read")


def test_retime_follows_kept_segments_and_clips_at_cuts():
    cues = [Cue(500, 1500, "a"), Cue(1800, 2600, "b", (Word(1800, 2100, "b"),)),
            Cue(2950, 3100, "c"), Cue(4000, 5000, "d")]
    # Keep 1-2.4 s and 4.2-6 s: "a" and "b" are clipped at the cuts, "c" is gone,
    # "d" starts its segment at 1.4 s of the variant.
    out = retime(cues, [(1000, 2400), (4200, 6000)])
    assert [(c.start, c.end, c.text) for c in out] == [
        (0, 500, "a"), (800, 1400, "b"), (1400, 2200, "d")]
    assert out[1].words == (Word(800, 1100, "b"),)
    # A split part is its own variant: its cues start at zero.
    assert retime([Cue(1950, 2300, "x")], [(2000, 4000)]) == [Cue(0, 300, "x")]


@pytest.mark.parametrize("size,safe", [((1080, 1920), (0.14, 0.35, 0.06, 0.06)),
                                       ((1920, 1080), (0, 0, 0, 0)), ((1080, 1080), (0,) * 4)])
@pytest.mark.parametrize("name", ["lower-third", "bold-social", "karaoke"])
def test_lines_fit_the_frame_with_the_real_font(size, safe, name):
    style = styles()[name]
    frame = frame_of(size, safe)
    out = layout([Cue(0, 6000, LONG)], style, frame, 10_000)
    font = ImageFont.truetype(str(style.font_path), round(style.size * size[1]))
    room = frame.right - frame.left
    assert " ".join(c.text.replace("\n", " ") for c in out) == LONG
    for cue in out:
        lines = cue.text.split("\n")
        assert len(lines) <= 2 and all(len(line) <= MAX_CHARS for line in lines)
        assert all(font.getlength(line) <= room for line in lines)
    assert out[0].start == 0 and out[-1].end == 6000
    assert all(a.end <= b.start for a, b in zip(out, out[1:], strict=False))


def test_short_cues_last_long_enough_to_read_or_join_the_next():
    frame = frame_of((1920, 1080), (0, 0, 0, 0))
    style = styles()["lower-third"]
    out = layout([Cue(0, 200, "Hi"), Cue(3000, 3300, "A much longer sentence to read")],
                 style, frame, 10_000)
    assert out[0].duration >= 700                         # lengthened into the gap
    assert out[1].duration >= 30 * 1000 / 20              # 20 characters per second at most
    joined = layout([Cue(0, 300, "Yes."), Cue(320, 2000, "We did it.")], style, frame, 9000)
    assert [c.text for c in joined] == ["Yes. We did it."]


def test_glyphs_the_font_cannot_draw_are_named():
    font = FONTS / "DejaVuSans.ttf"
    assert missing_glyphs([Cue(0, 1, "Árvíztűrő tükörfúrógép")], font) == []
    assert missing_glyphs([Cue(0, 1, "launch 🦄 day")], font) == [
        "U+1F984 UNICORN FACE (🦄)"]


def test_sidecar_lookup_prefers_the_exact_name(tmp_path):
    master = tmp_path / "clip.mp4"
    master.write_bytes(b"")
    (tmp_path / "clip.en.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nEnglish\n")
    assert find_sidecar(master) == tmp_path / "clip.en.srt"
    (tmp_path / "clip.vtt").write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nExact\n")
    assert find_sidecar(master) == tmp_path / "clip.vtt"
    (cue,) = load_cues(tmp_path / "clip.vtt", "clip.mp4")
    assert (cue.start, cue.end, cue.text) == (1000, 2500, "Exact")
    (tmp_path / "clipper.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nNo\n")
    (tmp_path / "clip.vtt").unlink()
    assert find_sidecar(master) == tmp_path / "clip.en.srt"


def flash_master(path: Path, seconds: float, flashes: list[float]) -> Path:
    """Grey video with one white frame at each flash time (30 fps) and a tone."""
    enable = "+".join(f"between(n,{round(t * 30)},{round(t * 30)})" for t in flashes)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"color=c=gray:s=320x240:r=30:d={seconds}", "-f", "lavfi", "-i",
                    f"sine=f=300:d={seconds}", "-vf",
                    f"drawbox=c=white:t=fill:enable='{enable}'", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    str(path)], check=True)
    return path


def srt(cues: list[tuple[float, float, str]]) -> str:
    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02}:{ms // 60000 % 60:02}:{ms // 1000 % 60:02},{ms % 1000:03}"
    return "".join(f"{n}\n{stamp(a)} --> {stamp(b)}\n{text}\n\n"
                   for n, (a, b, text) in enumerate(cues, 1))


def flashes_in(path: Path) -> list[float]:
    import av

    with av.open(str(path)) as container:
        return [round(float(f.time), 3) for f in container.decode(video=0)
                if f.to_ndarray(format="gray").mean() > 200]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["tv-split", "tv-best"])
def test_cues_stay_on_their_flash_in_every_part(tmp_path, monkeypatch, preset):
    monkeypatch.setenv("REPURPOSE_CACHE", str(tmp_path / "cache"))
    master = flash_master(tmp_path / "clip.mp4", 6, [0.9, 2.5, 4.3])
    (tmp_path / "clip.srt").write_text(srt([(0.9, 1.6, "one"), (2.5, 3.3, "two"),
                                            (4.3, 5.0, "three")]))
    report = render(tmp_path, master, preset)
    assert not report.errors, report.errors
    for result in report.results:
        made = tmp_path / "out" / result.path
        caption = made.with_suffix(".srt")
        assert caption.exists()                        # X takes caption files: a sidecar
        starts = [c.start / 1000 for c in load_cues(caption, "x")]
        flashes = flashes_in(made)
        assert flashes, result.path
        for flash in flashes:                          # every flash has its cue, within a frame
            assert min(abs(flash - s) for s in starts) <= 1 / 30 + 1e-3, (flashes, starts)


@pytest.mark.slow
def test_burned_text_stays_inside_the_safe_area(tmp_path):
    from videomedia import make_video

    master = make_video(tmp_path / "clip.mp4", seconds=3, size="640x360")
    presets = tmp_path / "p"
    presets.mkdir()
    (presets / "subs.yaml").write_text(
        "- id: tall-subs\n  extends: instagram-reel\n  size: [360, 640]\n  speed: ultrafast\n"
        "  subtitles: {burn: true, style: bold-social}\n"
        "- id: tall-plain\n  extends: tall-subs\n  subtitles: {burn: false}\n")
    (tmp_path / "clip.srt").write_text(srt([(0.5, 2.5, "Árvíztűrő tükörfúrógép, "
                                                        "burned in where it can be seen")]))
    from pipeline.runner import run

    report = run([master], tmp_path / "out", [presets], ["tall-subs", "tall-plain"], jobs=1)
    assert not report.errors, report.errors
    made = {r.preset: r for r in report.results}
    assert made["tall-plain"].plan.get("subtitles") is None
    text = frame_at(tmp_path / "out" / made["tall-subs"].path, 1.5)
    plain = frame_at(tmp_path / "out" / made["tall-plain"].path, 1.5)
    rows, cols = np.nonzero(np.abs(text - plain).max(axis=2) > 40)
    assert rows.size > 500                                   # there is text
    # Instagram Reels' safe area: 14 % top, 35 % bottom, 6 % each side.
    assert rows.min() >= 0.14 * 640 and rows.max() <= 0.65 * 640
    assert cols.min() >= 0.06 * 360 and cols.max() <= 0.94 * 360


def test_karaoke_highlights_each_word_at_its_time(tmp_path):
    import pysubs2

    from pipeline.subtitles.files import write_ass

    style = styles()["karaoke"]
    frame = frame_of((1080, 1920), (0.14, 0.35, 0.06, 0.06))
    cue = Cue(1000, 2600, "We have liftoff", (Word(1200, 1500, "We"), Word(1500, 1800, "have"),
                                               Word(1800, 2600, "liftoff")))
    write_ass(layout([cue], style, frame, 5000), style, frame, tmp_path / "k.ass")
    (event,) = pysubs2.load(str(tmp_path / "k.ass"))
    # 0.2 s before the first word, then each word for its own time (centiseconds).
    assert event.text == r"{\k20}{\kf30}We {\kf30}have {\kf80}liftoff"
    subs = pysubs2.load(str(tmp_path / "k.ass"))
    assert subs.info["PlayResX"] == "1080" and subs.styles["Default"].marginv == round(0.35 * 1920)


def test_embedded_text_subtitles_are_used_when_there_is_no_sidecar(tmp_path):
    from videomedia import make_video

    from pipeline.model import Asset
    from pipeline.probe import probe_video
    from pipeline.subtitles.sources import embedded_cues

    plain = make_video(tmp_path / "plain.mp4", seconds=2)
    (tmp_path / "in.srt").write_text(srt([(0.5, 1.5, "Embedded words")]))
    muxed = tmp_path / "muxed.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(plain), "-i",
                    str(tmp_path / "in.srt"), "-map", "0", "-map", "1", "-c", "copy",
                    "-c:s", "mov_text", str(muxed)], check=True)
    info = probe_video(Asset(muxed, "muxed.mp4", "muxed", tmp_path, "muxed.mp4"))
    (cue,) = embedded_cues(muxed, info, "muxed.mp4")
    assert (cue.start, cue.end, cue.text) == (500, 1500, "Embedded words")
