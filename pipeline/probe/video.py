"""Video probe with PyAV: a typed VideoInfo, and damaged files caught here.

Reads the container and stream headers (a master lasts until its last stream
ends; its picture's own length is kept beside that), decodes the first frame
(proving the codec is readable and giving the display rotation), samples
packet timing for variable frame rate, and reads the packets near the end so
a truncated file is reported now, not halfway through an encode.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.ffmpeg import CONTENT_INPUT
from pipeline.model import Asset, AudioStream, SubtitleStream, VideoInfo

# FFmpeg's AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace codes.
PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
             8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432",
             22: "ebu3213"}
TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m",
             8: "linear", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12",
             16: "smpte2084", 18: "arib-std-b67"}
SPACES = {0: "rgb", 1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc",
          10: "bt2020c", 14: "ictcp"}
HDR = {16: "pq", 18: "hlg"}
TEXT_SUBTITLES = {"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text", "ttml"}
TIMING_SAMPLE = 600                  # packets looked at for frame-rate regularity
MAX_REORDER = 16                     # frames a decoder may hold back (H.264/HEVC DPB size)
MAX_SIDE, MAX_PIXELS = 8192, 8192 * 4352   # DCI 8K, the largest a camera records
MAX_STRETCH = 4                      # pixel aspect: anamorphic lenses squeeze 2:1 at most
TAIL_SECONDS = 3.0                   # how much of the end is read back for truncation


def probe_video(asset: Asset) -> VideoInfo:
    """VideoInfo of a video master, or InputError saying why it cannot be used."""
    import av  # loaded on first use: photo-only runs never need it

    label = asset.label
    try:
        container = av.open(str(asset.path.absolute()), metadata_errors="ignore",
                            options=dict(CONTENT_INPUT))
    except av.FFmpegError as exc:
        kinds = _top_level_boxes(asset.path)
        if b"ftyp" in kinds[:2] and b"moov" not in kinds:
            raise InputError("is truncated or still being written: its index (moov) is missing",
                             path=label, hint="wait for the export or copy to finish, or "
                                              "export it again") from exc
        raise InputError(f"not a readable video: {_reason(exc)}", path=label,
                         hint="export it again as MP4 (H.264) or MOV (ProRes)") from exc
    with container:
        if not container.streams.video:
            raise InputError("has no video stream", path=label,
                             hint="audio-only files are not masters; export with video")
        stream = container.streams.video[0]
        _check_size(stream, label)          # before a frame is decoded: that is the cost
        first = _first_frame(container, stream, label)
        picture_ms = _stream_ms(stream)
        duration_ms = _duration_ms(container, picture_ms)
        variable = _variable_rate(container, stream)
        _check_tail(container, stream, picture_ms or duration_ms, label)
        return _info(container, stream, first, (duration_ms, picture_ms), variable,
                     asset.path)


def _check_size(stream: Any, label: str) -> None:
    """Refuse pictures no platform takes and that would cost gigabytes per frame: over
    8K (8192 px a side, 8192x4352 pixels), or pixels stretched more than 4:1 (a 640x360
    clip with a 1:250 pixel shape would be shown 90000 px tall)."""
    ctx = stream.codec_context
    width, height = ctx.width or 0, ctx.height or 0
    sar = Fraction(stream.sample_aspect_ratio or 1) or Fraction(1)
    if width <= 0 or height <= 0:
        raise InputError("has a picture without a size", path=label,
                         hint="export it again as MP4 (H.264) or MOV (ProRes)")
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise InputError(f"is {width}x{height}, larger than 8K", path=label,
                         hint="export it at 8K (7680x4320) or smaller")
    if not Fraction(1, MAX_STRETCH) <= sar <= MAX_STRETCH:
        raise InputError(f"has pixels stretched {sar.numerator}:{sar.denominator}", path=label,
                         hint="export it again with square pixels")


def _info(container: Any, stream: Any, first: Any, lengths: tuple[int, int], variable: bool,
          path: Path) -> VideoInfo:
    ctx = stream.codec_context
    rotation = round((first.rotation or 0) / 90) * 90 % 360
    sar = Fraction(stream.sample_aspect_ratio or 1) or Fraction(1)
    width = round(ctx.width * sar) if sar > 1 else ctx.width
    height = round(ctx.height / sar) if sar < 1 else ctx.height
    if rotation in (90, 270):
        width, height = height, width
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate or 0
    return VideoInfo(
        container=container.format.name, width=width, height=height,
        coded_width=ctx.width, coded_height=ctx.height, rotation=rotation,
        sample_aspect=sar, duration_ms=lengths[0], picture_ms=lengths[1], fps=Fraction(rate),
        variable_fps=variable, codec=ctx.name, pix_fmt=first.format.name,
        bit_depth=max((c.bits for c in first.format.components), default=8),
        color_primaries=PRIMARIES.get(ctx.color_primaries),
        color_transfer=TRANSFERS.get(ctx.color_trc),
        color_space=SPACES.get(ctx.colorspace),
        hdr=HDR.get(ctx.color_trc),  # type: ignore[arg-type]
        faststart=_faststart(path) if "mp4" in container.format.name else None,
        audio=tuple(_audio(a) for a in container.streams.audio),
        subtitles=tuple(_subtitle(s) for s in container.streams.subtitles),
    )


def _first_frame(container: Any, stream: Any, label: str) -> Any:
    import av

    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as exc:
        raise InputError(f"cannot decode its video: {_reason(exc)}", path=label,
                         hint="the file is damaged or uses a codec FFmpeg cannot read; "
                              "export it again as H.264 or ProRes") from exc
    raise InputError("has no decodable video frames", path=label,
                     hint="export or copy it again")


def _stream_ms(stream: Any) -> int:
    """How long one stream plays, by its header (0 when it does not say)."""
    if stream.duration and stream.time_base:
        return int(round(stream.duration * stream.time_base * 1000))
    return 0


def _duration_ms(container: Any, picture_ms: int) -> int:
    """Until the master's last stream ends: the container's duration. A variable
    frame rate master's last picture often ends before its sound (its own duration
    is a guess), and the master's last moment is when the sound ends."""
    whole = int(round(container.duration / 1000)) if container.duration else 0  # microseconds
    return max(whole, picture_ms)


