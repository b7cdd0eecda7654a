"""Ingest: turn the SOURCE arguments (files, folders, ZIPs) into Assets.

Folders are walked recursively in a stable order; hidden files and the
sidecars a shoot may hold (shoot.yaml, .xmp, .srt, ...) are not masters, but
a photo or movie given a sidecar's name (a JPEG called manifest.json) is
reported, never skipped in silence. A ZIP (Canva's multi-page download)
becomes an ordered set of pages, extracted into a private temporary folder
within fixed limits (see the ZIP constants); members with absolute paths,
`..`, or links are refused. For content (`trusted=False`: a watch inbox,
`render --untrusted`) links are not followed. Whether a file is a photo is
decided later by its content (probe), never by its extension.
"""

from __future__ import annotations

import fcntl
import lzma
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath

from natsort import natsorted, ns

from pipeline.errors import InputError
from pipeline.model import Asset
from pipeline.shoot import SHOOT_FILE
from pipeline.trust import inside

# Files that live beside masters but are not masters themselves.
SIDECAR_SUFFIXES = {".yaml", ".yml", ".json", ".xmp", ".srt", ".vtt", ".ass", ".ssa",
                    ".txt", ".md", ".log", ".ini", ".db",
                    ".py", ".pyc"}     # effect modules a preset names (module:function)

# ZIP limits. zipfile itself sets none: the Python docs say so under "Decompression
# pitfalls" (docs.python.org/3/library/zipfile.html, added by python/cpython#13378,
# CVE-2019-9674): a few MB can unpack to petabytes. A ZIP here is
# a design export, one file per page: Canva designs have a few hundred pages at
# most, a page is a PNG/JPEG of tens of MB or a video page of at most a few
# hundred MB, and media hardly compresses (JPEG, PNG and H.264 already are).
MiB, GiB = 1024**2, 1024**3
MAX_ZIP_MEMBERS = 1000
MAX_ZIP_MEMBER_BYTES = 512 * MiB
MAX_ZIP_TOTAL_BYTES = 2 * GiB
MAX_ZIP_RATIO = 100            # unpacked / packed; zeros deflate about 1000:1
ZIP_RATIO_FLOOR = 4 * MiB      # smaller members cost little whatever their ratio
_ZIP_ERRORS = (OSError, EOFError, RuntimeError, NotImplementedError, ValueError,
               zipfile.BadZipFile, zlib.error, lzma.LZMAError)   # damaged or encrypted data

# Private ZIP folders carry their owner's pid, so a later run can tell a folder a
# kill -9 left behind from one in use (see remove_stale_zip_folders).
ZIP_FOLDER_PREFIX = "repurpose-zip-"
_ZIP_FOLDER = re.compile(r"repurpose-zip-(?P<pid>[0-9]{1,10})-[A-Za-z0-9_]+")


@dataclass
class Found:
    """What ingest found: assets to render and inputs that failed already."""

    assets: list[Asset] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    _tempdirs: list[Path] = field(default_factory=list)
    _locks: list[int] = field(default_factory=list)
    _seen: set[Path] = field(default_factory=set)

    def cleanup(self) -> None:
        for folder in self._tempdirs:
            shutil.rmtree(folder, ignore_errors=True)
        self._tempdirs.clear()
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()

    def __enter__(self) -> Found:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def ingest(sources: Iterable[Path], exclude: Iterable[Path] = (),
           shoot_root: Path | None = None, *, trusted: bool = True) -> Found:
    """Assets of the SOURCE arguments; folders in `exclude` (the output) are not walked.
    A file named on its own takes the shoot.yaml of its folder, or with `shoot_root`
    (a watch folder) the nearest one up to that root. With `trusted` False, a link
    (file or folder) inside a source folder or under `shoot_root` is an error, not
    followed. Temporary folders are removed if ingest itself fails or is interrupted."""
    found = Found()
    skip = {Path(p).resolve() for p in exclude}
    try:
        remove_stale_zip_folders()
        for source in sources:
            _add_source(found, Path(source), skip, shoot_root, trusted)
    except BaseException:          # Ctrl-C, SIGTERM (SystemExit) included
        found.cleanup()
        raise
    return found


