"""Colour: every photo becomes 8-bit sRGB (with alpha where it had alpha).

Embedded ICC profiles (Adobe RGB, Display P3, CMYK, grey) are converted with
LittleCMS through Pillow's ImageCms; 16-bit and float images are reduced to 8
bits with rounding over their full range (never clipped). Adobe's inverted
CMYK JPEGs are un-inverted by Pillow's decoder already. Outputs are tagged
with one fixed sRGB profile, so identical inputs give identical bytes.
"""

from __future__ import annotations

from functools import lru_cache
from io import BytesIO

from PIL import Image, ImageCms

_INTENT = ImageCms.Intent.PERCEPTUAL
_FLAGS = ImageCms.Flags.BLACKPOINTCOMPENSATION
_PROFILE_SPACE = {"RGB": ("RGB", "RGBA"), "CMYK": ("CMYK",), "GRAY": ("L",)}


@lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """LittleCMS's built-in sRGB profile with its creation date zeroed (byte-stable)."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    data[24:36] = bytes(12)       # ICC header dateTime
    data[84:100] = bytes(16)      # profile ID: zero means "not computed"
    return bytes(data)


@lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(BytesIO(srgb_profile()))


def to_srgb(image: Image.Image) -> tuple[Image.Image, list[str]]:
    """Return an 8-bit RGB or RGBA image in sRGB, and what was done worth telling."""
    warnings: list[str] = []
    icc = image.info.get("icc_profile")
    image = _to_8bit(image)
    image = _normalise_mode(image)
    if icc:
        converted = _apply_profile(image, icc, warnings)
        if converted is not None:
            return converted, warnings
    if image.mode == "CMYK":
        warnings.append("CMYK master without an ICC profile: converted without colour "
                        "management; embed the profile when exporting for exact colours")
        return image.convert("RGB"), warnings
    if image.mode == "L":
        return image.convert("RGB"), warnings
    return image, warnings


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float greyscale to 8 bits over the full range, with rounding."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        import numpy as np  # only 16-bit and float masters need it

        array = np.asarray(image, dtype=np.float64)
        if image.mode == "F":
            top = 1.0 if array.max(initial=0.0) <= 1.0 else 65535.0
        else:
            top = 65535.0 if array.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        scaled = np.clip(np.rint(array * (255.0 / top)), 0, 255).astype(np.uint8)
        out = Image.fromarray(scaled)
        out.info.update(image.info)
        return out
    return image


def _normalise_mode(image: Image.Image) -> Image.Image:
    """Reduce Pillow's many modes to RGB, RGBA, CMYK or L."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "CMYK", "L"):
        return image
    info = dict(image.info)
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        out = image.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("LA", "La"):
        out = image.convert("RGBA")
    elif mode == "RGBa":
        out = image.convert("RGBA")
    elif mode == "1":
        out = image.convert("L")
    elif mode in ("YCbCr", "LAB", "HSV", "RGBX"):
        out = image.convert("RGB")
    else:
        out = image.convert("RGBA" if "A" in mode else "RGB")
    out.info.update(info)
    return out


def _apply_profile(image: Image.Image, icc: bytes, warnings: list[str]) -> Image.Image | None:
    try:
        space, description = _profile_facts(icc)
    except (OSError, ImageCms.PyCMSError):
        warnings.append("embedded colour profile is unreadable: treated as sRGB")
        return None
    if image.mode not in _PROFILE_SPACE.get(space, ()):
        warnings.append(f"embedded {space} profile does not fit a {image.mode} image: ignored")
        return None
    if space == "RGB" and description.lower().startswith("srgb"):
        return image
    out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    try:
        transform = _transform(icc, image.mode, out_mode)
        return ImageCms.applyTransform(image, transform)
    except (OSError, ImageCms.PyCMSError) as exc:
        warnings.append(f"embedded colour profile could not be applied ({exc}): treated as sRGB")
        return None


@lru_cache(maxsize=64)
def _profile_facts(icc: bytes) -> tuple[str, str]:
    profile = ImageCms.ImageCmsProfile(BytesIO(icc))
    return profile.profile.xcolor_space.strip(), ImageCms.getProfileDescription(profile).strip()


@lru_cache(maxsize=16)
def _transform(icc: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    source = ImageCms.ImageCmsProfile(BytesIO(icc))
    return ImageCms.buildTransform(source, _srgb(), in_mode, out_mode,
                                   renderingIntent=_INTENT, flags=_FLAGS)
