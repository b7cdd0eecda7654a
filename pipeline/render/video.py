"""Video rendering: ONE ffmpeg process per master renders all its variants.

The master is decoded once (seeked to the earliest kept moment, read to the
last), `split`/`asplit` fan it out, and each variant gets its own chain:
trim, tone-map (HDR masters), crop (in the decoded picture's own pixels, which
differ from the plan's display pixels for anamorphic masters), Lanczos scale,
pad or blur-pad, constant frame rate with the last picture held to the end of
the kept range, 8-bit 4:2:0 BT.709; audio trimmed, loudness-normalised,
resampled to 48 kHz AAC and padded to the same length. The filter graph is
built with ffmpeg-python, which escapes every filter argument, and compiled to
an argv list (golden tests pin it). Outputs are written under hidden
temporary names, verified, then renamed.

Running the pass (and what follows it: cuts from a shared encode, effects, a
failed pass retried without the variant at fault) is pipeline.render.passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import ffmpeg

from pipeline.ffmpeg import CONTENT_INPUT, compile_argv
from pipeline.loudness import Gain
from pipeline.model import VideoPlan
from pipeline.subtitles.layout import FONTS

BLUR_SHRINK = 8            # the blur-pad backdrop is blurred at 1/8 of the frame


def build_argv(source: Path, plans: Sequence[VideoPlan], outputs: Sequence[Path],
               exe: str = "ffmpeg", metadata: str = "default",
               gains: Sequence[Gain | None] = (), *, roles: Sequence[Role] = (),
               keyframes: Sequence[Sequence[float]] = (),
               burn: Sequence[Path | None] = (), trial: float | None = None) -> list[str]:
    """The ffmpeg command that renders every plan of one master in one pass.
    `gains` (one per plan) are the measured loudness corrections; `roles` say
    what each output is (ROLES; all "final" when not given); `keyframes` are
    seconds of each output that must start an IDR frame; `burn` are the ASS
    files burned into each output's picture (None: no subtitles). With `trial`
    (seconds), only that much of the master is read and nothing is written: the
    same chains and encoders run into ffmpeg's null muxer."""
    first, last = span(plans)
    length = last - first if trial is None else min(last - first, round(trial * 1000))
    stream = ffmpeg.input(str(source), ss=_seconds(first), t=_seconds(length), **CONTENT_INPUT)
    role = list(roles) or ["final"] * len(plans)
    drawn = [r != "audio" for r in role]
    picture = stream.video
    if any(plan.tonemap for plan, draw in zip(plans, drawn, strict=True) if draw):
        picture = _tonemap(picture)           # once per master, before the fan-out
    videos = (picture.filter_multi_output("split", sum(drawn)) if sum(drawn) > 1 else None)
    with_audio = [p for p in plans if p.audio]
    audios = (stream.audio.filter_multi_output("asplit", len(with_audio))
              if len(with_audio) > 1 else None)
    outs, video_index, audio_index = [], 0, 0
    for index, (plan, target) in enumerate(zip(plans, outputs, strict=True)):
        parts = []
        if drawn[index]:
            ass = burn[index] if index < len(burn) else None
            parts.append(_video_chain(videos[video_index] if videos else picture, plan, first,
                                      ass))
            video_index += 1
        if plan.audio:
            audio_in = audios[audio_index] if audios else stream.audio
            audio_index += 1
            gain = gains[index] if index < len(gains) else None
            parts.append(_audio_chain(audio_in, plan, first, gain))
        marks = keyframes[index] if index < len(keyframes) else ()
        outs.append(ffmpeg.output(*parts, str(target), **_output_args(
            plan, role[index], metadata, marks, trial is not None)))
    return compile_argv(ffmpeg.merge_outputs(*outs), exe)


