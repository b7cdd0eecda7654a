"""Media that is not named as such: a photo or movie with a sidecar's suffix (a JPEG
called manifest.json) is told apart by its first bytes, so it is reported, never
skipped in silence."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePath

from pipeline.errors import InputError

# Files that live beside masters but are not masters themselves.
SIDECAR_SUFFIXES = {".yaml", ".yml", ".json", ".xmp", ".srt", ".vtt", ".ass", ".ssa",
                    ".txt", ".md", ".log", ".ini", ".db",
                    ".py", ".pyc"}     # effect modules a preset names (module:function)


_FTYP = {b"heic": ("a HEIC photo", ".heic"), b"heix": ("a HEIC photo", ".heic"),
         b"heim": ("a HEIC photo", ".heic"), b"heis": ("a HEIC photo", ".heic"),
         b"hevc": ("a HEIC photo", ".heic"), b"mif1": ("a HEIF photo", ".heif"),
         b"msf1": ("a HEIF photo", ".heif"), b"avif": ("an AVIF image", ".avif"),
         b"avis": ("an AVIF image", ".avif"), b"qt  ": ("a QuickTime movie", ".mov"),
         b"M4A ": ("an M4A audio file", ".m4a")}


def _sniff(head: bytes) -> tuple[str, str] | None:
    """(what it is, its usual suffix) for the media a file's first bytes announce."""
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG photo", ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "a PNG image", ".png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "a GIF image", ".gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image", ".webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "a TIFF image", ".tif"
    if head[4:8] == b"ftyp":        # ISO base media: HEIF, AVIF, MP4, QuickTime
        return _FTYP.get(head[8:12], ("an MP4 video", ".mp4"))
    if head.startswith(b"\x1a\x45\xdf\xa3"):        # EBML: Matroska or WebM
        return ("a WebM video", ".webm") if b"webm" in head else ("a Matroska video", ".mkv")
    return None


def _head(path: Path) -> bytes:
    """The first bytes of a regular file; nothing for a pipe, device or unreadable file
    (opened non-blocking, so a FIFO with a sidecar's name cannot hang the walk)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return b""
    try:
        return os.read(fd, 64) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def media_of(path: Path) -> str:
    """What a file's first bytes say it is ("an MP4 video", "a QuickTime movie"),
    or "" when they say nothing known."""
    found = _sniff(_head(path))
    return found[0] if found else ""


def misnamed_media(path: Path) -> str | None:
    """What a file with a sidecar's suffix (.json, .txt, ...) really is when its first
    bytes say photo or movie ("a JPEG photo"), else None."""
    if path.suffix.lower() not in SIDECAR_SUFFIXES:
        return None
    found = _sniff(_head(path))
    return found[0] if found else None


def misnamed_error(path: PurePath, label: str | None = None,
                   head: bytes | None = None) -> InputError | None:
    """The error for a photo or movie named like a sidecar, or None when it is not one;
    `head` is the file's first bytes when `path` is not on disk (a ZIP member)."""
    suffix = path.suffix.lower()
    if suffix not in SIDECAR_SUFFIXES:
        return None
    found = _sniff(_head(Path(path)) if head is None else head)
    if found is None:
        return None
    what, right = found
    return InputError(f"is {what} named like a sidecar ({suffix})", path=label or str(path),
                      hint=f"rename it to {right}")
