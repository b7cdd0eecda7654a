"""Video planning: a pure function from (VideoInfo, Preset, Choices) to the
plans of one preset (several when a split cuts the master into parts).

Cuts work in integer milliseconds of the master's timeline: `trim` from
shoot.yaml narrows the usable window, then `head` keeps the first
duration.max of it, `split` makes balanced consecutive parts, each within
duration min-max, and `best` keeps the liveliest duration.max. Split and
best cuts move to shot changes and quiet moments (planning.cuts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction

from pipeline.analysis import Analysis
from pipeline.analysis.subjects import Subject
from pipeline.analysis.video import DETECT_MS
from pipeline.model import VideoInfo, VideoPlan
from pipeline.planning.camera import camera_path
from pipeline.planning.common import Choices, PlanError, fit_geometry, output_path, plan_key
from pipeline.planning.cuts import Cut, Signals, tolerance
from pipeline.schema import Preset

MUX_OVERHEAD = 0.94        # share of a file-size budget left for the streams themselves
MIN_VIDEO_KBPS = 150
NO_CAP_ABOVE_KBPS = 100_000  # a size budget this generous never binds: leave x264 uncapped


def plan_video(info: VideoInfo, preset: Preset, choices: Choices, *, source: str, stem: str,
               source_digest: str, analysis: Analysis | None = None,
               subjects: Sequence[Subject] = ()) -> list[VideoPlan]:
    """Plan every part of one video preset; PlanError when it cannot be met.
    `subjects` frame a still picture (a clip made from a photo)."""
    geometry = fit_geometry(info.width, info.height, preset, choices.focus, source, even=True,
                            subjects=subjects)
    follow = (geometry.fit == "crop" and choices.focus is None and analysis is not None
              and bool(analysis.subjects)) or bool(choices.pins)
    segments = cut(info, preset, choices, source, analysis)
    fps, fps_notes = output_fps(info, preset)
    audio = preset.audio
    plans = []
    for number, (segment, cut_notes) in enumerate(segments, 1):
        part = number if len(segments) > 1 else None
        crop, framing = geometry.crop, geometry.framing
        keys: tuple[tuple[int, float, float], ...] = ()
        if follow and geometry.fit == "crop":
            path = camera_path(info.width, info.height, preset.size[0] / preset.size[1],
                               segment, analysis.subjects if analysis else (),
                               analysis.detect_ms if analysis else DETECT_MS,
                               analysis.shots if analysis else (), choices.pins)
            if path is not None:
                crop, framing, keys = path.box(segment[0]), path.framing, path.keyframes
        seconds = (segment[1] - segment[0]) / 1000
        audio_kbps = audio.bitrate_kbps if audio else 128
        plan = VideoPlan(
            preset=preset.id, source=source, output=output_path(preset, stem, part), part=part,
            size=preset.size, fit=geometry.fit, crop=crop, placement=geometry.placement,
            scale=geometry.scale, segments=(segment,), fps=fps, tonemap=info.hdr is not None,
            source_matrix=source_matrix(info),
            crf=preset.crf, speed=preset.speed, profile=preset.h264_profile,
            level=preset.h264_level, gop=gop_frames(fps, preset),
            maxrate_kbps=maxrate(preset, seconds, audio_kbps if info.audio else 0, source),
            audio=bool(info.audio), audio_kbps=audio_kbps,
            sample_rate=audio.sample_rate if audio else 48000,
            channels=audio.channels if audio else 2,
            loudness=(preset.loudness.integrated_lufs, preset.loudness.true_peak_dbtp)
            if preset.loudness else None,
            max_bytes=preset.max_file_size, background=preset.background, key="",
            warnings=geometry.warnings + fps_notes, cut_notes=cut_notes, effect=preset.effect,
            framing=framing, path=keys if len({(x, y) for _, x, y in keys}) > 1 else (),
            source_size=(info.width, info.height), frame_size=info.frame_size,
            share=preset.share_encode)
        plans.append(replace(plan, key=plan_key(plan.to_dict(), preset, source_digest)))
    return plans


def window(info: VideoInfo, choices: Choices) -> tuple[int, int]:
    """The usable [start, end) milliseconds of the master: all of it, or its trim."""
    start, end = 0, info.duration_ms
    if choices.trim:
        start = min(max(0, round(choices.trim[0] * 1000)), end)
        end = min(end, round(choices.trim[1] * 1000))
    return start, end


def needs_analysis(info: VideoInfo, preset: Preset, choices: Choices) -> bool:
    """Whether this preset's cut depends on the master's analysis."""
    start, end = window(info, choices)
    longest = preset.duration.max if preset.duration and preset.duration.max else None
    return preset.cut != "head" and longest is not None and end - start > longest


Part = tuple[tuple[int, int], tuple[str, ...]]     # kept [start, end) ms, and why cut there


def cut(info: VideoInfo, preset: Preset, choices: Choices, source: str,
        analysis: Analysis | None = None) -> list[Part]:
    """The kept [start, end) milliseconds of each output part, with notes on
    where its cuts fell. `head` is exact; `split` and `best` move their cuts
    to shot changes or quiet moments when an analysis is given."""
    start, end = window(info, choices)
    length = end - start
    spec = preset.duration
    shortest = spec.min if spec and spec.min else 0
    longest = spec.max if spec and spec.max else length
    if length <= 0 or length < shortest:
        raise PlanError(f"master gives {length / 1000:.1f} s; {preset.id} needs at least "
                        f"{shortest / 1000:g} s", path=source, preset=preset.id,
                        hint="use a longer master, or trim less of it in shoot.yaml")
    if preset.cut == "head" or length <= longest:
        return [((start, start + min(length, longest)), ())]
    signals = Signals(analysis) if analysis else None
    if preset.cut == "best":
        if signals is None:
            return [((start, start + longest), ("no analysis of the master: kept its start",))]
        return [_best(signals, start, end, shortest, longest)]
    parts = _balanced_parts(length, shortest, longest)
    if parts is None:
        raise PlanError(f"{length / 1000:.1f} s cannot be split into parts of "
                        f"{shortest / 1000:g}-{longest / 1000:g} s", path=source,
                        preset=preset.id, hint="trim the master, or use cut: head")
    edges = [Cut(start + round(length * i / parts), "") for i in range(parts + 1)]
    if signals:
        slack = tolerance(length // parts)
        for k in range(1, parts):
            left, after = edges[k - 1].at, parts - k
            low = max(left + shortest, end - after * longest, edges[k].at - slack)
            high = min(left + longest, end - after * shortest, edges[k].at + slack)
            edges[k] = signals.snap(edges[k].at, low, high)
    return [((a.at, b.at), _notes(a, b)) for a, b in zip(edges, edges[1:], strict=False)]


def _best(signals: Signals, start: int, end: int, shortest: int, longest: int) -> Part:
    nominal = signals.best_start(start, end, longest)
    slack = tolerance(longest)
    first = signals.snap(nominal, max(start, nominal - slack),
                         min(nominal + slack, end - longest))
    stop = min(first.at + longest, end)
    last = signals.snap(stop, max(first.at + shortest, stop - slack), stop)
    lively = f"the liveliest {longest / 1000:g} s of the master (motion and sound)"
    return (first.at, last.at), (lively, *_notes(first, last))


def _notes(first: Cut, last: Cut) -> tuple[str, ...]:
    notes = []
    if first.reason:
        notes.append(f"starts at {first.at / 1000:.2f} s on a {first.reason}")
    if last.reason:
        notes.append(f"ends at {last.at / 1000:.2f} s on a {last.reason}")
    return tuple(notes)


def _balanced_parts(length: int, shortest: int, longest: int) -> int | None:
    for parts in range(math.ceil(length / longest), length // max(shortest, 1) + 1):
        if shortest <= length / parts <= longest:
            return parts
    return None


SWSCALE_MATRICES = {"bt709": "bt709", "bt470bg": "bt601", "smpte170m": "bt601",
                    "smpte240m": "smpte240m", "bt2020nc": "bt2020", "bt2020c": "bt2020"}


def source_matrix(info: VideoInfo) -> str:
    """The master's YUV matrix as ffmpeg's scale filter names it. Untagged
    masters follow the usual rule: HD and larger are BT.709, SD is BT.601."""
    if info.color_space in SWSCALE_MATRICES:
        return SWSCALE_MATRICES[info.color_space]
    return "bt709" if min(info.coded_width, info.coded_height) >= 720 else "bt601"


def output_fps(info: VideoInfo, preset: Preset) -> tuple[Fraction, tuple[str, ...]]:
    """Constant output rate: the master's, capped and floored by the preset."""
    rate = info.fps if info.fps > 0 else Fraction(30)
    notes = []
    spec = preset.video
    if spec and spec.fps_max and rate > Fraction(spec.fps_max).limit_denominator(1001):
        rate = Fraction(spec.fps_max).limit_denominator(1001)
    if spec and spec.fps_min and rate < Fraction(spec.fps_min).limit_denominator(1001) - Fraction(
            1, 100):
        notes.append(f"frame rate raised from {float(info.fps):.3g} to {spec.fps_min:g} fps "
                     "(frames are repeated)")
        rate = Fraction(spec.fps_min).limit_denominator(1001)
    if info.variable_fps:
        notes.append(f"variable frame rate master: output at a constant {float(rate):.3g} fps")
    return rate, tuple(notes)


def gop_frames(fps: Fraction, preset: Preset) -> int:
    if preset.video and preset.video.gop == "closed_half_fps":
        return max(1, round(fps / 2))
    return max(1, math.floor(fps * Fraction(preset.keyframe_seconds).limit_denominator(100)))


def maxrate(preset: Preset, seconds: float, audio_kbps: int, source: str) -> int | None:
    """The video bitrate cap: the platform's, and what max_file_size leaves."""
    caps = []
    if preset.video and preset.video.bitrate_max_mbps:
        caps.append(int(preset.video.bitrate_max_mbps * 1000))
    if preset.max_file_size and seconds > 0:
        budget = preset.max_file_size * 8 * MUX_OVERHEAD / seconds / 1000 - audio_kbps
        if budget < MIN_VIDEO_KBPS:
            raise PlanError(f"{seconds:.1f} s cannot fit {preset.max_file_size:,} bytes "
                            f"({budget:.0f} kbit/s left for video)", path=source,
                            preset=preset.id, hint="cut it shorter or raise max_file_size")
        if budget < NO_CAP_ABOVE_KBPS:
            caps.append(int(budget))
    return min(caps) if caps else None
