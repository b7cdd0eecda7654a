"""Video from a photo master: a short clip with a slow, smooth push-in.

Each video variant's frame is composed by the photo renderer (crop, pad or
blur-pad, colour-managed) at twice its output size; ffmpeg's zoompan then
moves into it over the clip, sampling the doubled picture so the motion
steps by half a pixel, not whole pixels. Sound is the shoot's `audio_bed`,
looped or cut to length, faded out, and loudness-matched; without one the
clip is silent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from pipeline.analysis.subjects import Subject
from pipeline.errors import InputError, RenderError
from pipeline.ffmpeg import CONTENT_INPUT, compile_argv, ffmpeg_exe, run_ffmpeg
from pipeline.loudness import Gain, gain_for, measure, settled
from pipeline.model import (
    AudioStream,
    Box,
    Job,
    JobResult,
    PhotoInfo,
    PhotoPlan,
    VideoInfo,
    VideoPlan,
)
from pipeline.planning import plan_video
from pipeline.render.photo import Master, compose
from pipeline.render.results import all_failed, plan_each
from pipeline.render.video import encoder_args, rate
from pipeline.schema import Preset
from pipeline.scratch import scratch

PUSH_IN = 0.06          # the picture grows by 6 % over the clip
SUPERSAMPLE = 2
FADE_OUT_S = 0.8
STILL_FPS = Fraction(30)
MAX_LOOPS = 10_000         # of the audio bed under one clip (a 0.06 s bed under 10 minutes)


def as_video(info: PhotoInfo, still_ms: int, with_sound: bool) -> VideoInfo:
    """The photo described as the video it becomes."""
    return VideoInfo("still", info.width, info.height, info.width, info.height, 0, Fraction(1),
                     still_ms, STILL_FPS, False, "still", "rgb24", 8, None, None, None, None, None,
                     (AudioStream(0, "bed", 2, 48000, 0),) if with_sound else ())


def plan_stills(job: Job, info: PhotoInfo, presets: list[Preset], digest: str,
                out: JobResult, subjects: Sequence[Subject] = ()
                ) -> list[tuple[Preset, VideoPlan]]:
    still = as_video(info, job.choices.still_ms, job.choices.audio_bed is not None)
    return plan_each(job, presets, lambda preset: plan_video(
        still, preset, job.choices, source=job.asset.label, stem=job.stem,
        source_digest=digest + (job.choices.audio_bed or ""), subjects=subjects), out)


def frame_for(master: Master, plan: VideoPlan) -> Any:
    """The variant's picture at SUPERSAMPLE times its size, composed like a photo."""
    width, height = plan.size
    k = SUPERSAMPLE
    photo = PhotoPlan(preset=plan.preset, source=plan.source, output=plan.output,
                      size=(width * k, height * k), fit=plan.fit, crop=plan.crop,
                      placement=Box(*(v * k for v in plan.placement.as_tuple())),
                      scale=plan.scale * k, format="jpeg", quality=100, min_quality=100,
                      max_bytes=None, background=plan.background, metadata="strip", ai="none",
                      key="")
    return compose(master, photo)


def bed_seconds(bed: Path, label: str) -> float:
    """How long the audio bed plays; InputError when it is not a sound file in a
    container we read (a playlist, a picture), or holds no sound."""
    import av

    hint = "set audio_bed to a WAV, MP3, M4A, FLAC or OGG file beside shoot.yaml"
    try:
        with av.open(str(bed.absolute()), options=dict(CONTENT_INPUT)) as container:
            streams = container.streams.audio
            seconds = container.duration / 1_000_000 if container.duration else 0.0
            if streams and not seconds and streams[0].duration and streams[0].time_base:
                seconds = float(streams[0].duration * streams[0].time_base)
    except av.FFmpegError as exc:
        raise InputError(f"audio_bed {bed.name} is not a sound file it can read ({exc})",
                         path=label, hint=hint) from exc
    if not streams or seconds <= 0:
        raise InputError(f"audio_bed {bed.name} holds no sound", path=label, hint=hint)
    return seconds