def _add_source(found: Found, source: Path, skip: set[Path], shoot_root: Path | None,
                trusted: bool) -> None:
    if source.is_dir():
        _add_folder(found, source, skip, trusted)
        return
    root = shoot_root if shoot_root and shoot_root in source.parents else None
    if not trusted:
        link = _first_link(source, root or source.parent)
        if link is not None:
            found.errors.append(_link_error(link, root or source.parent, str(source)))
            return
    folder = _shoot_dir(source.parent, root) if root else source.parent
    key = source.relative_to(folder).as_posix() if root else source.name
    _add_file(found, source, label=str(source), shoot_dir=folder, options_key=key)


def _add_folder(found: Found, source: Path, skip: set[Path], trusted: bool) -> None:
    for path in _walk(source, skip):
        rel = path.relative_to(source)
        label = str(Path(source.name) / rel)
        if path.is_symlink():
            if not trusted:
                found.errors.append(_link_error(path, source, label))
                continue
            if path.is_dir():       # as os.walk: a linked folder is not walked
                continue
        if path.suffix.lower() in SIDECAR_SUFFIXES:
            error = misnamed_error(path, label)
            if error:
                found.errors.append(error)
            continue
        _add_file(found, path, label=label, shoot_dir=_shoot_dir(path.parent, source),
                  options_key=rel.as_posix())


def _walk(root: Path, skip: set[Path]) -> Iterator[Path]:
    """Every visible file, and every visible link to a folder (never walked)."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX"
                         and (Path(folder) / d).resolve() not in skip)
        linked = [d for d in dirs if (Path(folder) / d).is_symlink()]
        for name in natsorted([*files, *linked], alg=ns.IGNORECASE):
            if not name.startswith("."):
                yield Path(folder) / name


def _is_master_candidate(path: Path) -> bool:
    """By name alone: not hidden and not a sidecar (see misnamed_media for the rest)."""
    name = path.name
    return not name.startswith(".") and path.suffix.lower() not in SIDECAR_SUFFIXES


def _first_link(path: Path, root: Path) -> Path | None:
    """The first link on the way down from `root` (the operator's, not checked) to `path`."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return path if path.is_symlink() else None
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def _link_error(link: Path, root: Path, label: str) -> InputError:
    # The link's own text is shown, not where it leads: it says nothing about this
    # machine that the sender did not write.
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    folder = link.is_dir()
    where = "in" if inside(root, link) else "outside"
    what = "folder" if folder else "file"
    return InputError(f"is a link to {target!r} {where} the folder; links are not followed "
                      "in files that came from others", path=label,
                      hint=f"copy the {what} itself in")


def _shoot_dir(folder: Path, root: Path) -> Path:
    """The nearest folder at or above `folder` (within root) that has a shoot.yaml."""
    current = folder
    while True:
        if (current / SHOOT_FILE).is_file() or current == root:
            return current
        current = current.parent


def _add_file(found: Found, path: Path, label: str, shoot_dir: Path, options_key: str) -> None:
    real = path.resolve()
    if real in found._seen:         # named twice (a folder and a file in it): render once
        return
    found._seen.add(real)
    if not path.is_dir() and _is_container_zip(path):
        _add_zip(found, path, label, shoot_dir)
        return
    found.assets.append(Asset(path=path, label=label, stem=_stem(path.name),
                              shoot_dir=shoot_dir, options_key=options_key))


def _stem(name: str) -> str:
    stem = PurePosixPath(name).stem
    return stem or name


# -- media with a sidecar's name ------------------------------------------------------

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


# -- ZIPs ------------------------------------------------------------------------------

def _zip_entries(path: Path) -> int | None:
    """How many members the ZIP's end record declares, read before zipfile builds an
    entry per member (a forged count costs memory); None when it cannot be read."""
    end_record = getattr(zipfile, "_EndRecData", None)     # private, stable since 2.6
    if end_record is None:
        return None
    try:
        with open(path, "rb") as fp:
            end = end_record(fp)
    except OSError:
        return None
    return int(end[getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)]) if end else None


