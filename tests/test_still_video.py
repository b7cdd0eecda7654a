"""Photo masters into video presets: a short clip with a smooth push-in."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from media import gradient
from videomedia import ffmpeg_exe, video_presets_dir

from pipeline.errors import ConfigError
from pipeline.model import Asset
from pipeline.probe import probe_video
from pipeline.runner import run


def frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray").astype(float) for f in container.decode(video=0)]


def test_photo_becomes_a_silent_clip_with_a_smooth_push_in(tmp_path):
    src = tmp_path / "photo.jpg"
    gradient(1200, 800).save(src, quality=92)
    report = run([src], tmp_path / "out", [video_presets_dir(tmp_path)], ["tv-tall"], jobs=1)
    (result,) = report.results
    assert result.status == "rendered", report.errors
    assert all(c.ok for c in result.checks), result.checks
    made = tmp_path / "out" / result.path
    info = probe_video(Asset(made, made.name, made.stem, None, made.name))
    assert (info.width, info.height, info.audio) == (180, 320, ())
    assert info.duration_ms == pytest.approx(6000, abs=50)
    pictures = frames(made)
    assert np.abs(pictures[0] - pictures[-1]).mean() > 1.0          # it moves
    steps = np.array([np.abs(b - a).mean() for a, b in zip(pictures, pictures[1:], strict=False)])
    middle = steps[10:-10]
    assert (middle > 0).all()                                       # no stalled frames
    assert middle.std() / middle.mean() < 0.6                       # steady, not juddering


def test_audio_bed_is_cut_faded_and_loudness_matched(tmp_path):
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    gradient(900, 900).save(shoot / "square.png")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=300:d=2",
                    "-af", "volume=-20dB", str(shoot / "bed.wav")], check=True)
    (shoot / "shoot.yaml").write_text("targets: [tv-wide]\nstill_duration: 4.5\n"
                                      "audio_bed: bed.wav\n")
    report = run([shoot], tmp_path / "out", [video_presets_dir(tmp_path)], jobs=1)
    (result,) = report.results
    assert result.status == "rendered", report.errors
    checks = {c.name: c for c in result.checks}
    assert checks["audio"].ok and checks["loudness"].ok, checks
    made = tmp_path / "out" / result.path
    info = probe_video(Asset(made, made.name, made.stem, None, made.name))
    assert info.audio and info.duration_ms == pytest.approx(4500, abs=60)


def test_default_targets_keep_to_the_masters_own_media(cli_runner, tmp_path):
    from pipeline.cli import cli

    gradient(2000, 2000).save(tmp_path / "m.jpg")
    listed = cli_runner.invoke(cli, ["render", str(tmp_path / "m.jpg"), "--out",
                                     str(tmp_path / "o"), "--dry-run"])
    assert ".mp4" not in listed.output and "x-image/m.jpg" in listed.output


def test_missing_audio_bed_is_a_shoot_error(tmp_path):
    from pipeline.shoot import load_shoot

    (tmp_path / "shoot.yaml").write_text("targets: [x-video]\naudio_bed: nowhere.m4a\n")
    with pytest.raises(ConfigError, match="nowhere.m4a"):
        load_shoot(tmp_path)