def build_argv(frames: list[Path], plans: list[VideoPlan], outputs: list[Path],
               bed: Path | None, gains: list[Gain | None], exe: str = "ffmpeg",
               bed_s: float = 0.0) -> list[str]:
    sound = [p for p in plans if p.audio]
    beds = None
    if bed and sound:
        # As many loops as the longest clip needs: a bed whose header lies about its
        # length then ends the sound early instead of looping forever.
        longest = max(p.duration_ms for p in sound) / 1000
        loops = min(MAX_LOOPS, math.ceil(longest / bed_s) - 1) if bed_s > 0 else 0
        looped = ffmpeg.input(str(bed), stream_loop=max(0, loops), **CONTENT_INPUT).audio
        beds = looped.filter_multi_output("asplit", len(sound)) if len(sound) > 1 else [looped]
    outs, used = [], 0
    for frame, plan, target, gain in zip(frames, plans, outputs, gains, strict=True):
        seconds = plan.duration_ms / 1000
        count = max(1, round(seconds * plan.fps))
        video = ffmpeg.input(str(frame)).video.filter(
            "zoompan", z=f"1+{PUSH_IN}*on/{max(1, count - 1)}", x="(iw-iw/zoom)/2",
            y="(ih-ih/zoom)/2", d=count, s=f"{plan.size[0]}x{plan.size[1]}", fps=rate(plan.fps))
        video = video.filter("scale", out_color_matrix="bt709", out_range="tv").filter(
            "format", "yuv420p").filter("setsar", 1)
        parts = [video]
        if plan.audio and beds is not None:
            audio = beds[used].filter("atrim", end=f"{seconds:.3f}").filter(
                "asetpts", "PTS-STARTPTS")
            used += 1
            audio = audio.filter("afade", t="out", st=f"{max(0.0, seconds - FADE_OUT_S):.3f}",
                                 d=f"{min(FADE_OUT_S, seconds):.3f}")
            if gain:
                audio = audio.filter("volume", f"{gain.db:.2f}dB").filter(
                    "alimiter", limit=f"{gain.limit:.4f}", level=0, latency=1)
            audio = audio.filter("aresample", plan.sample_rate).filter(
                "aformat", sample_fmts="fltp",
                channel_layouts="stereo" if plan.channels == 2 else "mono")
            parts.append(audio)
        outs.append(ffmpeg.output(*parts, str(target), t=f"{seconds:.3f}",
                                  **encoder_args(plan, "strip")))
    return compile_argv(ffmpeg.merge_outputs(*outs), exe)


def render_stills(job: Job, master: Master, todo: list[tuple[Preset, VideoPlan]],
                  out: JobResult) -> None:
    """Render every planned video variant of a photo master with one ffmpeg run."""
    from pipeline.render.videojob import cleanup, publish_all, temp_paths

    bed = Path(job.choices.audio_bed) if job.choices.audio_bed else None
    try:
        bed_s = bed_seconds(bed, job.asset.label) if bed else 0.0
    except InputError as exc:
        all_failed(job, todo, exc, out)
        return
    measured = measure(bed) if bed else None
    gains = [settled(bed, measured, *plan.loudness) if bed and plan.audio and plan.loudness
             else gain_for(None, *plan.loudness) if plan.audio and plan.loudness else None
             for _, plan in todo]
    with scratch("still") as folder:
        frames = []
        for index, (_, plan) in enumerate(todo):
            path = folder / f"frame{index}.png"
            frame_for(master, plan).save(path, compress_level=1)
            frames.append(path)
        temps = temp_paths(job, todo)
        try:
            run_ffmpeg(build_argv(frames, [p for _, p in todo], [t.absolute() for t in temps],
                                  bed.absolute() if bed else None, gains, ffmpeg_exe(),
                                  bed_s),
                       job.asset.label, seconds=max(p.duration_ms for _, p in todo) / 1000)
        except RenderError as exc:
            all_failed(job, todo, exc, out)
            cleanup(temps)
            return
        except BaseException:
            cleanup(temps)
            raise
    publish_all(job, todo, temps, out, f"made from a still: {todo[0][1].duration_ms / 1000:g} s "
                                       "push-in")
