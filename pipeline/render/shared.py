"""Shared encodes: variants of one master whose picture chain and encoder
settings are identical and that differ only in their cut (a 15 s story
beside a 60 s reel of the same crop) are encoded once.

The longest of them, the carrier, is encoded with IDR frames forced at every
other member's start and end; each member then takes the carrier's packets
between its two IDR frames (no re-encoding) and its own audio, trimmed and
loudness-normalised in the same ffmpeg pass as everything else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from pipeline.errors import RenderError
from pipeline.model import VideoPlan

# What must be equal for two variants to share their picture.
PICTURE_FIELDS = ("size", "fit", "crop", "placement", "scale", "fps", "tonemap",
                  "source_matrix", "background", "crf", "speed", "profile", "level", "gop",
                  "maxrate_kbps", "path")


@dataclass(frozen=True)
class Family:
    carrier: int                  # index of the plan whose encode carries the others' pictures
    derived: tuple[int, ...]      # indices of the plans cut from it


def families(plans: Sequence[VideoPlan]) -> list[Family]:
    """Group the plans that can share a picture encode: same picture, and each
    kept range inside the carrier's. Plans left alone are in no family."""
    groups: dict[tuple[object, ...], list[int]] = {}
    for index, plan in enumerate(plans):
        burned = plan.subtitles is not None and plan.subtitles.burn
        if len(plan.segments) == 1 and not plan.effect and not burned:
            groups.setdefault(tuple(getattr(plan, f) for f in PICTURE_FIELDS), []).append(index)
    found = []
    for members in groups.values():
        left = sorted(members, key=lambda i: (-plans[i].duration_ms, i))
        while len(left) > 1:
            carrier, rest = left[0], left[1:]
            (start, end), = plans[carrier].segments
            inside = [i for i in rest if start <= plans[i].segments[0][0]
                      and plans[i].segments[0][1] <= end]
            if inside:
                found.append(Family(carrier, tuple(inside)))
            left = [i for i in rest if i not in inside]
    return found


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