def _output_args(plan: VideoPlan, role: Role, metadata: str, marks: Sequence[float],
                 trial: bool) -> dict[str, Any]:
    """The encoder and muxer options of one output; a trial's go to the null muxer."""
    args = {"final": encoder_args, "audio": audio_args, "edit": edit_args}[role](plan, metadata)
    if marks:
        args["force_key_frames"] = ",".join(f"{t:.4f}" for t in marks)
        args["forced-idr"] = 1
    if trial:
        args.pop("movflags", None)
        args["f"] = "null"
    return args


# What one output of the pass is: a finished variant, only the audio of a variant
# whose picture is derived from a shared encode, or a lossless copy for an effect.
Role = Literal["final", "audio", "edit"]


def span(plans: Sequence[VideoPlan]) -> tuple[int, int]:
    """The milliseconds of the master that one pass over these plans reads."""
    return (min(start for plan in plans for start, _ in plan.segments),
            max(end for plan in plans for _, end in plan.segments))


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def _video_chain(node: Any, plan: VideoPlan, offset: int, ass: Path | None = None) -> Any:
    (start, end), = plan.segments
    node = node.trim(start=_seconds(start - offset), end=_seconds(end - offset))
    node = node.setpts("PTS-STARTPTS")
    node = _crop(node, plan, start)
    width, height = plan.size
    inner_w, inner_h = int(plan.placement.width), int(plan.placement.height)
    scale_args = {"flags": "lanczos", "in_color_matrix": "bt709" if plan.tonemap
                  else plan.source_matrix, "out_color_matrix": "bt709", "out_range": "tv"}
    if plan.fit == "crop":
        node = node.filter("scale", width, height, **scale_args)
    elif plan.fit == "pad":
        node = node.filter("scale", inner_w, inner_h, **scale_args).filter(
            "pad", width, height, int(plan.placement.left), int(plan.placement.top),
            color=plan.background)
    else:
        node = _blur_pad(node, plan, scale_args)
    if ass is not None:     # libass, with the shipped fonts only: the same text everywhere
        node = node.filter("ass", filename=str(ass), fontsdir=str(FONTS), shaping="complex")
    node = node.filter("fps", fps=rate(plan.fps))
    node = _hold(node, end - start)
    return node.filter("format", "yuv420p").filter("setsar", 1)


def _hold(node: Any, ms: int) -> Any:
    """The picture lasts the kept range, to the nearest frame of its constant rate.
    The fps filter stops with the master's last picture, which for a variable frame
    rate master often ends before its sound; so that picture is repeated (tpad's
    stop=-1 with stop_mode=clone pads without end,
    https://ffmpeg.org/ffmpeg-filters.html#tpad) and trim ends the stream with the
    range (`end` is the time of the first frame dropped, here on the frame grid,
    https://ffmpeg.org/ffmpeg-filters.html#trim), which also stops the padding."""
    return node.filter("tpad", stop=-1, stop_mode="clone").trim(end=_seconds(ms))


def _crop(node: Any, plan: VideoPlan, origin: int) -> Any:
    """The plan's window, which is in display pixels, cut from the decoded picture,
    whose pixels are not square for anamorphic masters: ffmpeg's crop works in the
    picture's own pixels and refuses a window larger than the picture
    (https://ffmpeg.org/ffmpeg-filters.html#crop)."""
    width, height, left, top = frame_crop(plan)
    if not plan.path:
        return node.filter("crop", width, height, left, top)
    (sx, sy), room = _pixel_scale(plan), _room(plan, width, height)
    return node.filter("crop", width, height,
                       path_expression(plan.path, 1, origin, sx, room[0] if room else None),
                       path_expression(plan.path, 2, origin, sy, room[1] if room else None))


