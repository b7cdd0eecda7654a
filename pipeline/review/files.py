"""Which files the review studio may serve: variants and their sidecars inside OUT,
and the masters the manifest names.

A URL never carries a file path to anything but a variant or its sidecar: `inside`
turns the URL path (`/files/<rel>`, percent-decoded once by the server) into the
real path of a regular file in OUT, or None, and the app answers None with 404.
It refuses rather than repairs: no normalising of `..`, no second decoding, no
following of links. A master is never named by a URL: the page carries the
manifest entry's variant path (or index), the app reads that entry's `source`,
and `master` finds the file. The manifest of a watch folder's Output/ may have
been planted (pipeline.outputs.load_previous), so a master must also look like a
photo or video by its first bytes: a planted `source: /etc/passwd` shows nothing.

Both return the path as it is now; the studio serves it by that path a moment
later. Only someone who can write OUT (its operator) could swap a folder for a
link in between, and nothing here guards against the operator.
"""

from __future__ import annotations

import logging
import os
import stat
import unicodedata
from collections.abc import Sequence
from pathlib import Path, PurePath, PureWindowsPath
from urllib.parse import unquote

from pipeline.errors import printable
from pipeline.outputs import NAME_MAX
from pipeline.sniff import SIDECAR_SUFFIXES

log = logging.getLogger(__name__)

# What a variant is written as, and its sidecars (subtitles, the caption to paste).
# Not manifest.json (the app reads it itself), not .transcript.json, nothing hidden.
SERVED_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".mp4", ".mov", ".webm",
                   ".srt", ".vtt", ".caption.txt")
MAX_DEPTH = 8               # OUT/preset-id/name.ext is two; a watch folder's sub-folders add some
MAX_URL_PATH = 4096
MAX_DECODES = 4             # "%252e" is "." after two more decodings; four is plenty to see it
_BAD_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}     # controls, lone surrogates, line separators
_WATCHED = "/\\."           # characters no percent sequence may produce
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_HEAD = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def inside(out: Path, rel: str) -> Path | None:
    """The real path of the regular file in OUT that URL path `rel` names, or None
    when `rel` is refused (see `refusal`) or names no such file: a link anywhere on
    the way (even one pointing inside OUT), a folder, a FIFO or a device."""
    reason = refusal(rel)
    if reason is not None:
        log.debug("refused %s: %s", printable(str(rel)), reason)
        return None
    parts = rel.split("/")
    top = Path(out).resolve()       # OUT itself may be a link the operator chose
    try:
        folder = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        for part in parts[:-1]:     # O_NOFOLLOW: a link to a folder fails (ELOOP/ENOTDIR)
            child = os.open(part, _DIR, dir_fd=folder)
            os.close(folder)
            folder = child
        info = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
    except (OSError, ValueError):
        return None
    finally:
        os.close(folder)
    return top.joinpath(*parts) if stat.S_ISREG(info.st_mode) else None


def refusal(rel: str) -> str | None:
    """Why URL path `rel` is never served, by its text alone, or None when it may be
    looked up: for a log line and for tests."""
    if not isinstance(rel, str) or not rel:
        return "empty"
    if len(rel) > MAX_URL_PATH:
        return "too long"
    if any(unicodedata.category(ch) in _BAD_CATEGORIES for ch in rel):
        return "control character, NUL or undecodable byte"
    if rel.startswith("/") or PureWindowsPath(rel).anchor:     # "/x", "C:x", "//host/x"
        return "absolute path"
    if "\\" in rel:
        return "backslash"
    if _encoded(rel):
        return "percent-encoded '/', '\\', '.' or control character (double encoding)"
    parts = rel.split("/")
    if len(parts) > MAX_DEPTH:
        return "too many folders"
    for part in parts:
        if not part:
            return "empty segment ('//' or a trailing '/')"
        if part.startswith("."):
            return "'.', '..' or a hidden name"
        folded = unicodedata.normalize("NFKC", part)
        if folded.startswith(".") or "/" in folded or "\\" in folded:
            return "a look-alike of '.', '/' or '\\'"
        if len(os.fsencode(part)) > NAME_MAX:
            return "name too long"
    name = parts[-1].lower()
    if not any(name.endswith(s) and len(name) > len(s) for s in SERVED_SUFFIXES):
        return "not a kind of file the studio shows"
    return None


def _encoded(rel: str) -> bool:
    """Whether decoding `rel` again (up to MAX_DECODES times) would make a '/', '\\',
    '.' or control character: what a second decoder (a proxy, a framework, the
    file system layer of some other tool) would turn into traversal."""
    text = rel
    for _ in range(MAX_DECODES):
        decoded = unquote(text)
        if decoded == text:
            return False
        if _watched(decoded) != _watched(text):
            return True
        text = decoded
    return True                     # still changing: no honest name is encoded five times


def _watched(text: str) -> int:
    return sum(ch in _WATCHED or unicodedata.category(ch) in _BAD_CATEGORIES for ch in text)


def master(out: Path, source: str, bases: Sequence[Path] | None = None) -> Path | None:
    """The real path of the master a manifest entry's `source` names, or None.

    `source` is absolute, or relative to the folder the render ran in: looked up
    from each of `bases` in turn (by default the current folder, then OUT's
    parent). It may lie outside OUT (the operator's own masters), but it must be a
    regular file, not a link itself, with no hidden name in `source`, no sidecar's
    suffix, and first bytes of a photo or video."""
    if not isinstance(source, str) or not source or len(source) > MAX_URL_PATH or any(
            unicodedata.category(ch) in _BAD_CATEGORIES for ch in source):
        return None
    given = PurePath(source)
    if any(part.startswith(".") and part not in (".", "..") for part in given.parts) or (
            given.suffix.lower() in SIDECAR_SUFFIXES):
        return None
    if given.is_absolute():
        candidates = [Path(source)]
    else:
        candidates = [Path(base) / source for base in (bases or (Path.cwd(), Path(out).parent))]
    for candidate in candidates:
        if _media_file(candidate):
            return Path(os.path.realpath(candidate))
    return None


def _media_file(path: Path) -> bool:
    """A regular file, not a link, that starts like a photo or a video (opened
    non-blocking: a FIFO cannot hang the page)."""
    try:
        fd = os.open(path, _HEAD)
    except (OSError, ValueError):
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and looks_like_media(os.read(fd, 512))
    except OSError:
        return False
    finally:
        os.close(fd)


def looks_like_media(head: bytes) -> bool:
    """Whether a file's first bytes are those of a photo or video container that a
    master may be (pipeline.probe.photo.PHOTO_FORMATS, pipeline.ffmpeg.DEMUXERS)."""
    if head.startswith(_MAGIC) or head[4:8] in _ISO_BOXES:
        return True
    if head[:4] == b"RIFF":
        return head[8:12] in (b"WEBP", b"AVI ")
    return len(head) > 376 and head[0] == head[188] == head[376] == 0x47     # MPEG-TS


_MAGIC = (
    b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*",
    b"BM",                                  # BMP
    b"\x1a\x45\xdf\xa3",                    # Matroska, WebM
    b"\x00\x00\x01\xba",                    # MPEG program stream
    b"\x06\x0e\x2b\x34",                    # MXF
    b"FLV", b"OggS",
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",    # ASF (WMV)
)
# MP4, MOV, HEIF, AVIF start with an ftyp box; old QuickTime files with another.
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
