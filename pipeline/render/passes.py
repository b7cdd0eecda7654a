"""Running one master's ffmpeg pass (graph from pipeline.render.video) and what
follows it: cuts from a shared encode, effects on their lossless copies, and
loudness brought back after an effect.

When ffmpeg fails the pass, each variant's chain is tried alone on a moment of
the master (the failure path only): a variant that cannot be rendered fails
with its own reason, and the pass runs again without it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import ffmpeg

from pipeline import progress
from pipeline.errors import RenderError, write_error
from pipeline.ffmpeg import (
    FfmpegDied,
    FfmpegError,
    compile_argv,
    ffmpeg_exe,
    first_error,
    run_ffmpeg,
)
from pipeline.loudness import Gain, Measured, measure, settled
from pipeline.model import VideoPlan
from pipeline.outputs import claim, side_path
from pipeline.render.effects import apply_effect
from pipeline.render.memory import budget_mib, passes, planned_mib
from pipeline.render.shared import Family, Needs, derive, families, keyframes, weighed
from pipeline.render.video import Role, audio_args, build_argv, encoder_args, span
from pipeline.scratch import scratch
from pipeline.subtitles.files import write_ass
from pipeline.subtitles.layout import Frame, styles
from pipeline.subtitles.plan import cues_of
from pipeline.timings import timed

RENORMALISE_DB = 1.0       # an effect's output further off its loudness target is corrected


def encode_all(source: Path, plans: Sequence[VideoPlan], outputs: Sequence[Path], label: str,
               metadata: str = "default",
               folders: Sequence[Path] = ()) -> Encoded:
    """Render every plan into its output path with one ffmpeg run (more only when
    the memory budget asks; variants that show the same picture share one
    encode, pipeline.render.shared; a variant with an effect
    gets a lossless copy from the pass, edited and encoded by its effect, whose
    module is looked up in `folders` first). What befell single variants is
    returned by plan index: a variant ffmpeg cannot render (the others are
    rendered without it), a derivation that failed (its output is not written),
    an effect that failed (the variant is written without it, and noted). A
    failure of the pass that is no single variant's fault raises."""
    for target in outputs:
        target.parent.mkdir(parents=True, exist_ok=True)
    with timed("loudness", label):
        gains = _gains(source, plans)
    with scratch("ass") as folder:
        burn = {i: folder / f"{i}.ass" for i, plan in enumerate(plans)
                if plan.subtitles and plan.subtitles.burn}
        for index, ass in burn.items():
            write_burn(plans[index], ass)
        with timed("share trial", label):
            needs = _needs(source.absolute(), plans, label)
        done = _isolating(Pass(source.absolute(), plans, outputs, label, metadata, folders,
                               gains, burn, needs, budget_mib()))
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
    needs: Needs                       # kbit/s a weighed picture spends uncapped
    limit_mib: float                   # memory one ffmpeg pass may plan to use


TRIAL_SECONDS = 0.3     # of the master, read by each variant's trial after a failed pass


def _isolating(work: Pass, shrinks: int = 2) -> Encoded:
    """One pass over every plan. When ffmpeg fails it, each variant's chain is tried
    alone on a moment of the master, into nothing: those that fail on their own
    fail with their reason, and the pass is run again without them. When none, or
    all, fail alone, the fault is not one variant's (a full disk, a damaged master)
    and the pass's error stands for every variant. An ffmpeg killed by a signal
    (most often the kernel's out-of-memory killer) is run again in passes planned
    for half the memory, `shrinks` times at most."""
    everyone = list(range(len(work.plans)))
    try:
        return _encode(work, everyone)
    except FfmpegDied:
        if not shrinks:
            raise
        return _isolating(replace(work, limit_mib=work.limit_mib / 2), shrinks - 1)
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
    shared = families(plans, work.needs)
    derived = {i: family for family in shared for i in family.derived}
    notes = _shared_notes(plans, shared)
    # A carrier is encoded under its family's strictest caps.
    encoded = list(plans)
    for family in shared:
        if family.caps is not None:
            encoded[family.carrier] = family.caps.on(plans[family.carrier])
    sounds = {i: claim(side_path(outputs[i], "m4a")) for i in derived
              if plans[i].audio}
    edits = {i: claim(side_path(outputs[i], "edit"))
             for i, plan in enumerate(plans) if plan.effect}
    # Derived variants without audio need nothing from the pass; the rest do.
    run = [i for i in range(len(plans)) if i not in derived or i in sounds]
    marks = {family.carrier: keyframes(plans, family) for family in shared}
    roles: list[Role] = ["audio" if i in derived else "edit" if i in edits else "final"
                         for i in run]
    try:
        _run_passes(work, [encoded[i] for i in run],
                    [sounds.get(i, edits.get(i, outputs[i])).absolute() for i in run],
                    [chosen[i] for i in run], roles, [marks.get(i, ()) for i in run])
        done = Encoded(notes=notes)
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