def _variable_rate(container: Any, stream: Any) -> bool:
    """True when frame durations in the first packets differ by more than 5 %."""
    stamps = _display_sample(container, stream)
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if b > a]
    if len(steps) < 3:
        return False
    steps.sort()
    typical = steps[len(steps) // 2]
    return any(abs(step - typical) > max(1, typical * 0.05) for step in steps)


def _display_sample(container: Any, stream: Any) -> list[int]:
    """The presentation times of the first frames, in display order and without gaps.

    Packets come in decode order, and with B-frames a reference frame is sent before
    the frames shown ahead of it: the last packets of a sample show frames whose
    neighbours in display order are not read yet, which would look like a missing
    frame. Every frame shown at or before the last packet's decode time has been
    read (decode times only grow and never pass presentation times), so the sample
    is cut there; without decode times, the deepest reordering H.264/HEVC allow is
    dropped from its end.
    """
    container.seek(0, stream=stream)
    stamps, last_dts, ended = [], None, True
    for packet in container.demux(stream):
        if packet.pts is not None:
            stamps.append(packet.pts)
            last_dts = packet.dts
        if len(stamps) >= TIMING_SAMPLE:
            ended = False
            break
    stamps.sort()
    if ended:
        return stamps
    if last_dts is not None:
        return [pts for pts in stamps if pts <= last_dts]
    return stamps[:-MAX_REORDER]


def _check_tail(container: Any, stream: Any, duration_ms: int, label: str) -> None:
    """Read the last seconds of packets back; a truncated file ends early or fails."""
    import av

    if not duration_ms or not stream.time_base:
        return
    tail_start = max(0.0, duration_ms / 1000 - TAIL_SECONDS)
    size = Path(container.name).stat().st_size
    last_end = 0.0
    try:
        container.seek(int(tail_start / stream.time_base), stream=stream)
        for packet in container.demux(stream):
            if packet.pos is not None and packet.pos >= 0 and packet.pos + packet.size > size:
                break
            if packet.pts is not None and packet.size:
                end = (packet.pts + (packet.duration or 0)) * stream.time_base
                last_end = max(last_end, float(end))
    except av.FFmpegError as exc:
        raise InputError(f"is damaged near its end: {_reason(exc)}", path=label,
                         hint="the file is truncated; export or copy it again") from exc
    expected = duration_ms / 1000
    if last_end < expected - max(1.0, expected * 0.02):
        raise InputError(f"is truncated: its data ends at {last_end:.1f} s of "
                         f"{expected:.1f} s", path=label,
                         hint="the export or copy did not finish; export or copy it again")


def _top_level_boxes(path: Path) -> list[bytes]:
    """The kinds of an MP4/MOV file's top-level boxes, in order ([] if not one)."""
    kinds: list[bytes] = []
    with open(path, "rb") as fh:
        size_of_file = fh.seek(0, 2)
        offset = 0
        while offset + 8 <= size_of_file and len(kinds) < 256:
            fh.seek(offset)
            header = fh.read(16)
            size = int.from_bytes(header[:4], "big")
            kinds.append(header[4:8])
            if size == 1 and len(header) == 16:
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:                       # box runs to the end of the file
                break
            if size < 8:
                break
            offset += size
    return kinds


def _faststart(path: Path) -> bool | None:
    """Whether the MP4/MOV index (moov) comes before the media data (mdat)."""
    kinds = _top_level_boxes(path)
    if b"moov" not in kinds or b"mdat" not in kinds:
        return None
    return kinds.index(b"moov") < kinds.index(b"mdat")


def _audio(stream: Any) -> AudioStream:
    ctx = stream.codec_context
    start = stream.start_time or 0
    start_ms = round(start * stream.time_base * 1000) if stream.time_base else 0
    return AudioStream(stream.index, ctx.name, ctx.channels, ctx.sample_rate or stream.rate or 0,
                       start_ms, _stream_ms(stream))


def _subtitle(stream: Any) -> SubtitleStream:
    name = stream.codec_context.name if stream.codec_context else "unknown"
    return SubtitleStream(stream.index, name, stream.metadata.get("language"),
                          name in TEXT_SUBTITLES)


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '", 1)[0]
