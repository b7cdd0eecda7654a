"""Private copies: the render reads a copy of each master, and of its sidecars,
made in the watcher's own folder, never the inbox's file by name.

PyAV, Pillow and ffmpeg open a path, and follow a link. Checking a name and
then handing it over leaves a window in which a stranger swaps the file for a
link to any file the watcher may read, whose pictures then land in Output/.
So the master is copied through the very descriptor its digest was read from
(opened without following a link), the copy's digest must equal it, and only
the copy, in `.repurpose/work-<pid>/` (0700, the watcher's alone), is rendered.
It keeps the master's name, so output names and sidecar lookup are unchanged.

Copying costs a read and a write of each master; `copy_file_range` lets a
filesystem that can share blocks (Btrfs, XFS, APFS-like reflinks) do it almost
for free, and otherwise keeps the bytes in the kernel.

Also here: what a render depends on besides the master's bytes (`context`), so
that the same content dropped elsewhere is not taken for rendered.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from pathlib import Path, PurePosixPath

from pipeline.errors import WriteError, write_error
from pipeline.outputs import alive
from pipeline.shoot import SHOOT_FILE
from pipeline.watch.folders import PRIVATE_MODE, STATE, opened, reading, remove_tree
from pipeline.watch.messages import log
from pipeline.watch.settle import BLOCK, READ, fingerprint

WORK = re.compile(r"work-(?P<pid>[0-9]{1,10})(-[0-9]{1,4})?")
SIDECARS = {".srt", ".vtt", ".ass", ".ssa", ".xmp"}   # what the render looks for beside a master
MAX_SIDECARS = 32           # more is no shoot, and each costs a copy
SHOOT_READ = 4 * 1024 * 1024    # more than yamlsource accepts: the digest tells them apart
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Failed writes of the copy that say the watcher's disk refused: it pauses.
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
# copy_file_range or sendfile cannot do this pair of files: the next way is tried.
UNSUPPORTED = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}


class Workspace:
    """A folder of the watcher's private copies, `INBOX/.repurpose/work-<pid>[-<slot>]`."""

    def __init__(self, inbox: Path, slot: int = 0) -> None:
        self.inbox = inbox
        # One per master taken at once: work-<pid>, work-<pid>-1, ...
        self.name = f"work-{os.getpid()}" + (f"-{slot}" if slot else "")
        self.path = inbox / STATE / self.name

    def stage(self, master: int, folder: int, name: str, digest: str, key: str) -> Path | None:
        """Copy the master (descriptor `master`, named `name` in folder `folder`) and
        its sidecars into the work folder. Returns the copy's path, or None when the
        copy's digest is not `digest`: the file changed while it was copied."""
        try:
            with opened(self.inbox, [STATE, self.name], create=True, mode=PRIVATE_MODE) as work:
                os.fchmod(work, PRIVATE_MODE)       # one left by an earlier run of this pid
                copy(master, work, name)
                if fingerprint_of(work, name) != digest:
                    return None
                for side in sidecars(folder, name):
                    _stage_sidecar(folder, side, work, key)
        except OSError as exc:
            if exc.errno not in DISK_ERRNOS:
                raise
            raise write_error(exc, self.path / name, key) from exc
        return self.path / name

    def clear(self) -> None:
        """Remove the work folder and every copy in it."""
        try:
            with opened(self.inbox, [STATE]) as state:
                remove_tree(state, self.name)
        except FileNotFoundError:
            return


def remove_stale(inbox: Path) -> int:
    """Work folders of watchers no longer alive (a kill -9 leaves its copies), one of
    our own pid (an earlier process that had it), and any link named like one (never
    ours; unlinking does not follow it): removed. Returns how many."""
    removed = 0
    try:
        with opened(inbox, [STATE]) as state:
            for entry in os.scandir(state):
                match = WORK.fullmatch(entry.name)
                if match is None:
                    continue
                if entry.is_symlink():
                    os.unlink(entry.name, dir_fd=state)
                elif entry.is_dir(follow_symlinks=False) and (
                        int(match["pid"]) == os.getpid() or not alive(int(match["pid"]))):
                    remove_tree(state, entry.name)
                else:
                    continue
                removed += 1
    except (FileNotFoundError, WriteError):
        return removed
    return removed


