"""Shared by the video timing tests: masters encoded from lavfi sources, two small
test presets, an in-process render, and a check that an output lasts its range
at a constant frame rate (decoded and measured)."""

from __future__ import annotations

import math
import subprocess
from fractions import Fraction
from pathlib import Path

import av
from videomedia import ffmpeg_exe

from pipeline.model import Asset
from pipeline.probe import probe_video
from pipeline.runner import run

SMALL = """\
- id: t-wide
  extends: x-video
  size: [320, 180]
  speed: ultrafast
- id: t-tall
  extends: instagram-reel
  size: [180, 320]
  speed: ultrafast
  max_upscale: 8
"""


def encode(out: Path, source: str, *args: str, audio: str | None = None) -> Path:
    inputs = ["-f", "lavfi", "-i", source]
    if audio:
        inputs += ["-f", "lavfi", "-i", audio]
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *inputs, *args, str(out)], check=True)
    return out


def info(path: Path):
    return probe_video(Asset(path, path.name, path.stem, path.parent, path.name))


def presets(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "presets"
    folder.mkdir(exist_ok=True)
    (folder / "p.yaml").write_text(text)
    return folder


def render(tmp_path: Path, sources: list[Path], text: str, ids: list[str]):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return run(sources, out, [presets(tmp_path, text)], ids, jobs=1), out


def picture(path: Path) -> tuple[list[float], Fraction]:
    """Every frame's time, decoded, and the stream's frame rate."""
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        return [float(f.time) for f in container.decode(video=0)], Fraction(rate)


def sound_seconds(path: Path) -> float:
    """How long the decoded sound plays (with at most one AAC frame of end padding)."""
    with av.open(str(path)) as container:
        frames = list(container.decode(audio=0))
    return float(frames[-1].time) + frames[-1].samples / frames[-1].sample_rate


def assert_lasts(path: Path, ms: int, fps: Fraction, audio: bool = True) -> None:
    """Constant `fps` from 0, the range's length in frames (to the nearest frame),
    and sound as long (within one frame)."""
    times, rate = picture(path)
    frame = 1 / fps
    assert rate == fps
    assert times[0] == 0
    steps = {round(b - a, 6) for a, b in zip(times, times[1:], strict=False)}
    assert steps == {round(float(frame), 6)}, steps            # no gap, no repeat
    assert len(times) == math.floor(Fraction(ms, 1000) * fps + Fraction(1, 2)), len(times)
    if audio:
        assert abs(sound_seconds(path) - ms / 1000) <= frame, sound_seconds(path)
