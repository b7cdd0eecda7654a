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

When ffmpeg fails the pass, each variant's chain is tried alone on a moment of
the master (the failure path only): a variant that cannot be rendered fails
with its own reason, and the pass runs again without it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import ffmpeg

from pipeline.errors import RenderError
from pipeline.ffmpeg import FfmpegError, compile_argv, ffmpeg_exe, first_error, run_ffmpeg
from pipeline.loudness import Gain, Measured, gain_for, measure
from pipeline.model import VideoPlan
from pipeline.render.effects import apply_effect
from pipeline.render.shared import derive, families, keyframes
from pipeline.subtitles.files import write_ass
from pipeline.subtitles.layout import FONTS, Frame, styles
from pipeline.subtitles.plan import cues_of

BLUR_SHRINK = 8            # the blur-pad backdrop is blurred at 1/8 of the frame
RENORMALISE_DB = 1.0       # an effect's output further off its loudness target is corrected


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
    stream = ffmpeg.input(str(source), ss=_seconds(first), t=_seconds(length))
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
    the expression can never move the window out of the picture."""
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
    expression = "".join(terms)
    return expression if room is None else f"clip({expression},0,{room})"


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


def encode_all(source: Path, plans: Sequence[VideoPlan], outputs: Sequence[Path], label: str,
               metadata: str = "default",
               folders: Sequence[Path] = ()) -> Encoded:
    """Render every plan into its output path with one ffmpeg run (variants that
    differ only in their cut share one picture encode; a variant with an effect
    gets a lossless copy from the pass, edited and encoded by its effect, whose
    module is looked up in `folders` first). What befell single variants is
    returned by plan index: a variant ffmpeg cannot render (the others are
    rendered without it), a derivation that failed (its output is not written),
    an effect that failed (the variant is written without it, and noted). A
    failure of the pass that is no single variant's fault raises."""
    for target in outputs:
        target.parent.mkdir(parents=True, exist_ok=True)
    measured = _measure_segments(source, plans)
    gains = [gain_for(m, *p.loudness) if p.loudness and p.audio else None
             for m, p in zip(measured, plans, strict=True)]
    scratch = Path(tempfile.mkdtemp(prefix="repurpose-ass-"))
    burn = {i: scratch / f"{i}.ass" for i, plan in enumerate(plans)
            if plan.subtitles and plan.subtitles.burn}
    try:
        for index, ass in burn.items():
            write_burn(plans[index], ass)
        done = _isolating(Pass(source.absolute(), plans, outputs, label, metadata, folders,
                               gains, burn))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for index in done.failures:
        outputs[index].unlink(missing_ok=True)
    return done


@dataclass(frozen=True)
class Pass:
    """Everything one master's render needs, by plan index."""

    source: Path                       # absolute: a name starting with "-" is never an option
    plans: Sequence[VideoPlan]
    outputs: Sequence[Path]
    label: str
    metadata: str
    folders: Sequence[Path]
    gains: Sequence[Gain | None]
    burn: dict[int, Path]              # the ASS file burned into a plan's picture


TRIAL_SECONDS = 0.3     # of the master, read by each variant's trial after a failed pass


def _isolating(work: Pass) -> Encoded:
    """One pass over every plan. When ffmpeg fails it, each variant's chain is tried
    alone on a moment of the master, into nothing: those that fail on their own
    fail with their reason, and the pass is run again without them. When none, or
    all, fail alone, the fault is not one variant's (a full disk, a damaged master)
    and the pass's error stands for every variant."""
    everyone = list(range(len(work.plans)))
    try:
        return _encode(work, everyone)
    except FfmpegError:
        faults = {i: fault for i in everyone if (fault := _trial(work, i)) is not None}
        if not faults or len(faults) == len(everyone):
            raise
    rest = [i for i in everyone if i not in faults]
    try:
        done = _encode(work, rest)
    except RenderError as again:
        done = Encoded(failures={i: again for i in rest})
    done.failures.update(faults)
    return done


def _trial(work: Pass, index: int) -> FfmpegError | None:
    """Why ffmpeg cannot render this variant on its own, or None when it can."""
    plan = work.plans[index]
    argv = build_argv(work.source, [plan], [Path(os.devnull)], ffmpeg_exe(), work.metadata,
                      [work.gains[index]], burn=[work.burn.get(index)], trial=TRIAL_SECONDS)
    try:
        run_ffmpeg(argv, work.label)
    except FfmpegError as exc:
        return FfmpegError(f"ffmpeg cannot render this variant: {first_error(exc.stderr_tail)} "
                           f"(the master's other variants were rendered without this one)",
                           argv=exc.argv, stderr_tail=exc.stderr_tail, path=work.label,
                           preset=plan.preset, hint=exc.hint)
    return None


