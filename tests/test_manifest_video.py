"""The manifest says what each video file is: its duration, frame rate, codec and
sound, read from the written file whether it was rendered now or left unchanged;
photo entries carry none of these fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from videotiming import SMALL, encode, info, render

from pipeline.model import VariantResult


def test_video_entries_carry_duration_fps_codec_and_audio_read_from_the_file(tmp_path, clip):
    silent = encode(tmp_path / "silent.mp4", "testsrc2=s=320x240:r=25:d=3.1", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    for attempt in ("rendered", "unchanged"):
        report, out = render(tmp_path, [clip, silent], SMALL, ["t-wide"])
        assert not report.errors, report.errors
        manifest = json.loads((out / "manifest.json").read_text())
        entries = {Path(e["source"]).name: e for e in manifest["variants"]}
        loud, quiet = entries["m.mp4"], entries["silent.mp4"]
        assert loud["status"] == quiet["status"] == attempt
        assert (loud["fps"], loud["codec"], loud["audio"]) == ("30", "h264", "aac")
        assert loud["duration"] == pytest.approx(3.2, abs=1 / 30)
        assert (quiet["fps"], quiet["codec"], quiet["audio"]) == ("25", "h264", False)
        assert quiet["duration"] == pytest.approx(3.1, abs=1 / 25)
        written = info(out / loud["path"])
        assert loud["duration"] == written.duration_ms / 1000


def test_photo_entries_have_no_video_fields():
    photo = VariantResult("a.jpg", "x-image", "x-image/a.jpg", "rendered").to_dict()
    assert not {"duration", "fps", "codec", "audio"} & set(photo)
    video = VariantResult("a.mp4", "x-video", "x-video/a.mp4", "rendered", media="video",
                          duration=3.2, fps="30", codec="h264", audio=False).to_dict()
    assert (video["duration"], video["fps"], video["codec"], video["audio"]) == (
        3.2, "30", "h264", False)