def _is_container_zip(path: Path) -> bool:
    """A ZIP of pages, not an Office or OpenDocument file (which are ZIPs too)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        if (_zip_entries(path) or 0) > MAX_ZIP_MEMBERS:
            return True             # refused by _add_zip with its reason
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except _ZIP_ERRORS:
        return False
    return "[Content_Types].xml" not in names and "mimetype" not in names


def _add_zip(found: Found, path: Path, label: str, shoot_dir: Path) -> None:
    count = _zip_entries(path) or 0
    if count > MAX_ZIP_MEMBERS:
        found.errors.append(InputError(
            f"ZIP holds {count} files, more than {MAX_ZIP_MEMBERS}; a design export has one "
            "file a page", path=label, hint="download the design in parts"))
        return
    try:
        zf = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        found.errors.append(InputError(f"cannot open ZIP: {exc}", path=label,
                                       hint="download or export the ZIP again"))
        return
    with zf:
        _extract_pages(found, zf, label, shoot_dir, _private_folder(found))


def _extract_pages(found: Found, zf: zipfile.ZipFile, label: str, shoot_dir: Path,
                   target: Path) -> None:
    # Not ZipInfo.is_dir: it fails on a member with an empty name.
    members = [m for m in zf.infolist()
               if not m.filename.endswith("/") and not _hidden_member(m.filename)]
    members = natsorted(members, key=lambda m: m.filename, alg=ns.IGNORECASE)
    room = _packed_room(zf)
    total = 0
    for order, member in enumerate(members):
        where = f"{label}!{member.filename}"
        name = PurePosixPath(member.filename.replace("\\", "/")).name
        problem = _unsafe_member(member)
        if problem:
            found.errors.append(InputError(f"refused ZIP member: {problem}", path=where,
                                           hint="re-create the ZIP with plain relative names"))
            continue
        if PurePosixPath(name).suffix.lower() in SIDECAR_SUFFIXES:
            error = misnamed_error(PurePosixPath(name), where, _member_head(zf, member))
            if error:
                found.errors.append(error)
            continue
        refusal = _too_big(member, room.get(member.header_offset), total)
        if refusal:
            found.errors.append(refusal.at(where))
            continue
        dest = target / f"{order:05d}" / name
        try:
            total += _extract(zf, member, dest, MAX_ZIP_TOTAL_BYTES - total)
        except _Refusal as refused:
            shutil.rmtree(dest.parent, ignore_errors=True)
            found.errors.append(refused.at(where))
            continue
        except _ZIP_ERRORS as exc:
            shutil.rmtree(dest.parent, ignore_errors=True)
            found.errors.append(InputError(f"cannot extract: {exc}", path=where,
                                           hint="download or export the ZIP again"))
            continue
        found.assets.append(Asset(path=dest, label=where, stem=_stem(name),
                                  shoot_dir=shoot_dir, options_key=name,
                                  group=label, order=order + 1))


class _Refusal(Exception):
    """A member refused by a limit: what and the fix."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint

    def at(self, where: str) -> InputError:
        return InputError(f"refused ZIP member: {self.message}", path=where, hint=self.hint)


_BOMB_HINT = ("media hardly compresses, so this looks like a ZIP bomb; if the file is "
              "genuine, unpack the ZIP yourself and render its files")
_BIG_HINT = "render this file on its own, not inside a ZIP"
_TOTAL_HINT = "download the design in parts"


def _packed_room(zf: zipfile.ZipFile) -> dict[int, int]:
    """For each member's header offset, the bytes up to the next member (or the central
    directory): its packed data can be no larger. A forged packed size, or members
    sharing one packed stream (the overlapping-file ZIP bomb), cannot pass for more."""
    offsets = sorted({m.header_offset for m in zf.infolist()})
    end = getattr(zf, "start_dir", None)
    if not isinstance(end, int):
        end = max(offsets, default=0) + MAX_ZIP_TOTAL_BYTES
    return {a: b - a for a, b in zip(offsets, [*offsets[1:], end], strict=True)}