def sidecars(folder: int, name: str) -> list[str]:
    """Names in `folder` the render may read as `name`'s sidecars: `<stem>.srt`,
    `<stem>.<lang>.vtt`, `<stem>.xmp`, `<name>.xmp` ... (pipeline.subtitles.sources,
    pipeline.metadata), in name order, at most MAX_SIDECARS."""
    stem = PurePosixPath(name).stem
    found = sorted(n for n in os.listdir(folder)
                   if n != name and n.startswith(f"{stem}.")
                   and PurePosixPath(n).suffix.lower() in SIDECARS)
    return found[:MAX_SIDECARS]


def _stage_sidecar(folder: int, name: str, work: int, key: str) -> None:
    """Copy one sidecar, opened without following a link relative to the master's
    folder; a link, or anything but a plain file of its own, is left out, said."""
    try:
        fd = os.open(name, READ, dir_fd=folder)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):    # EMLINK: BSD's O_NOFOLLOW
            log(f"{key}: sidecar {name} is a link; not used (links are not followed "
                "out of an inbox)")
            return
        if exc.errno == errno.ENOENT:
            return
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            log(f"{key}: sidecar {name} is not a plain file of its own; not used")
            return
        copy(fd, work, name)
    finally:
        os.close(fd)


def copy(source: int, work: int, name: str) -> None:
    """A new file `name` in folder `work` holding all of open file `source`, from
    its start: copy_file_range (in the kernel, a shared extent where the filesystem
    can), else sendfile, else read and write."""
    target = os.open(name, _NEW, 0o600, dir_fd=work)
    try:
        at = 0
        for way in (_copy_range, _send, _read_write):
            try:
                at = way(source, target, at)
                break
            except OSError as exc:
                if exc.errno not in UNSUPPORTED or way is _read_write:
                    raise
    finally:
        os.close(target)


def _copy_range(source: int, target: int, at: int) -> int:
    if not hasattr(os, "copy_file_range"):
        raise OSError(errno.ENOSYS, "no copy_file_range")
    while done := os.copy_file_range(source, target, BLOCK * 64, at, at):
        at += done
    return at


def _send(source: int, target: int, at: int) -> int:
    if not hasattr(os, "sendfile"):
        raise OSError(errno.ENOSYS, "no sendfile")
    os.lseek(target, at, os.SEEK_SET)       # sendfile writes at the target's offset
    while done := os.sendfile(target, source, at, BLOCK * 64):
        at += done
    return at


def _read_write(source: int, target: int, at: int) -> int:
    while block := os.pread(source, BLOCK, at):
        view = memoryview(block)
        while view:
            view = view[os.pwrite(target, view, at + len(block) - len(view)):]
        at += len(block)
    return at


def fingerprint_of(folder: int, name: str) -> str:
    fd = os.open(name, READ, dir_fd=folder)
    try:
        return fingerprint(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ the render's context


def context(inbox: Path, parts: tuple[str, ...], trusted: bool) -> str:
    """What rendering a master in folder `parts` depends on besides its bytes: that
    folder (its outputs go to the same place in Output/), which shoot.yaml governs
    it (the nearest one up to the inbox, as ingest finds it) and that file's
    content. Content rendered in another context is rendered again."""
    for depth in range(len(parts), -1, -1):
        shoot = _shoot_digest(inbox, parts[:depth])
        if shoot is not None:
            break
    body = json.dumps([list(parts), list(parts[:depth]) if shoot else None, shoot, trusted])
    return hashlib.sha256(body.encode("utf-8", "surrogateescape")).hexdigest()


def _shoot_digest(inbox: Path, parts: tuple[str, ...]) -> str | None:
    """The digest of shoot.yaml in folder `parts`, "link" for a link (which the
    render refuses), None when there is none there."""
    try:
        with reading(inbox, parts) as folder:
            try:
                fd = os.open(SHOOT_FILE, READ, dir_fd=folder)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.EMLINK):
                    return "link"
                if exc.errno in (errno.ENOENT, errno.EISDIR, errno.ENOTDIR):
                    return None
                raise
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                return hashlib.sha256(os.pread(fd, SHOOT_READ, 0)).hexdigest()
            finally:
                os.close(fd)
    except FileNotFoundError:
        return None