def frame_crop(plan: VideoPlan) -> tuple[int, int, int, int]:
    """Width, height, left and top of the plan's (first) window in the decoded
    picture's pixels, inside the picture."""
    sx, sy = _pixel_scale(plan)
    crop = plan.crop
    width, height = max(1, int(crop.width * sx)), max(1, int(crop.height * sy))
    left, top = int(crop.left * sx), int(crop.top * sy)
    frame = _frame(plan)
    if frame is None:
        return width, height, left, top
    width, height = min(width, frame[0]), min(height, frame[1])
    return (width, height, min(max(left, 0), frame[0] - width),
            min(max(top, 0), frame[1] - height))


def _frame(plan: VideoPlan) -> tuple[int, int] | None:
    """The decoded picture's size, or None when the plan does not say."""
    for size in (plan.frame_size, plan.source_size):
        if size[0] > 0 and size[1] > 0:
            return size
    return None


def _pixel_scale(plan: VideoPlan) -> tuple[float, float]:
    """Decoded picture pixels per display pixel, across and down (1, 1: square)."""
    frame, display = plan.frame_size, plan.source_size
    if min(*frame, *display) <= 0 or frame == display:
        return 1.0, 1.0
    return frame[0] / display[0], frame[1] / display[1]


def _room(plan: VideoPlan, width: int, height: int) -> tuple[int, int] | None:
    """How far a window of this size can move across and down inside the picture."""
    frame = _frame(plan)
    return None if frame is None else (frame[0] - width, frame[1] - height)


def path_expression(keys: Sequence[tuple[int, float, float]], axis: int, origin: int,
                    scale: float = 1.0, room: int | None = None) -> str:
    """One coordinate of a keyframed crop path as an ffmpeg expression of t (seconds
    of the variant, which starts at master millisecond `origin`): linear between
    keyframes, a step where two keyframes share a moment (a shot change). `scale`
    turns the path's display pixels into the picture's; with `room` (the farthest
    the window may go) the expression is clipped to [0, room], so that rounding in
    the expression can never move the window out of the picture.

    The terms are summed as a balanced tree of brackets: ffmpeg's expression
    parser refuses a flat sum of more than about a hundred terms ("Failed to
    configure input pad" on crop), which a long master's path exceeds, while
    brackets nest only log2(terms) deep (libavutil/eval.c)."""
    terms = [f"{keys[0][axis] * scale:g}"]
    for (t0, *a), (t1, *b) in zip(keys, keys[1:], strict=False):
        change = (b[axis - 1] - a[axis - 1]) * scale
        if change == 0:
            continue
        begin = (t0 - origin) / 1000
        if t1 == t0:
            terms.append(f"{change:+g}*gte(t,{begin:.4f})")
        else:
            length = (t1 - t0) / 1000
            terms.append(f"{change / length:+.4f}*clip(t-{begin:.4f},0,{length:.4f})")
    expression = _balanced_sum(terms)
    return expression if room is None else f"clip({expression},0,{room})"


def _balanced_sum(terms: Sequence[str]) -> str:
    """`terms` (each signed but the first) added up, bracketed in halves."""
    if len(terms) <= 8:
        return "".join(terms)
    half = len(terms) // 2      # the second half's first term keeps its sign: +(-x...)
    return f"({_balanced_sum(terms[:half])})+({_balanced_sum(terms[half:])})"


# HDR (PQ or HLG, BT.2020) to SDR BT.709 with a filmic curve, not a clip.
TONEMAP: tuple[tuple[str, tuple[str, ...], dict[str, Any]], ...] = (
    ("zscale", (), {"t": "linear", "npl": 100}), ("format", ("gbrpf32le",), {}),
    ("zscale", (), {"p": "bt709"}), ("tonemap", (), {"tonemap": "hable", "desat": 0}),
    ("zscale", (), {"t": "bt709", "m": "bt709", "r": "tv"}))


def _tonemap(node: Any) -> Any:
    for name, args, kwargs in TONEMAP:
        node = node.filter(name, *args, **kwargs)
    return node


def tonemap_filters() -> str:
    """The same tone-mapping as a -vf string (for single-frame extraction)."""
    return ",".join(f"{name}=" + ":".join([*args, *(f"{k}={v}" for k, v in kwargs.items())])
                    for name, args, kwargs in TONEMAP)


