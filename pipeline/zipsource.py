"""ZIPs of pages (Canva's multi-page download): members checked against fixed limits
before and while they are extracted into a private temporary folder, which a later
run removes if a kill -9 left it behind.

The functions fill an ingest `Found` (its assets, errors and temporary folders)."""

from __future__ import annotations

import errno
import lzma
import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from natsort import natsorted, ns

from pipeline.errors import InputError, write_error
from pipeline.model import Asset
from pipeline.scratch import claim
from pipeline.sniff import SIDECAR_SUFFIXES, misnamed_error

if TYPE_CHECKING:
    from pipeline.ingest import Found

# ZIP limits. zipfile itself sets none: the Python docs say so under "Decompression
# pitfalls" (docs.python.org/3/library/zipfile.html, added by python/cpython#13378,
# CVE-2019-9674): a few MB can unpack to petabytes. A ZIP here is
# a design export, one file per page: Canva designs have a few hundred pages at
# most, a page is a PNG/JPEG of tens of MB or a video page of at most a few
# hundred MB, and media hardly compresses (JPEG, PNG and H.264 already are).
MiB, GiB = 1024**2, 1024**3
MAX_ZIP_MEMBERS = 1000
MAX_ZIP_DIRECTORY_BYTES = 4 * MiB     # 1000 entries of 46 bytes, a long name and extras
MAX_ZIP_MEMBER_BYTES = 512 * MiB
MAX_ZIP_TOTAL_BYTES = 2 * GiB
MAX_ZIP_RATIO = 100            # unpacked / packed; zeros deflate about 1000:1
ZIP_RATIO_FLOOR = 4 * MiB      # smaller members cost little whatever their ratio
_ZIP_ERRORS = (OSError, EOFError, RuntimeError, NotImplementedError, ValueError,
               zipfile.BadZipFile, zlib.error, lzma.LZMAError)   # damaged or encrypted data



def _directory(path: Path) -> tuple[int, int]:
    """How many members the ZIP's end record declares, and the size of its central
    directory, read before zipfile parses that directory into an entry per member
    (both can be forged: the count is checked again after opening, and zipfile reads
    no more of the directory than the size says); (0, 0) when they cannot be read."""
    end_record = getattr(zipfile, "_EndRecData", None)     # private, stable since 2.6
    if end_record is None:
        return 0, 0
    try:
        with open(path, "rb") as fp:
            end = end_record(fp)
    except OSError:
        return 0, 0
    if not end:
        return 0, 0
    return (int(end[getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)]),
            int(end[getattr(zipfile, "_ECD_SIZE", 5)]))


def _too_many(path: Path) -> str | None:
    count, size = _directory(path)
    if count > MAX_ZIP_MEMBERS:
        return f"ZIP holds {count} files, more than {MAX_ZIP_MEMBERS}"
    if size > MAX_ZIP_DIRECTORY_BYTES:
        return (f"ZIP's list of files takes {_size(size)}, more than "
                f"{_size(MAX_ZIP_DIRECTORY_BYTES)}")
    return None


def is_container_zip(path: Path) -> bool:
    """A ZIP of pages, not an Office or OpenDocument file (which are ZIPs too)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        if _too_many(path):
            return True             # refused by add_zip with its reason
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except _ZIP_ERRORS:
        return False
    return "[Content_Types].xml" not in names and "mimetype" not in names


def add_zip(found: Found, path: Path, label: str, shoot_dir: Path) -> None:
    problem = _too_many(path)
    if problem:
        found.errors.append(InputError(f"{problem}; a design export has one file a page",
                                       path=label, hint="download the design in parts"))
        return
    try:
        zf = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        found.errors.append(InputError(f"cannot open ZIP: {exc}", path=label,
                                       hint="download or export the ZIP again"))
        return
    with zf:
        if len(zf.infolist()) > MAX_ZIP_MEMBERS:      # the end record's count was forged
            found.errors.append(InputError(
                f"ZIP holds more than {MAX_ZIP_MEMBERS} files; a design export has one file "
                "a page", path=label, hint="download the design in parts"))
            return
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
            if isinstance(exc, OSError) and exc.errno in DISK_FULL:     # our disk, not the ZIP
                found.errors.append(write_error(exc, f"into {target}", path=where))
                continue
            found.errors.append(InputError(f"cannot extract: {exc}", path=where,
                                           hint="download or export the ZIP again"))
            continue
        found.assets.append(Asset(path=dest, label=where, stem=PurePosixPath(name).stem or name,
                                  shoot_dir=shoot_dir, options_key=name,
                                  group=label, order=order + 1))


class _Refusal(Exception):
    """A member refused by a limit: what and the fix."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint

    def at(self, where: str) -> InputError:
        return InputError(f"refused ZIP member: {self.message}", path=where, hint=self.hint)


DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
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


# -- the private folder ------------------------------------------------------------------

def _private_folder(found: Found) -> Path:
    """A new folder for one ZIP's pages, named with our pid and locked while we live
    (pipeline.scratch): a later run removes it if a kill -9 leaves it behind."""
    def keep(made: Path, lock: int) -> None:
        found._tempdirs.append(made)
        found._locks.append(lock)

    folder, _ = claim("zip", keep)
    return folder
