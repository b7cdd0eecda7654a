"""Generated video masters for tests: real ffmpeg encodes of lavfi sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

VIDEO_PRESETS = """\
- id: tv-tall
  extends: instagram-reel
  size: [180, 320]
  speed: ultrafast
  max_upscale: 8
- id: tv-wide
  extends: x-video
  size: [320, 180]
  speed: ultrafast
- id: tv-square-pad
  extends: tv-tall
  size: [240, 240]
  aspect: {min: 1.0, max: 1.0}
  fit: pad
  background: black
- id: tv-split
  extends: tv-wide
  duration: {min: 1, max: 2, recommended_max: 2}
  cut: split
- id: tv-head
  extends: tv-wide
  duration: {min: 1, max: 2, recommended_max: 2}
- id: tv-tall-short
  extends: tv-tall
  duration: {min: 1, max: 2.5, recommended_max: 2.5}
- id: tv-tall-best
  extends: tv-tall
  duration: {min: 1, max: 3, recommended_max: 3}
  cut: best
- id: tv-best
  extends: tv-wide
  duration: {min: 1, max: 3, recommended_max: 3}
  cut: best
"""


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def make_video(out: Path, *args: str, seconds: float = 3, size: str = "320x240", rate: int = 30,
               audio: bool = True) -> Path:
    inputs = ["-f", "lavfi", "-i", f"testsrc2=s={size}:d={seconds}:r={rate}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=f=440:d={seconds}"]
    codec = list(args) or ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"]
    if audio and "-c:a" not in codec:
        codec += ["-c:a", "aac", "-shortest"]
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *inputs, *codec, str(out)], check=True)
    return out


def video_presets_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "video-presets"
    folder.mkdir(exist_ok=True)
    (folder / "video.yaml").write_text(VIDEO_PRESETS)
    return folder


def make_story(out: Path, scenes: list[tuple[str, str | None, float]], size: str = "320x240",
               rate: int = 30) -> Path:
    """A master of consecutive shots: each (lavfi picture, lavfi mono sound or None for silence,
    seconds), joined with hard cuts, e.g. ("color=c=navy", "sine=f=440", 4)."""
    inputs, labels = [], []
    for index, (picture, sound, seconds) in enumerate(scenes):
        joint = ":" if "=" in picture else "="
        inputs += ["-f", "lavfi", "-i", f"{picture}{joint}s={size}:r={rate}:d={seconds}"]
        audio = (f"{sound}:r=48000:d={seconds}" if sound else
                 f"anullsrc=r=48000:cl=mono:d={seconds}")
        inputs += ["-f", "lavfi", "-i", audio]
        labels.append(f"[{2 * index}:v][{2 * index + 1}:a]")
    graph = "".join(labels) + f"concat=n={len(scenes)}:v=1:a=1[v][a]"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *inputs, "-filter_complex", graph,
                    "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)], check=True)
    return out


def make_moving_face(out: Path, head, seconds: float = 4, size=(640, 360), rate: int = 30,
                     path=lambda u: 0.05 + 0.75 * u) -> Path:
    """A master of a head (a PIL picture) crossing a calm gradient: its left edge at
    path(u) of the width, u going 0-1 over the clip."""
    import numpy as np
    from PIL import Image

    width, height = size
    ramp = np.linspace(70, 190, width, dtype=np.uint8)
    back = Image.fromarray(np.dstack([np.tile(ramp, (height, 1))] * 3))
    tall = round(height * 0.5)
    face = head.resize((round(tall * head.width / head.height), tall))
    encoder = subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
         f"{width}x{height}", "-r", str(rate), "-i", "-", "-c:v", "libx264", "-preset",
         "ultrafast", "-pix_fmt", "yuv420p", str(out)], stdin=subprocess.PIPE)
    assert encoder.stdin is not None
    frames = round(seconds * rate)
    for n in range(frames):
        frame = back.copy()
        frame.paste(face, (round(path(n / max(frames - 1, 1)) * width), round(height * 0.2)))
        encoder.stdin.write(frame.tobytes())
    encoder.stdin.close()
    assert encoder.wait() == 0
    return out