def _run_passes(work: Pass, plans: Sequence[VideoPlan], targets: Sequence[Path],
                indices: Sequence[int], roles: Sequence[Role],
                marks: Sequence[Sequence[float]]) -> None:
    """Run ffmpeg over these outputs (`indices`: their plans' places in `work`), in
    as few passes as the memory budget allows: one, mostly. Raises FfmpegError."""
    # An effect's lossless copy is encoded at ultrafast, whatever its preset says.
    weighed_plans = [plan if role != "edit" else replace(plan, speed="ultrafast")
                     for plan, role in zip(plans, roles, strict=True)]
    pictured = [role != "audio" for role in roles]
    batches = passes(weighed_plans, pictured, work.limit_mib)
    for number, batch in enumerate(batches):
        first, last = span([plans[n] for n in batch])
        expected = round(planned_mib(weighed_plans, pictured, batch))
        with (timed("pass", work.label, planned_mib=expected, outputs=len(batch)),
              progress.within(number / len(batches), (number + 1) / len(batches))):
            run_ffmpeg(build_argv(
                work.source, [plans[n] for n in batch], [targets[n] for n in batch],
                ffmpeg_exe(), work.metadata, [work.gains[indices[n]] for n in batch],
                roles=[roles[n] for n in batch], keyframes=[marks[n] for n in batch],
                burn=[work.burn.get(indices[n]) for n in batch]), work.label,
                seconds=(last - first) / 1000)


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


TRIAL_MS = 1000             # of a picture, encoded without a cap to learn what it spends,
TRIAL_AT = (1 / 6, 1 / 2, 5 / 6)    # at each of these points of it: the busiest counts


def _needs(source: Path, plans: Sequence[VideoPlan], label: str) -> dict[tuple[object, ...], float]:
    """What each picture whose members' caps differ spends without a cap, in
    kbit/s: TRIAL_MS at each of TRIAL_AT of its longest member (a calm middle
    must not hide busy ends), encoded as the group would be (its crf, speed and
    shortest keyframe interval) but uncapped; the most any of them spends. A
    trial that fails, or that holds no picture, leaves its picture unknown (its
    members then keep their own caps)."""
    needs = {}
    for key, members in weighed(plans).items():
        plan = plans[max(members, key=lambda i: plans[i].duration_ms)]
        (start, end), = plan.segments
        spent = []
        for at in TRIAL_AT:
            begin = start + max(0, round((end - start) * at) - TRIAL_MS // 2)
            stop = min(end, begin + TRIAL_MS)
            spent.append(_spends(source, replace(
                plan, segments=((begin, stop),), audio=False, maxrate_kbps=None, level=None,
                gop=min(plans[i].gop for i in members), subtitles=None), label))
        if all(kbps is not None for kbps in spent):
            needs[key] = max(kbps for kbps in spent if kbps is not None)
    return needs


def _spends(source: Path, plan: VideoPlan, label: str) -> float | None:
    """kbit/s the picture of `plan` takes, encoded; None when it cannot be told."""
    with scratch("trial") as folder:
        target = folder / "trial.mp4"
        try:
            run_ffmpeg(build_argv(source, [plan], [target], ffmpeg_exe()), label)
            with av.open(str(target)) as made:
                sizes = [packet.size for packet in made.demux(video=0) if packet.size]
        except (FfmpegError, av.FFmpegError, IndexError):
            return None
    # bits over the frames' own duration: a frozen or missing picture is no measure
    return sum(sizes) * 8 * float(plan.fps) / len(sizes) / 1000 if len(sizes) > 1 else None


def _shared_notes(plans: Sequence[VideoPlan], shared: Sequence[Family]) -> dict[int, str]:
    """What a shared encode changed for each member whose own caps were looser."""
    notes = {}
    for family in shared:
        members = (family.carrier, *family.derived)
        for index in members:
            changes = family.caps.tighter(plans[index]) if family.caps else ()
            if changes:
                others = sorted({plans[i].preset for i in members} - {plans[index].preset})
                notes[index] = (f"encoded once with {', '.join(others)} (the same picture), "
                                f"so under their stricter caps: {'; '.join(changes)}")
    return notes


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
    gain = settled(target, measure(target), *plan.loudness)
    if abs(gain.db) < RENORMALISE_DB and gain.limit >= 1.0:
        return
    fixed = claim(side_path(target, "loud"))
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
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return write_error(exc, plan.output, path=label, preset=plan.preset)
    return RenderError(f"cutting from the shared encode failed: {exc}", path=label,
                       preset=plan.preset, hint="render again with --force; please report it")


def _gains(source: Path, plans: Sequence[VideoPlan]) -> list[Gain | None]:
    """Each plan's gain and limiter: one audio-only meter run per distinct kept
    segment with a loudness target (more where the limiter will act)."""
    measured: dict[tuple[int, int], Measured | None] = {}
    settled_: dict[tuple[tuple[int, int], float, float], Gain] = {}
    out: list[Gain | None] = []
    for plan in plans:
        if not (plan.audio and plan.loudness):
            out.append(None)
            continue
        (segment,) = plan.segments
        if segment not in measured:
            measured[segment] = measure(source, *segment)
        key = (segment, *plan.loudness)
        if key not in settled_:
            settled_[key] = settled(source, measured[segment], *plan.loudness, *segment)
        out.append(settled_[key])
    return out
