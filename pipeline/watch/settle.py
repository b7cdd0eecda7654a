"""When a file in the inbox is complete: nobody writes it any more, and a movie
has its index. The size-and-date settle time is the scan's part."""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.outputs import sha256_fd

MOVIE_SUFFIXES = {".mp4", ".mov", ".m4v", ".3gp"}
INDEX_GRACE_S = 120.0     # an MP4 without its index this long after settling is taken


def complete(path: Path) -> bool:
    """Whether a settled file is finished: nobody has it open for writing (where the
    system tells, Linux /proc), and an MP4/MOV has its index. A movie that stays
    without an index is taken after INDEX_GRACE_S, and fails with that reason."""
    if open_for_writing(path):
        return False
    if path.suffix.lower() in MOVIE_SUFFIXES and not has_movie_index(path):
        try:
            return time.time() - path.stat().st_mtime > INDEX_GRACE_S
        except OSError:
            return False
    return True


def open_for_writing(path: Path) -> bool:
    proc = Path("/proc")
    if not proc.is_dir():
        return False
    target = str(path.resolve())
    for fd in proc.glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) != target:
                continue
            info = (fd.parent.parent / "fdinfo" / fd.name).read_text()
        except OSError:
            continue
        flags = next((line.split()[1] for line in info.splitlines()
                      if line.startswith("flags:")), "0")
        if int(flags, 8) & (os.O_WRONLY | os.O_RDWR):
            return True
    return False


def has_movie_index(path: Path) -> bool:
    """An ISO-BMFF file's top-level boxes include `moov` (the index)."""
    try:
        with path.open("rb") as stream:
            size = path.stat().st_size
            at = 0
            while at + 8 <= size:
                stream.seek(at)
                head = stream.read(16)
                length, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if kind == b"moov":
                    return True
                if length == 1:
                    length = int.from_bytes(head[8:16], "big")
                elif length == 0:
                    return False
                if length < 8:
                    return False
                at += length
    except OSError:
        return False
    return False


READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
BLOCK = 1024 * 1024


@contextmanager
def held(folder: int, name: str, seen: os.stat_result) -> Iterator[int]:
    """A descriptor of entry `name` of folder `folder`, opened without following a
    link, and only if it is still the very regular file that was looked at (not
    swapped for another). Everything read of the master goes through it."""
    fd = os.open(name, READ, dir_fd=folder)
    try:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != (seen.st_dev, seen.st_ino) or not stat.S_ISREG(
                info.st_mode):
            raise FileNotFoundError(errno.ENOENT, "replaced while it was taken", name)
        yield fd
    finally:
        os.close(fd)


def fingerprint(fd: int) -> str:
    """The content digest of an open file, from its start (whatever its offset)."""
    return sha256_fd(fd)


def identity(what: Path | os.stat_result) -> tuple[int, int, int, int] | None:
    """Which file a name holds, and how it was: None when there is none."""
    try:
        info = os.lstat(what) if isinstance(what, Path) else what
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns
