"""Checks: a preset's limits verified against the file that was written.

A variant is only a success when the file on disk, read back, meets its own
preset: for photos dimensions, aspect, file size, format and colour space;
for video dimensions, duration (picture and sound each last the kept range
within one frame), constant frame rate, codec, pixel format, faststart, audio
and file size.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from PIL import Image, ImageCms

from pipeline.model import Asset, Check, VideoInfo, VideoPlan
from pipeline.schema import Preset

LOUDNESS_TOLERANCE_LU = 2.0     # a limiter on very peaky sound may cost a little loudness
TRUE_PEAK_TOLERANCE_DB = 0.5
_FORMAT_NAMES = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}


def check_photo(path: Path, preset: Preset) -> tuple[Check, ...]:
    size = path.stat().st_size
    with Image.open(path) as image:
        width, height = image.size
        fmt = _FORMAT_NAMES.get(image.format or "", (image.format or "?").lower())
        space = _colour_space(image)
    checks = [
        Check("dimensions", (width, height) == tuple(preset.size),
              f"{preset.size[0]}x{preset.size[1]}", f"{width}x{height}"),
        Check("aspect", preset.aspect.min - 0.01 <= width / height <= preset.aspect.max + 0.01,
              f"{preset.aspect.min:g}-{preset.aspect.max:g}", round(width / height, 4)),
        Check("format", preset.image is None or fmt in preset.image.formats,
              preset.image.formats if preset.image else None, fmt),
        Check("colour_space", space == "sRGB", "sRGB", space),
    ]
    if preset.max_file_size is not None:
        checks.append(Check("file_size", size <= preset.max_file_size,
                            f"<= {preset.max_file_size}", size))
    return tuple(checks)


def _loudness(path: Path, target: float, ceiling: float) -> Check:
    """Integrated loudness within 2 LU of the target, true peak under the ceiling."""
    from pipeline.loudness import SILENCE_LUFS, measure

    found = measure(path)
    if found is None or found.integrated_lufs <= SILENCE_LUFS:
        return Check("loudness", True, f"{target:g} LUFS", "silent")
    ok = abs(found.integrated_lufs - target) <= LOUDNESS_TOLERANCE_LU and (
        found.true_peak_dbtp <= ceiling + TRUE_PEAK_TOLERANCE_DB)
    return Check("loudness", ok, f"{target:g} LUFS, <= {ceiling:g} dBTP",
                 f"{found.integrated_lufs:g} LUFS, {found.true_peak_dbtp:g} dBTP")


def _colour_space(image: Image.Image) -> str:
    icc = image.info.get("icc_profile")
    if icc:
        try:
            desc = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(BytesIO(icc))).strip()
        except (OSError, ImageCms.PyCMSError):
            return "unreadable profile"
        return "sRGB" if desc.lower().startswith("srgb") else desc
    # Untagged RGB is read as sRGB by browsers and every platform; GIF cannot carry a profile.
    return "sRGB" if image.mode in ("RGB", "RGBA", "L", "P") else image.mode


def read_video(path: Path) -> VideoInfo:
    """A written video read back with the video probe."""
    from pipeline.probe import probe_video

    return probe_video(Asset(path, str(path), path.stem, None, path.name))


def check_video(path: Path, preset: Preset, plan: VideoPlan,
                info: VideoInfo | None = None) -> tuple[Check, ...]:
    """A rendered video variant read back (`info`, when it was already read)."""
    info = info or read_video(path)
    size = path.stat().st_size
    checks = [
        Check("dimensions", (info.width, info.height) == tuple(preset.size),
              f"{preset.size[0]}x{preset.size[1]}", f"{info.width}x{info.height}"),
        _duration(info, preset, plan),
        Check("fps", abs(float(info.fps) - float(plan.fps)) < 0.02 and not info.variable_fps,
              f"constant {float(plan.fps):.3f}", f"{float(info.fps):.3f}"
              + (" variable" if info.variable_fps else "")),
        Check("codec", info.codec == "h264", "h264", info.codec),
        Check("pixel_format", info.pix_fmt == "yuv420p", "yuv420p", info.pix_fmt),
        Check("faststart", info.faststart is True, True, info.faststart),
        Check("audio", bool(info.audio) == plan.audio, plan.audio, bool(info.audio)),
    ]
    if preset.max_file_size is not None:
        checks.append(Check("file_size", size <= preset.max_file_size,
                            f"<= {preset.max_file_size}", size))
    if plan.audio and plan.loudness and info.audio:
        checks.append(_loudness(path, *plan.loudness))
    return tuple(checks)


def _duration(info: VideoInfo, preset: Preset, plan: VideoPlan) -> Check:
    """Picture and sound each last the kept range within one output frame (a
    millisecond more for the probe's rounding), and the range fits the preset."""
    frame = 1 / float(plan.fps)
    wanted = plan.duration_ms / 1000
    spec = preset.duration
    low = spec.min / 1000 if spec and spec.min else 0.0
    high = spec.max / 1000 if spec and spec.max else float("inf")
    picture = (info.picture_ms or info.duration_ms) / 1000
    lengths = {"picture": picture}
    if info.audio and info.audio[0].duration_ms:
        lengths["sound"] = info.audio[0].duration_ms / 1000
    ok = low - frame <= picture <= high + frame and all(
        abs(seconds - wanted) <= frame + 0.001 for seconds in lengths.values())
    actual = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in lengths.items())
    return Check("duration", ok, f"{wanted:.3f} s within one frame, {low:g}-{high:g} s", actual)