def _blur_pad(node: Any, plan: VideoPlan, scale_args: dict[str, str]) -> Any:
    width, height = plan.size
    split = node.filter_multi_output("split", 2)
    front, back = split[0], split[1]
    small_w, small_h = max(2, width // BLUR_SHRINK // 2 * 2), max(2, height // BLUR_SHRINK // 2 * 2)
    back = back.filter("scale", small_w, small_h, force_original_aspect_ratio="increase")
    back = back.filter("crop", small_w, small_h).filter("boxblur", 4, 2)
    back = back.filter("scale", width, height, flags="bicubic").filter("eq", brightness=-0.18)
    front = front.filter("scale", int(plan.placement.width), int(plan.placement.height),
                         **scale_args)
    return ffmpeg.overlay(back, front, x=int(plan.placement.left), y=int(plan.placement.top))


def _audio_chain(node: Any, plan: VideoPlan, offset: int, gain: Gain | None) -> Any:
    (start, end), = plan.segments
    node = node.filter("atrim", start=_seconds(start - offset), end=_seconds(end - offset))
    node = node.filter("asetpts", "PTS-STARTPTS")
    if gain is not None:
        node = node.filter("volume", f"{gain.db:.2f}dB")
        node = node.filter("alimiter", limit=f"{gain.limit:.4f}", level=0, latency=1)
    node = node.filter("aresample", plan.sample_rate)
    # As long as the picture: silence after a sound that ends early, and what the
    # resampler keeps back at the end (https://ffmpeg.org/ffmpeg-filters.html#apad).
    node = node.filter("apad", whole_dur=_seconds(end - start))
    layout = "stereo" if plan.channels == 2 else "mono"
    return node.filter("aformat", sample_fmts="fltp", channel_layouts=layout)


def rate(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


def encoder_args(plan: VideoPlan, metadata: str) -> dict[str, Any]:
    args: dict[str, Any] = {
        "f": "mp4", "c:v": "libx264", "preset": plan.speed, "crf": plan.crf,
        "profile:v": plan.profile, "g": plan.gop, "pix_fmt": "yuv420p",
        "color_primaries": "bt709", "color_trc": "bt709", "colorspace": "bt709",
        "color_range": "tv", "movflags": "+faststart",
        "map_metadata": 0 if metadata == "keep" else -1, "map_chapters": -1,
    }
    if plan.level:
        args["level:v"] = plan.level
    if plan.maxrate_kbps:
        args["maxrate"] = f"{plan.maxrate_kbps}k"
        args["bufsize"] = f"{plan.maxrate_kbps * 2}k"
    if plan.audio:
        args.update(_aac(plan))
    return args


def audio_args(plan: VideoPlan, metadata: str = "default") -> dict[str, Any]:
    """An audio-only MP4 of a plan's sound, for a variant whose picture is shared."""
    return {"f": "mp4", **_aac(plan), "map_metadata": -1, "map_chapters": -1}


def edit_args(plan: VideoPlan, metadata: str = "default") -> dict[str, Any]:
    """A lossless intermediate of a variant that an effect edits before its encode."""
    args = {"f": "matroska", "c:v": "libx264", "preset": "ultrafast", "qp": 0,
            "pix_fmt": "yuv420p", "color_primaries": "bt709", "color_trc": "bt709",
            "colorspace": "bt709", "color_range": "tv", "map_metadata": -1, "map_chapters": -1}
    if plan.audio:
        args.update({"c:a": "pcm_s16le", "ar": plan.sample_rate, "ac": plan.channels})
    return args


def _aac(plan: VideoPlan) -> dict[str, Any]:
    return {"c:a": "aac", "b:a": f"{plan.audio_kbps}k", "ar": plan.sample_rate,
            "ac": plan.channels}
