"""The low-resolution analysis pass of a video master.

One ffmpeg run decodes the master once: the picture is shrunk to 160 px
wide, ffmpeg's scene detector (`scdet`) scores every frame at the full rate,
and a 10 Hz greyscale copy streams out for motion; a 5 Hz greyscale copy at
most 480 px wide goes to the subject detectors; the first audio stream comes
out as 16 kHz mono for its energy. Signals are sampled every STEP_MS,
subjects every DETECT_MS.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ffmpeg
import numpy as np

from pipeline.analysis import cache
from pipeline.analysis.subjects import Subject, find_subjects
from pipeline.errors import RenderError
from pipeline.ffmpeg import compile_argv, ffmpeg_exe, run_ffmpeg
from pipeline.model import VideoInfo

VERSION = 2                # bump when what is measured changes: old cache entries are ignored
STEP_MS = 100
DETECT_MS = 200
WIDTH = 160
DETECT_WIDTH = 480
SCENE_THRESHOLD = 10.0     # scdet score (0-100) above which a frame starts a new shot
AUDIO_RATE = 16000


@dataclass(frozen=True)
class Analysis:
    """Signals of one master, one value per STEP_MS from its start."""

    duration_ms: int
    motion: tuple[float, ...]          # mean absolute change between samples, 0-1
    audio_rms: tuple[float, ...] | None  # RMS of the first audio stream, 0-1 (None: silent master)
    shots: tuple[int, ...]             # milliseconds where a new shot starts
    # Faces (or else the most salient region) every DETECT_MS from the start.
    subjects: tuple[tuple[Subject, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["subjects"] = [[s.to_list() for s in sample] for sample in self.subjects]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Analysis:
        rms = data["audio_rms"]
        return cls(int(data["duration_ms"]), tuple(data["motion"]),
                   tuple(rms) if rms is not None else None, tuple(data["shots"]),
                   tuple(tuple(Subject.from_list(s) for s in sample)
                         for sample in data["subjects"]))


def analyze_video(source: Path, info: VideoInfo, digest: str, label: str) -> Analysis:
    """The master's analysis, from the cache when this content was seen before."""
    name = f"{digest}.video-v{VERSION}.json"
    cached = cache.load(name)
    if cached is not None:
        try:
            return Analysis.from_dict(cached)
        except (KeyError, TypeError, ValueError):
            pass
    result = _measure(source, info, label)
    cache.store(name, result.to_dict())
    return result


def _measure(source: Path, info: VideoInfo, label: str) -> Analysis:
    small = _size(info, WIDTH)
    detect = _size(info, min(DETECT_WIDTH, info.width))
    with tempfile.TemporaryDirectory(prefix="repurpose-analysis-") as tmp:
        folder = Path(tmp)
        scenes, sound = folder / "scenes.txt", folder / "audio.raw"
        frames, looks = folder / "motion", folder / "detect"
        stream = ffmpeg.input(str(source.absolute()))
        both = stream["v:0"].filter_multi_output("split", 2)
        motion = (both[0].filter("scale", *small, flags="area")
                  .filter("scdet", threshold=SCENE_THRESHOLD)
                  .filter("metadata", mode="print", key="lavfi.scd.time", file=str(scenes))
                  .filter("fps", 1000 // STEP_MS).filter("format", "gray"))
        seen = (both[1].filter("fps", 1000 // DETECT_MS)
                .filter("scale", *detect, flags="area").filter("format", "gray"))
        outs = [motion.output(str(frames), f="rawvideo", pix_fmt="gray"),
                seen.output(str(looks), f="rawvideo", pix_fmt="gray")]
        if info.audio:
            outs.append(stream["a:0"].output(str(sound), f="s16le", ac=1, ar=AUDIO_RATE,
                                             **{"c:a": "pcm_s16le"}))
        argv = compile_argv(ffmpeg.merge_outputs(*outs), ffmpeg_exe())
        run_ffmpeg(argv, label)
        moves = _motion(_frames(frames, small, label))
        subjects = tuple(tuple(find_subjects(np.ascontiguousarray(picture)))
                         for picture in _frames(looks, detect, label))
        rms = _rms(np.fromfile(sound, dtype="<i2")) if info.audio and sound.exists() else None
        shots = _shots(scenes.read_text(encoding="utf-8") if scenes.exists() else "")
    return Analysis(info.duration_ms, moves, rms, shots, subjects)


def _size(info: VideoInfo, width: int) -> tuple[int, int]:
    width = max(2, width // 2 * 2)
    return width, max(2, round(width * info.height / max(info.width, 1) / 2) * 2)


def _frames(path: Path, size: tuple[int, int], label: str) -> np.ndarray:
    """Raw greyscale frames of `size`, read without copying them into memory."""
    width, height = size
    count = path.stat().st_size // (width * height) if path.exists() else 0
    if count == 0:
        raise RenderError("analysis decoded no frames", path=label,
                          hint="the master may be damaged; export it again")
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(count, height, width))


def _motion(frames: np.ndarray) -> tuple[float, ...]:
    if len(frames) < 2:
        return (0.0,) * len(frames)
    change = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2)) / 255
    return (0.0, *(round(float(v), 5) for v in change))


def _rms(samples: np.ndarray) -> tuple[float, ...]:
    per_step = AUDIO_RATE * STEP_MS // 1000
    steps = math.ceil(samples.size / per_step)
    padded = np.zeros(steps * per_step, dtype=np.float64)
    padded[: samples.size] = samples / 32768.0
    power = (padded.reshape(steps, per_step) ** 2).mean(axis=1)
    return tuple(round(float(v), 5) for v in np.sqrt(power))


def _shots(printed: str) -> tuple[int, ...]:
    times = sorted({round(float(m) * 1000) for m in re.findall(r"lavfi\.scd\.time=([\d.]+)",
                                                               printed)})
    return tuple(t for t in times if t > 0)
