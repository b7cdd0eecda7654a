"""The low-resolution analysis pass of a video master.

One ffmpeg run decodes the master once: the picture is shrunk to 160 px
wide, ffmpeg's scene detector (`scdet`) scores every frame at the full rate,
and a greyscale copy streams out for motion every `step_ms`; a greyscale copy
at most 480 px wide goes to the subject detectors every `detect_ms`; the first
audio stream comes out as 16 kHz mono for its energy per `step_ms`. Everything
streams through pipes (pipeline.analysis.pipes) into meters that keep only
their results, so neither memory nor disk grows with the master.

The work is budgeted: up to 11 minutes a master is sampled every STEP_MS and
DETECT_MS; a longer one is sampled more sparsely (whole multiples of them), so
it yields at most about MAX_MOTION_SAMPLES and MAX_DETECT_SAMPLES. The Analysis
records the steps it used, and planning reads them from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from pipeline.analysis import cache
from pipeline.analysis.meters import Looks, Loudness, Motion, Recording, SceneLog
from pipeline.analysis.pipes import Sink, run_piped
from pipeline.analysis.subjects import Subject
from pipeline.errors import RenderError
from pipeline.ffmpeg import CONTENT_INPUT, compile_argv, ffmpeg_exe
from pipeline.model import VideoInfo

VERSION = 3                # bump when what is measured changes: old cache entries are ignored
STEP_MS = 100              # signals' step, up to the budget
DETECT_MS = 200            # subjects' step, up to the budget
MAX_MOTION_SAMPLES = 6600  # 11 minutes at STEP_MS
MAX_DETECT_SAMPLES = 3300  # 11 minutes at DETECT_MS
# A master whose stream outlasts its probed duration is read to its end, but no more
# than HARD_LIMIT times the budget of samples (or of shot changes) is kept.
HARD_LIMIT = 2
WIDTH = 160
DETECT_WIDTH = 480
TALLEST = 4                # analysis frames at most 4 times as tall as wide (a 1:4 banner):
                           # a taller master is squashed, not decoded to megabytes a frame
SCENE_THRESHOLD = 10.0     # scdet score (0-100) above which a frame starts a new shot
AUDIO_RATE = 16000
# The picture is looked at 160 and 480 px wide, so its decode may be rough: no
# deblocking, and frames no other frame refers to are skipped (never a frame
# that others need, so nothing smears). On the 56 Mbit/s bench master that is
# 20 % less decoding (https://ffmpeg.org/ffmpeg-codecs.html#Codec-Options).
CHEAP_DECODE = {"skip_loop_filter:v": "all", "skip_frame:v": "noref"}


@dataclass(frozen=True)
class Analysis:
    """Signals of one master, one value per `step_ms` from its start."""

    duration_ms: int
    motion: tuple[float, ...]          # mean absolute change between samples, 0-1
    audio_rms: tuple[float, ...] | None  # RMS of the first audio stream, 0-1 (None: silent master)
    shots: tuple[int, ...]             # milliseconds where a new shot starts
    # Faces (or else the most salient region) every `detect_ms` from the start.
    subjects: tuple[tuple[Subject, ...], ...] = ()
    step_ms: int = STEP_MS             # of motion and audio_rms
    detect_ms: int = DETECT_MS         # of subjects

    def __post_init__(self) -> None:
        if self.step_ms < 1 or self.detect_ms < 1:
            raise ValueError(f"analysis steps must be positive: {self.step_ms}, "
                             f"{self.detect_ms}")

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
                         for sample in data["subjects"]),
                   int(data["step_ms"]), int(data["detect_ms"]))


def analyze_video(source: Path, info: VideoInfo, digest: str, label: str,
                  sound_to: Path | None = None) -> Analysis:
    """The master's analysis, from the cache when this content was seen before.
    With `sound_to`, a pass that decodes the master also writes its first audio
    stream there as a 16 kHz mono WAV (what speech-to-text takes); a cached
    analysis writes nothing."""
    name = f"{digest}.video-v{VERSION}.json"
    cached = cache.load(name)
    if cached is not None:
        try:
            return Analysis.from_dict(cached)
        except (KeyError, TypeError, ValueError):
            pass
    result = _measure(source, info, label, sound_to)
    cache.store(name, result.to_dict())
    return result


def sample_steps(duration_ms: int) -> tuple[int, int]:
    """The signals' and the subjects' step for a master this long: STEP_MS and
    DETECT_MS, or whole multiples of them that keep a long master within budget."""
    length = max(duration_ms, 1)
    return (STEP_MS * math.ceil(length / (STEP_MS * MAX_MOTION_SAMPLES)),
            DETECT_MS * math.ceil(length / (DETECT_MS * MAX_DETECT_SAMPLES)))


@dataclass(frozen=True)
class _Pass:
    """The shape of one analysis pass."""

    source: Path
    audio: bool
    small: tuple[int, int]           # motion frames, px
    detect: tuple[int, int]          # detection frames, px
    step_ms: int
    detect_ms: int


def _measure(source: Path, info: VideoInfo, label: str, sound_to: Path | None) -> Analysis:
    step, detect_step = sample_steps(info.duration_ms)
    shape = _Pass(source.absolute(), bool(info.audio), _size(info, WIDTH),
                  _size(info, min(DETECT_WIDTH, info.width)), step, detect_step)
    # Shot changes are kept at the signals' resolution once a master is long enough
    # to be sampled sparsely; before that, every one scdet finds.
    scenes = SceneLog(1 if step == STEP_MS else step, HARD_LIMIT * MAX_MOTION_SAMPLES)
    motion = Motion(shape.small, HARD_LIMIT * MAX_MOTION_SAMPLES)
    sound = Loudness(AUDIO_RATE * step // 1000, HARD_LIMIT * MAX_MOTION_SAMPLES)
    heard: Sink = sound
    with Looks(shape.detect, HARD_LIMIT * MAX_DETECT_SAMPLES) as looks:
        if shape.audio and sound_to is not None:
            heard = Recording(sound, sound_to, AUDIO_RATE)
        sinks: list[Sink] = [scenes, motion, looks, *([heard] if shape.audio else [])]
        try:
            run_piped(lambda urls: _argv(shape, urls), sinks, label)
        except BaseException:
            if heard is not sound:
                heard.close()
                sound_to.unlink(missing_ok=True)  # type: ignore[union-attr]
            raise
    if not motion.values or not looks.samples:
        raise RenderError("analysis decoded no frames", path=label,
                          hint="the master may be damaged; export it again")
    return Analysis(info.duration_ms, tuple(motion.values),
                    tuple(sound.values) if shape.audio else None, scenes.shots(),
                    tuple(looks.samples), step, detect_step)


def _argv(shape: _Pass, urls: Sequence[str]) -> list[str]:
    """One decode: the scene log, motion frames, detection frames and (with sound)
    the audio samples go to `urls`, in that order."""
    stream = ffmpeg.input(str(shape.source), **CONTENT_INPUT, **CHEAP_DECODE)
    both = stream["v:0"].filter_multi_output("split", 2)
    motion = (both[0].filter("scale", *shape.small, flags="area")
              .filter("scdet", threshold=SCENE_THRESHOLD)
              .filter("metadata", mode="print", key="lavfi.scd.time", file=urls[0])
              .filter("fps", _rate(shape.step_ms)).filter("format", "gray"))
    seen = (both[1].filter("fps", _rate(shape.detect_ms))
            .filter("scale", *shape.detect, flags="area").filter("format", "gray"))
    outs = [motion.output(urls[1], f="rawvideo", pix_fmt="gray"),
            seen.output(urls[2], f="rawvideo", pix_fmt="gray")]
    if shape.audio:
        outs.append(stream["a:0"].output(urls[3], f="s16le", ac=1, ar=AUDIO_RATE,
                                         **{"c:a": "pcm_s16le"}))
    return compile_argv(ffmpeg.merge_outputs(*outs), ffmpeg_exe())


def _rate(step_ms: int) -> str:
    """Frames a second for one every `step_ms`: "10" as before, "5/33" for 6.6 s."""
    return str(Fraction(1000, step_ms))


def _size(info: VideoInfo, width: int) -> tuple[int, int]:
    width = max(2, width // 2 * 2)
    height = max(2, round(width * info.height / max(info.width, 1) / 2) * 2)
    return width, min(height, TALLEST * width)
