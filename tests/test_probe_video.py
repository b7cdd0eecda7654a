"""Video probe over real ffmpeg encodes of generated media."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.model import Asset, PhotoInfo, VideoInfo
from pipeline.probe import probe


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make(ffmpeg: str, out: Path, *args: str, inputs: tuple[str, ...] = (
        "-f", "lavfi", "-i", "testsrc2=s=320x240:d=3:r=30")) -> Path:
    subprocess.run([ffmpeg, "-v", "error", "-y", *inputs, *args, str(out)], check=True)
    return out


def read(path: Path):
    return probe(Asset(path, path.name, path.stem, path.parent, path.name))


SINE = ("-f", "lavfi", "-i", "sine=f=440:d=3")


def test_plain_h264_with_audio(tmp_path, ffmpeg):
    info = read(make(ffmpeg, tmp_path / "a.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                     "-c:a", "aac", "-ar", "48000", "-shortest",
                     inputs=("-f", "lavfi", "-i", "testsrc2=s=320x240:d=3:r=30", *SINE)))
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height, info.rotation) == (320, 240, 0)
    assert info.fps == Fraction(30) and not info.variable_fps
    assert info.duration_ms == pytest.approx(3000, abs=50)
    assert (info.codec, info.pix_fmt, info.bit_depth, info.hdr) == ("h264", "yuv420p", 8, None)
    (audio,) = info.audio
    assert (audio.codec, audio.channels, audio.sample_rate) == ("aac", 1, 48000)
    assert info.faststart is False                      # ffmpeg's default: index at the end


def test_phone_rotation_gives_the_display_size(tmp_path, ffmpeg):
    plain = make(ffmpeg, tmp_path / "p.mp4", "-c:v", "libx264")
    rotated = make(ffmpeg, tmp_path / "r.mp4", "-c", "copy",
                   inputs=("-display_rotation", "90", "-i", str(plain)))
    info = read(rotated)
    assert (info.width, info.height, info.rotation) == (240, 320, 90)
    assert (info.coded_width, info.coded_height) == (320, 240)


def test_hdr_pq_hevc_is_recognised(tmp_path, ffmpeg):
    info = read(make(ffmpeg, tmp_path / "hdr.mp4", "-c:v", "libx265", "-pix_fmt", "yuv420p10le",
                     "-x265-params",
                     "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:log-level=error",
                     "-tag:v", "hvc1"))
    assert (info.codec, info.bit_depth, info.hdr) == ("hevc", 10, "pq")
    assert (info.color_primaries, info.color_transfer, info.color_space) == (
        "bt2020", "smpte2084", "bt2020nc")


def test_prores_mov_as_premiere_exports(tmp_path, ffmpeg):
    info = read(make(ffmpeg, tmp_path / "master.mov", "-c:v", "prores_ks", "-profile:v", "3",
                     "-c:a", "pcm_s16le", "-shortest",
                     inputs=("-f", "lavfi", "-i", "testsrc2=s=320x240:d=3:r=25", *SINE)))
    assert (info.codec, info.pix_fmt, info.bit_depth) == ("prores", "yuv422p10le", 10)
    assert info.audio[0].codec == "pcm_s16le" and info.faststart is False


def test_variable_frame_rate_and_faststart(tmp_path, ffmpeg):
    info = read(make(ffmpeg, tmp_path / "vfr.mp4", "-vf", "select='lt(n,30)+not(mod(n,3))'",
                     "-fps_mode", "vfr", "-c:v", "libx264", "-movflags", "+faststart"))
    assert info.variable_fps and info.faststart is True
    assert not info.audio


def test_audio_start_offset_and_text_subtitles(tmp_path, ffmpeg):
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,500 --> 00:00:02,000\nHello\n")
    info = read(make(ffmpeg, tmp_path / "sub.mp4", "-map", "0:v", "-map", "1:a", "-map", "2:s",
                     "-c:v", "libx264", "-c:a", "aac", "-c:s", "mov_text", "-shortest",
                     inputs=("-f", "lavfi", "-i", "testsrc2=s=320x240:d=3:r=30",
                             "-itsoffset", "0.5", *SINE, "-i", str(srt))))
    assert info.audio[0].start_ms == pytest.approx(500, abs=30)
    (sub,) = info.subtitles
    assert sub.codec == "mov_text" and sub.is_text


def test_truncated_videos_fail_clearly(tmp_path, ffmpeg):
    whole = make(ffmpeg, tmp_path / "whole.mp4", "-c:v", "libx264", "-movflags", "+faststart",
                 inputs=("-f", "lavfi", "-i", "testsrc2=s=320x240:d=6:r=30"))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InputError, match=r"is truncated: its data ends at \d"):
        read(cut)
    index_last = make(ffmpeg, tmp_path / "late.mp4", "-c:v", "libx264")
    half = tmp_path / "half.mp4"
    half.write_bytes(index_last.read_bytes()[: index_last.stat().st_size // 2])
    with pytest.raises(InputError, match="index \\(moov\\) is missing"):
        read(half)


def test_photos_still_probe_as_photos(tmp_path):
    from media import gradient

    gradient(64, 48).save(tmp_path / "p.jpg")
    assert isinstance(read(tmp_path / "p.jpg"), PhotoInfo)


def test_cli_probe_prints_video_facts(cli_runner, tmp_path, ffmpeg):
    import json

    from pipeline.cli import cli

    clip = make(ffmpeg, tmp_path / "c.mp4", "-c:v", "libx264")
    result = cli_runner.invoke(cli, ["probe", str(clip), "--json"])
    facts = json.loads(result.output)
    assert facts["fps"] == "30" and facts["width"] == 320 and facts["codec"] == "h264"


def test_a_video_master_into_a_photo_preset_gives_its_cover(tmp_path, ffmpeg):
    from helpers import render

    clip = make(ffmpeg, tmp_path / "clip.mp4", "-c:v", "libx264")
    report = render(tmp_path, clip, "t-square-jpeg")
    (result,) = report.results
    assert result.status == "rendered" and result.media == "photo"
    assert any(w.startswith("cover frame at") for w in result.warnings)
