"""Cover frames: the best still of a video master, for its photo presets.

Candidates are sampled evenly across the kept window and scored on a small
grey copy: sharpness (variance of the Laplacian) weighted by exposure, so a
black, blown-out or motion-blurred frame loses to a crisp, well-lit one. The
winner is then extracted at full size by ffmpeg, upright and (for HDR
masters) tone-mapped the same way as the video variants.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.errors import RenderError
from pipeline.ffmpeg import CONTENT_INPUT, child_options, content_input, ffmpeg_exe
from pipeline.model import VideoInfo
from pipeline.render.video import tonemap_filters

CANDIDATES = 24
MIN_KEYFRAMES = 6
SCORE_WIDTH = 320


@dataclass(frozen=True)
class Cover:
    image: Image.Image
    at_ms: int
    candidates: int


def score(grey: np.ndarray) -> float:
    """Sharpness times exposure of one 8-bit grey frame; higher is a better cover."""
    g = grey.astype(np.float32) / 255.0
    lap = (-4 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:])
    sharp = float(lap.var())
    mean = float(g.mean())
    clipped = float(((g < 0.02) | (g > 0.98)).mean())
    exposure = max(0.0, 1.0 - abs(mean - 0.45) / 0.45) * (1.0 - clipped)
    return sharp * exposure**2


def choose(path: Path, info: VideoInfo, window: tuple[int, int]) -> tuple[int, int]:
    """The time (ms) of the best-scoring frame inside `window`, and how many were scored.

    Keyframes first: whole, undegraded pictures, cheap to reach. A master with
    few of them (long GOPs, screen recordings) is sampled over all frames.
    """
    best = _scan(path, info, window, keyframes_only=True)
    if best[1] < MIN_KEYFRAMES:
        best = _scan(path, info, window, keyframes_only=False)
    return best


def _scan(path: Path, info: VideoInfo, window: tuple[int, int],
          keyframes_only: bool) -> tuple[int, int]:
    import av

    start, end = window
    spacing = max(1, (end - start) // CANDIDATES)
    best_ms, best_score, next_ms, scored = start, -1.0, start, 0
    with av.open(str(path.absolute()), options=dict(CONTENT_INPUT)) as container:
        stream = container.streams.video[0]
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        height = max(2, round(SCORE_WIDTH * info.coded_height / max(1, info.coded_width)))
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            ms = int(frame.time * 1000)
            if ms >= end:
                break
            if ms < next_ms:
                continue
            grey = frame.reformat(width=SCORE_WIDTH, height=height, format="gray").to_ndarray()
            value = score(grey)
            scored += 1
            if value > best_score:
                best_ms, best_score = ms, value
            next_ms = ms + spacing
    return best_ms, scored


def extract(path: Path, info: VideoInfo, at_ms: int, label: str) -> Image.Image:
    """The frame at `at_ms`, full size, upright, SDR, as an RGB image."""
    chain = tonemap_filters() + ",format=rgb24" if info.hdr else "format=rgb24"
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
            "-ss", f"{at_ms / 1000:.3f}", *content_input(path), "-frames:v", "1",
            "-vf", chain, "-f", "image2pipe", "-c:v", "png", "-"]
    done = subprocess.run(argv, capture_output=True, check=False, **child_options())
    if done.returncode != 0 or not done.stdout:
        raise RenderError("cannot extract a cover frame", path=label,
                          hint=done.stderr.decode("utf-8", "replace").strip()[-200:]
                          or "export the master again")
    image = Image.open(BytesIO(done.stdout))
    image.load()
    return image.convert("RGB")


def cover(path: Path, info: VideoInfo, window: tuple[int, int], label: str) -> Cover:
    at, scored = choose(path, info, window)
    return Cover(extract(path, info, at, label), at, scored)
