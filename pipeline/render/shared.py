"""Shared encodes: variants of one master that show the same picture are
encoded once.

Reels, TikTok, Shorts and Stories usually show the same 1080x1920 picture,
and differ only in caps: the highest bitrate, the longest keyframe interval,
the H.264 level. Variants whose picture chains are equal (size, crop and its
path, scaling, frame rate, burned subtitles) and that ask for the same
quality (crf, x264 speed, profile) form a group; the group is encoded once
with the strictest of its members' caps (lowest bitrate cap, shortest
keyframe interval, lowest level), so the one encode meets every member's
limits. A group splits where one member's cap would cost another visibly
(`tiers`, HEADROOM), and a preset can stay out (`share_encode: false`).

Within a group the longest member, the carrier, is encoded with IDR frames
forced at every other member's start and end; each member then takes the
carrier's packets between its two IDR frames (no re-encoding) and its own
audio, trimmed and loudness-normalised in the same ffmpeg pass as everything
else.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av

from pipeline.errors import RenderError
from pipeline.model import VideoPlan

# What must be equal for two variants to show the same picture at the same
# quality. Frame rates are part of the picture: a 60 fps master stays 60 fps
# where a preset allows it, so a lower cap elsewhere is another picture.
PICTURE_FIELDS = ("size", "fit", "crop", "placement", "scale", "fps", "tonemap",
                  "source_matrix", "background", "crf", "speed", "profile", "path",
                  "source_size", "frame_size")

# Where a cap costs a member visibly depends on the picture: on clean footage
# x264 at crf 20 spends far below any platform's cap, while on film grain a
# 25 Mbit/s cap on a picture that wants 55 costs 3 dB of PSNR (SSIM 0.95 to
# 0.90, measured on the bench's grain master at 1080x1920). So the line is
# drawn on what the picture needs: moments of it are encoded without a cap
# (TRIAL_MS at TRIAL_AT, in pipeline.render.passes), and a member whose own
# cap is higher (or none) joins a stricter cap only when the busiest of them
# spends at most HEADROOM of it; with a buffer of twice the cap, x264 then
# seldom meets it.
HEADROOM = 0.8
# Caps this close are one cap: 24938 and 25000 kbit/s are two presets'
# roundings of one platform limit.
SAME_CAP = 0.9
# Shared subtitles may lose at most a fifth of a member's own width or height:
# more, and lines break where the member alone would not need them to.
SUBTITLE_ROOM = 0.8


@dataclass(frozen=True)
class Caps:
    """The encoder limits one shared encode meets for all its members."""

    gop: int                     # frames between keyframes, at most
    maxrate_kbps: int | None
    level: str | None

    @classmethod
    def strictest(cls, plans: Sequence[VideoPlan]) -> Caps:
        rates = [p.maxrate_kbps for p in plans if p.maxrate_kbps]
        levels = [p.level for p in plans if p.level]
        return cls(min(p.gop for p in plans), min(rates) if rates else None,
                   min(levels, key=float) if levels else None)

    def on(self, plan: VideoPlan) -> VideoPlan:
        """`plan` encoded under these limits."""
        return replace(plan, gop=self.gop, maxrate_kbps=self.maxrate_kbps, level=self.level)

    def tighter(self, plan: VideoPlan) -> tuple[str, ...]:
        """What these limits change for `plan`, in words (empty: nothing)."""
        out = []
        if self.gop < plan.gop:
            out.append(f"a keyframe every {self.gop} frames instead of {plan.gop}")
        if self.maxrate_kbps and (plan.maxrate_kbps is None
                                  or self.maxrate_kbps < plan.maxrate_kbps):
            out.append(f"at most {self.maxrate_kbps} kbit/s")
        if self.level and (plan.level is None or float(self.level) < float(plan.level)):
            out.append(f"H.264 level {self.level}")
        return tuple(out)


@dataclass(frozen=True)
class Family:
    carrier: int                  # index of the plan whose encode carries the others' pictures
    derived: tuple[int, ...]      # indices of the plans taken from it
    caps: Caps | None = None      # the carrier's encode limits; None: its own


def picture(plan: VideoPlan, frame: bool = True) -> tuple[object, ...] | None:
    """What makes two plans' pictures the same (None: this plan never shares).
    Without `frame`, burned subtitles that differ only in where they may stand
    count as the same (they can be laid out in the intersection)."""
    if len(plan.segments) != 1 or plan.effect or not plan.share:
        return None
    subtitles: tuple[object, ...] | None = None
    if plan.subtitles is not None and plan.subtitles.burn:
        subs = plan.subtitles
        # Burned text is timed on the variant's own clock: members share it only
        # when they keep the same range of the master.
        subtitles = ((subs.style, plan.segments, subs.frame, subs.cues) if frame
                     else (subs.style, plan.segments))
    return (*(getattr(plan, f) for f in PICTURE_FIELDS), subtitles)


Needs = Mapping[tuple[object, ...], float]   # kbit/s a picture spends uncapped, by picture()


def tiers(plans: Sequence[VideoPlan], needs: Needs | None = None,
          frame: bool = True) -> list[list[int]]:
    """The plans that can share one picture encode, in groups of two or more: the
    same picture, and no member under a bitrate cap that would cost it visibly.
    Members are taken from the strictest cap up; one whose own cap is higher (or
    none) joins while the group's cap is within SAME_CAP of its own, or the
    picture's need (`needs`; not measured: unknown) fits HEADROOM of it. With
    `needs` None, caps are not weighed at all (planning, before any trial)."""
    out = []
    for key, members in _by_picture(plans, frame).items():
        members.sort(key=lambda i: (plans[i].maxrate_kbps or math.inf, i))
        need = needs.get(key) if needs is not None else 0.0
        tier: list[int] = []
        for index in members:
            if tier and costs(plans[tier[0]].maxrate_kbps, plans[index], need):
                out.append(tier)
                tier = []
            tier.append(index)
        out.append(tier)
    return [t for t in out if len(t) > 1]


def _by_picture(plans: Sequence[VideoPlan], frame: bool = True
                ) -> dict[tuple[object, ...], list[int]]:
    """The indices of the plans that may share, by picture()."""
    same: dict[tuple[object, ...], list[int]] = {}
    for index, plan in enumerate(plans):
        key = picture(plan, frame)
        if key is not None:
            same.setdefault(key, []).append(index)
    return same


def costs(cap: int | None, plan: VideoPlan, need: float | None) -> bool:
    """Whether encoding `plan` under the bitrate cap `cap` could look worse than
    under its own, for a picture that spends `need` kbit/s uncapped (None: not
    known)."""
    own = plan.maxrate_kbps
    if cap is None or (own is not None and cap >= SAME_CAP * own):
        return False
    return need is None or need > HEADROOM * cap


def weighed(plans: Sequence[VideoPlan]) -> dict[tuple[object, ...], list[int]]:
    """Pictures whose members' caps differ enough that sharing depends on what
    the picture needs (a trial encode tells): by picture(), their plan indices."""
    out = {}
    for key, members in _by_picture(plans).items():
        strictest = min((plans[i].maxrate_kbps or math.inf for i in members), default=math.inf)
        if strictest < math.inf and any(costs(int(strictest), plans[i], None) for i in members):
            out[key] = members
    return out


def families(plans: Sequence[VideoPlan], needs: Needs | None = None) -> list[Family]:
    """Group the plans that share a picture encode: one tier (`needs`: what each
    weighed picture spends uncapped), and each kept range inside the carrier's.
    Plans left alone are in no family."""
    found = []
    for members in tiers(plans, needs if needs is not None else {}):
        left = sorted(members, key=lambda i: (-plans[i].duration_ms, i))
        while len(left) > 1:
            carrier, rest = left[0], left[1:]
            (start, end), = plans[carrier].segments
            inside = [i for i in rest if start <= plans[i].segments[0][0]
                      and plans[i].segments[0][1] <= end]
            if inside:
                found.append(Family(carrier, tuple(inside), Caps.strictest(
                    [plans[i] for i in (carrier, *inside)])))
            left = [i for i in rest if i not in inside]
    return found


def peer_keys(plans: Sequence[VideoPlan]) -> dict[int, str]:
    """Render keys that also name each plan's possible encode partners: what a
    shared encode writes depends on who shares it (their caps), so a variant is
    rendered again when they change. By plan index; plans that share with
    nobody keep their key."""
    out = {}
    for tier in tiers(plans):                # caps not weighed: the trial is the same
        for index in tier:
            peers = sorted(plans[i].key for i in tier if i != index)
            out[index] = hashlib.sha256("|".join([plans[index].key, *peers]).encode()
                                        ).hexdigest()
    return out


def shared_frames(plans: Sequence[VideoPlan]) -> dict[int, tuple[float, float, float, float]]:
    """Where burned subtitles stand so that they do not split a group: for plans
    whose pictures differ only there, the intersection of their frames, when it
    keeps at least SUBTITLE_ROOM of each one's own width and height. By plan
    index; plans not listed keep their own frame."""
    out: dict[int, tuple[float, float, float, float]] = {}
    for tier in tiers(plans, frame=False):   # caps not weighed: no trial yet
        framed = [i for i in tier if plans[i].subtitles is not None
                  and plans[i].subtitles.burn]                    # type: ignore[union-attr]
        frames = [plans[i].subtitles.frame for i in framed]      # type: ignore[union-attr]
        if len(set(frames)) < 2:
            continue
        common = (max(f[0] for f in frames), max(f[1] for f in frames),
                  min(f[2] for f in frames), min(f[3] for f in frames))
        if all(common[2] - common[0] >= SUBTITLE_ROOM * (f[2] - f[0])
               and common[3] - common[1] >= SUBTITLE_ROOM * (f[3] - f[1]) for f in frames):
            out.update(dict.fromkeys(framed, common))
    return out


def frame_edge(ms: int, fps: Fraction) -> Fraction:
    """Seconds halfway before the first frame at or after `ms` of an output: a
    keyframe forced there, and a cut made there, fall on that same frame."""
    frame = math.ceil(Fraction(ms, 1000) * fps - Fraction(1, 1000))
    return (frame - Fraction(1, 2)) / fps


def keyframes(plans: Sequence[VideoPlan], family: Family) -> tuple[float, ...]:
    """Seconds of the carrier's output where each member starts and ends."""
    carrier = plans[family.carrier]
    (origin, end), = carrier.segments
    times = {edge for i in family.derived for edge in plans[i].segments[0]}
    return tuple(sorted(float(frame_edge(t - origin, carrier.fps)) for t in times
                        if origin < t < end))


