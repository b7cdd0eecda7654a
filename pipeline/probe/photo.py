"""Probe: what a master is, from its content, before any pixel is decoded.

`open_photo` is the one door through which Pillow reads a master: it refuses
empty and unreadable files, formats we do not render, and images over the
pixel limit (decompression bombs), each with a clear InputError. `probe`
returns a typed PhotoInfo from the header alone.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from PIL import Image, ImageCms, UnidentifiedImageError

from pipeline.errors import InputError
from pipeline.model import Asset, PhotoInfo

# The largest photo we decode: 200 megapixels (e.g. 16384 x 12207). Bigger
# headers are refused as likely decompression bombs; the limit is never
# disabled. Real masters are far smaller (a 100 MP medium-format frame fits).
MAX_PIXELS = 200_000_000

# Formats we render; Pillow's other plugins are not even tried on untrusted files.
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "TIFF", "HEIF", "AVIF", "GIF", "BMP")

_HINT_EXPORT = "export it again as JPEG, PNG, TIFF, WebP or HEIC"
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_heif_registered = False


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        _heif_registered = True


def open_photo(asset: Asset) -> Image.Image:
    """Open a master for reading, or raise InputError saying why it cannot be used."""
    path, label = asset.path, asset.label
    try:
        size = path.stat().st_size
    except OSError as exc:
        what = "broken link or missing file" if path.is_symlink() else exc.strerror or str(exc)
        raise InputError(f"cannot read: {what}", path=label,
                         hint="check that the file exists and is readable") from exc
    if size == 0:
        raise InputError("empty file (0 bytes)", path=label,
                         hint="the export or copy did not finish; export it again")
    _register_heif()
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)    # e.g. "Corrupt EXIF data"
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path, formats=_available_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        claim = f"{int(claimed.group(1)) // 1_000_000} megapixels" if claimed else "too much"
        raise InputError(f"image header claims {claim}, over the {MAX_PIXELS // 1_000_000}-"
                         "megapixel limit (possible decompression bomb)", path=label,
                         hint="export a smaller master") from exc
    except UnidentifiedImageError as exc:
        what = sniff(path)
        hint = ("use a photo master; this version does not render video" if "video" in what
                else _HINT_EXPORT)
        raise InputError(f"not a supported photo ({what})", path=label, hint=hint) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=label,
                         hint="check the file's permissions, or copy it again") from exc
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise InputError(f"image is {width}x{height}, over the {MAX_PIXELS // 1_000_000}-"
                         "megapixel limit (possible decompression bomb)", path=label,
                         hint="export a smaller master")
    return image


def _available_formats() -> list[str]:
    Image.init()
    return [f for f in PHOTO_FORMATS if f in Image.OPEN]


def sniff(path: Path) -> str:
    """A short description of what the file seems to be, for error messages."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return "unreadable"
    if head[4:8] == b"ftyp" and head[8:12] in _IMAGE_BRANDS:
        return "damaged or unsupported HEIF/AVIF image"
    if head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3" or head[8:12] == b"AVI " or (
            len(head) > 376 and head[0] == head[188] == head[376] == 0x47):
        return "looks like a video"
    if head.startswith(b"%PDF"):
        return "looks like a PDF"
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "looks like SVG/XML"
    if head.startswith(b"8BPS"):
        return "Photoshop document"
    try:
        head.decode("utf-8")
        return "looks like text"
    except UnicodeDecodeError:
        return "unknown or damaged format"


TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}


def upright(pixels: Image.Image, orientation: int) -> Image.Image:
    """Stored pixels turned as EXIF orientation `orientation` (1-8) says."""
    return pixels.transpose(TRANSPOSE[orientation]) if orientation in TRANSPOSE else pixels


def info_of(image: Image.Image) -> PhotoInfo:
    stored_w, stored_h = image.size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # damaged EXIF: only orientation is lost
            orientation = int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block only loses orientation
        orientation = 1
    if orientation not in range(1, 9):
        orientation = 1
    width, height = (stored_h, stored_w) if orientation >= 5 else (stored_w, stored_h)
    mode = image.mode
    return PhotoInfo(
        format=image.format or "unknown",
        width=width,
        height=height,
        stored_width=stored_w,
        stored_height=stored_h,
        orientation=orientation,
        mode=mode,
        bit_depth=_bit_depth(image),
        has_alpha=mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info,
        icc_profile=_icc_description(image.info.get("icc_profile")),
        frames=getattr(image, "n_frames", 1),
    )


def _bit_depth(image: Image.Image) -> int:
    if image.mode.startswith("I;16") or image.mode == "I":
        return 16
    if image.mode == "F":
        return 32
    if image.mode == "1":
        return 1
    bits = image.info.get("bits") or getattr(image, "bits", None)
    return int(bits) if isinstance(bits, int) and bits > 8 else 8


def _icc_description(data: bytes | None) -> str | None:
    if not data:
        return None
    try:
        from io import BytesIO

        profile = ImageCms.ImageCmsProfile(BytesIO(data))
        return ImageCms.getProfileDescription(profile).strip() or "unnamed profile"
    except (OSError, ImageCms.PyCMSError):
        return "unreadable profile"