def _encode(work: Pass, chosen: Sequence[int]) -> Encoded:
    """The pass over the `chosen` plans, then what follows it for each (cuts from a
    shared encode, effects). Raises FfmpegError when the pass fails."""
    plans = [work.plans[i] for i in chosen]
    outputs = [work.outputs[i] for i in chosen]
    shared = families(plans)
    derived = {i: family for family in shared for i in family.derived}
    sounds = {i: outputs[i].with_name(outputs[i].name + ".m4a") for i in derived
              if plans[i].audio}
    edits = {i: outputs[i].with_name(outputs[i].name + ".edit.mkv")
             for i, plan in enumerate(plans) if plan.effect}
    # Derived variants without audio need nothing from the pass; the rest do.
    run = [i for i in range(len(plans)) if i not in derived or i in sounds]
    marks = {family.carrier: keyframes(plans, family) for family in shared}
    first, last = span(plans)
    roles: list[Role] = ["audio" if i in derived else "edit" if i in edits else "final"
                         for i in run]
    try:
        run_ffmpeg(build_argv(work.source, [plans[i] for i in run],
                              [sounds.get(i, edits.get(i, outputs[i])).absolute() for i in run],
                              ffmpeg_exe(), work.metadata, [work.gains[chosen[i]] for i in run],
                              roles=roles, keyframes=[marks.get(i, ()) for i in run],
                              burn=[work.burn.get(chosen[i]) for i in run]), work.label,
                   seconds=(last - first) / 1000)
        done = Encoded()
        for index, family in derived.items():
            try:
                derive(outputs[family.carrier], plans[family.carrier], plans[index],
                       sounds.get(index), outputs[index], work.label)
            except (RenderError, av.FFmpegError) as exc:
                done.failures[index] = _failed_step(exc, plans[index], work.label)
        for index, edit in edits.items():
            _finish_effect(work, plans[index], edit, outputs[index], done, index)
    finally:
        for leftover in (*sounds.values(), *edits.values()):
            leftover.unlink(missing_ok=True)
    return Encoded({chosen[i]: e for i, e in done.failures.items()},
                   {chosen[i]: n for i, n in done.notes.items()})


def _finish_effect(work: Pass, plan: VideoPlan, edit: Path, target: Path, done: Encoded,
                   index: int) -> None:
    """Apply a variant's effect to its lossless copy; a failed hook never loses the
    render: the variant is then encoded without it, and says so."""
    try:
        apply_effect(plan, edit, target, work.folders, work.label)
        renormalise(plan, target, work.metadata, work.label)
    except RenderError as exc:
        try:
            run_ffmpeg(finish_argv(plan, edit, target, work.metadata), work.label)
        except RenderError as again:
            done.failures[index] = again
            return
        done.notes[index] = f"{exc.message}; rendered without the effect ({exc.hint})"


@dataclass
class Encoded:
    """What befell single variants after the pass, by plan index."""

    failures: dict[int, RenderError] = field(default_factory=dict)   # not written
    notes: dict[int, str] = field(default_factory=dict)              # written, with a note


def write_burn(plan: VideoPlan, target: Path) -> None:
    """The ASS file libass burns into one variant."""
    assert plan.subtitles is not None
    subs = plan.subtitles
    left, top, right, bottom = subs.frame
    frame = Frame(plan.size[0], plan.size[1], left, top, right, bottom)
    write_ass(cues_of(subs), styles()[subs.style], frame, target)


def renormalise(plan: VideoPlan, target: Path, metadata: str, label: str) -> None:
    """Bring an effect's output back to the preset's loudness when the effect
    changed it (fades, music): the audio is re-encoded, the picture copied."""
    if not (plan.audio and plan.loudness):
        return
    gain = gain_for(measure(target), *plan.loudness)
    if abs(gain.db) < RENORMALISE_DB and gain.limit >= 1.0:
        return
    fixed = target.with_name(target.name + ".loud.mp4")
    stream = ffmpeg.input(str(target.absolute()))
    sound = stream.audio.filter("volume", f"{gain.db:.2f}dB").filter(
        "alimiter", limit=f"{gain.limit:.4f}", level=0, latency=1)
    args = {**audio_args(plan), "f": "mp4", "c:v": "copy", "movflags": "+faststart",
            "map_metadata": 0}
    try:
        run_ffmpeg(compile_argv(ffmpeg.output(stream.video, sound, str(fixed.absolute()),
                                              **args), ffmpeg_exe()), label)
        os.replace(fixed, target)
    finally:
        fixed.unlink(missing_ok=True)


def finish_argv(plan: VideoPlan, edit: Path, target: Path, metadata: str) -> list[str]:
    """Encode a variant's lossless intermediate with its preset's settings as it is."""
    stream = ffmpeg.input(str(edit.absolute()))
    return compile_argv(ffmpeg.output(stream, str(target.absolute()),
                                      **encoder_args(plan, metadata)), ffmpeg_exe())


def _failed_step(exc: Exception, plan: VideoPlan, label: str) -> RenderError:
    if isinstance(exc, RenderError):
        return exc
    return RenderError(f"cutting from the shared encode failed: {exc}", path=label,
                       preset=plan.preset, hint="render again with --force; please report it")


def _measure_segments(source: Path, plans: Sequence[VideoPlan]) -> list[Measured | None]:
    """One audio-only meter run per distinct kept segment that has a loudness target."""
    cache: dict[tuple[int, int], Measured | None] = {}
    out: list[Measured | None] = []
    for plan in plans:
        if not (plan.audio and plan.loudness):
            out.append(None)
            continue
        (segment,) = plan.segments
        if segment not in cache:
            cache[segment] = measure(source, *segment)
        out.append(cache[segment])
    return out
