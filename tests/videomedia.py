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