def derive(carrier_file: Path, carrier: VideoPlan, member: VideoPlan, audio: Path | None,
           target: Path, label: str) -> None:
    """Write `member` from the carrier's packets of its range and its own audio."""
    (origin, _), = carrier.segments
    (start, end), = member.segments
    low, high = (frame_edge(t - origin, carrier.fps) for t in (start, end))
    with ExitStack() as stack:
        source = stack.enter_context(av.open(str(carrier_file)))
        out = stack.enter_context(av.open(str(target), "w", format="mp4",
                                          options={"movflags": "+faststart"}))
        picture = source.streams.video[0]
        picture_out = out.add_stream_from_template(picture)
        sound = stack.enter_context(av.open(str(audio))) if audio is not None else None
        sound_out = out.add_stream_from_template(sound.streams.audio[0]) if sound else None
        base = picture.time_base or Fraction(1, 90000)
        first, last = math.ceil(low / base), math.ceil(high / base)
        source.seek(first, stream=picture, backward=True)
        offset = None
        for packet in source.demux(picture):
            if packet.pts is None or packet.dts is None:
                continue
            if packet.dts >= last:
                break
            if not first <= packet.pts < last:
                continue
            if offset is None:
                if not packet.is_keyframe:
                    raise RenderError(f"the shared encode has no keyframe at "
                                      f"{start / 1000:.3f} s", path=label, preset=member.preset,
                                      hint="please report this; REPURPOSE_DEBUG=1 shows more")
                offset = packet.pts
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = picture_out
            out.mux(packet)
        if sound is not None and sound_out is not None:
            for packet in sound.demux(sound.streams.audio[0]):
                if packet.dts is not None:
                    packet.stream = sound_out
                    out.mux(packet)