def _too_big(member: zipfile.ZipInfo, room: int | None, total: int) -> _Refusal | None:
    """The declared sizes, checked before a byte is extracted."""
    size = member.file_size
    packed = min(member.compress_size, room if room is not None else member.compress_size)
    if size > ZIP_RATIO_FLOOR and size > MAX_ZIP_RATIO * max(packed, 1):
        return _Refusal(f"unpacks to {_size(size)} from {_size(packed)} "
                        f"({size // max(packed, 1)}:1)", _BOMB_HINT)
    if size > MAX_ZIP_MEMBER_BYTES:
        return _Refusal(f"unpacks to {_size(size)}, more than {_size(MAX_ZIP_MEMBER_BYTES)} "
                        "a file", _BIG_HINT)
    if total + size > MAX_ZIP_TOTAL_BYTES:
        return _Refusal(f"the ZIP unpacks to more than {_size(MAX_ZIP_TOTAL_BYTES)} with "
                        "this file", _TOTAL_HINT)
    return None


def _extract(zf: zipfile.ZipFile, member: zipfile.ZipInfo, dest: Path, left: int) -> int:
    """Copy one member into a new file, counting the bytes as they come: more than its
    header declared, than a file may hold, or than `left` of the ZIP's total stops it
    there, so a header that lies cannot get past. Returns the bytes written."""
    ceiling = min(member.file_size, MAX_ZIP_MEMBER_BYTES, left)
    dest.parent.mkdir(parents=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    written = 0
    with zf.open(member) as src, open(os.open(dest, flags, 0o600), "wb") as out:
        while chunk := src.read(MiB):
            written += len(chunk)
            if written > ceiling:
                raise _Refusal(f"holds more than the {_size(ceiling)} it may unpack to; the "
                               "ZIP is damaged or forged", "download or export the ZIP again")
            out.write(chunk)
    return written


def _member_head(zf: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    try:
        with zf.open(member) as src:
            return src.read(64)
    except _ZIP_ERRORS:
        return b""


def _size(n: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def _hidden_member(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p.startswith(".") and p not in (".", "..") for p in parts) or "__MACOSX" in parts


def _unsafe_member(member: zipfile.ZipInfo) -> str | None:
    name = member.filename
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in posix.parts:
        return "path leaves the ZIP folder (..)"
    if not posix.name or posix.name == ".":
        return "no file name"
    mode = member.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link"
    return None


# -- private folders, and those a killed run left behind --------------------------------

def _private_folder(found: Found) -> Path:
    """A new folder for one ZIP's pages, named with our pid and locked while we live:
    the kernel drops the lock when the process dies, even by kill -9."""
    folder = Path(tempfile.mkdtemp(prefix=f"{ZIP_FOLDER_PREFIX}{os.getpid()}-"))
    found._tempdirs.append(folder)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    found._locks.append(fd)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return folder


def remove_stale_zip_folders(tmp: Path | None = None) -> int:
    """Remove the private ZIP folders that killed runs left in the temp dir; returns how
    many. Only our own names, directly in the temp dir, real folders (a link is never
    followed, and rmtree does not follow links inside), of this user, whose pid is
    dead and whose lock nobody holds (a pid of another pid namespace looks dead)."""
    base = tmp or Path(tempfile.gettempdir())
    try:
        entries = list(os.scandir(base))
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        match = _ZIP_FOLDER.fullmatch(entry.name)
        if not match or not _stale(entry, int(match["pid"])):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed


def _stale(entry: os.DirEntry[str], pid: int) -> bool:
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False
    return pid != os.getpid() and not _alive(pid) and not _locked(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # someone else's process: alive
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _locked(folder: str) -> bool:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return True                 # cannot tell: leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
