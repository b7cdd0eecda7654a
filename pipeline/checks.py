"""Checks: a preset's limits verified against the file that was written.

A variant is only a success when the file on disk, read back, meets its own
preset: dimensions, aspect, file size, format and colour space.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from PIL import Image, ImageCms

from pipeline.model import Check
from pipeline.schema import Preset

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
