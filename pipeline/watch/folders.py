"""The inbox's own folders, handled so that nothing a stranger drops there can
redirect a write: every folder is opened one step at a time without following
a link, a moved file never lands on an existing name, a new file is created
with O_EXCL, and one lock keeps a second watcher out.

The folders the watcher writes (Output/, Source/, Failed/, .repurpose/) belong
to the watcher's user and nobody else may write in them; an inbox others may
write to has the sticky bit, so they cannot rename those folders away either.
Then another user (an SFTP or Samba client) can plant nothing where a render
writes by name (ffmpeg, Pillow, SQLite open paths, not descriptors).

Everything takes paths relative to the inbox, whose own path is the
operator's (resolved once at start).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import pwd
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from pipeline.errors import PipelineError, WriteError, write_error
from pipeline.outputs import NAME_MAX, short_name

OUTPUT, SOURCE, FAILED, STATE = "Output", "Source", "Failed", ".repurpose"
LOCK = "lock"
NOTE = ".error.txt"
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
FOLDER_MODE, PRIVATE_MODE = 0o755, 0o700        # .repurpose is private: the ledger names files
OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


class InboxError(PipelineError):
    """The inbox cannot be watched as it is (a link where one of its folders should
    be, another watcher at work); one line says what and the fix."""


def ours(inbox: Path, own_output: bool) -> tuple[str, ...]:
    """The inbox's folders the watcher writes."""
    return (SOURCE, FAILED, STATE, *([OUTPUT] if own_output else []))


def check_layout(inbox: Path, own_output: bool) -> None:
    """Refuse an inbox whose Source/, Failed/, .repurpose/ (and Output/ when it is
    used) is a link or not a folder: everything written there would go through.
    Refuse one of them (or a folder in Output/) that another user owns or may write
    to, and an inbox others may write to without the sticky bit: they could plant a
    link where a render writes by name. Each refusal is one line with the fix."""
    for name in ours(inbox, own_output):
        problem = not_a_folder(inbox / name, inbox)
        if problem:
            fix = " (or give --out DIR)" if name == OUTPUT else ""
            raise InboxError(f"{problem}; the watcher does not write through links in an "
                             f"inbox: remove it and a folder is made in its place{fix}")
    for name in ours(inbox, own_output):
        problem = not_private(inbox / name, recurse=name == OUTPUT)
        if problem:
            raise InboxError(problem)
    problem = renamable(inbox)
    if problem:
        raise InboxError(problem)


def not_private(path: Path, recurse: bool = False) -> str | None:
    """Why another user could put something in folder `path` (or, with `recurse`,
    in a folder below it), with the fix; None when nobody but us can."""
    for folder, info in _folders(path, recurse):
        if info.st_uid != os.geteuid():
            return (f"{folder} belongs to another user (uid {info.st_uid}), who could put a "
                    f"link there for the watcher to write through: run chown -R "
                    f"{_me()} {path}")
        if info.st_mode & OTHERS_WRITE:
            return (f"{folder} is writable by group or others, who could put a link there "
                    f"for the watcher to write through: run chmod {'-R ' * recurse}go-w "
                    f"{path}")
    return None


def _folders(path: Path, recurse: bool) -> Iterator[tuple[Path, os.stat_result]]:
    """`path` and (with `recurse`) every folder below it, never through a link."""
    try:
        yield path, os.lstat(path)
    except FileNotFoundError:
        return
    if not recurse:
        return
    for here, dirs, _, fd in os.fwalk(path, follow_symlinks=False):
        for name in dirs:
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode):      # a link is no folder: the guard removes it
                yield Path(here) / name, info


def renamable(inbox: Path) -> str | None:
    """Why others could rename the watcher's folders away (and put a link in their
    place): the inbox is writable by group or others without the sticky bit."""
    mode = os.stat(inbox).st_mode
    if mode & OTHERS_WRITE and not mode & stat.S_ISVTX:
        return (f"{inbox} is writable by group or others without the sticky bit, so they "
                f"could rename {OUTPUT}/ away and put a link in its place: run chmod +t "
                f"{inbox}")
    return None


def _me() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def make_folders(inbox: Path, own_output: bool) -> None:
    """Make the watcher's folders that are missing (0755, .repurpose 0700), then check
    each through a descriptor: one made by someone else in the meantime is refused."""
    for name in ours(inbox, own_output):
        mode = PRIVATE_MODE if name == STATE else FOLDER_MODE
        with opened(inbox, [name], create=True, mode=mode) as fd:
            info = os.fstat(fd)
        if info.st_uid != os.geteuid() or info.st_mode & OTHERS_WRITE:
            raise InboxError(not_private(inbox / name) or f"{inbox / name} changed hands")


def not_a_folder(path: Path, inbox: Path) -> str | None:
    """Why `path` may not serve as one of the inbox's folders, or None (also when
    it does not exist yet)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a link (to {os.readlink(path)})"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a folder"
    real = Path(os.path.realpath(path))
    if real.parent != inbox.resolve():      # a mount or a link above it
        return f"{path} leads outside the inbox (to {real})"
    return None


@contextmanager
def opened(inbox: Path, parts: Sequence[str], create: bool = False,
           mode: int = FOLDER_MODE) -> Iterator[int]:
    """A descriptor of inbox/parts..., each step opened without following a link,
    made (with `mode`) when missing with `create`. A link on the way raises
    WriteError naming it."""
    with _walked(inbox, parts, create, mode, strict=True) as fd:
        yield fd


@contextmanager
def reading(inbox: Path, parts: Sequence[str]) -> Iterator[int]:
    """As opened, for reading a stranger's folder: a link on the way (swapped in
    since the folder was walked) is an OSError like a vanished folder, not a fault
    of the disk that would pause the watcher."""
    with _walked(inbox, parts, False, FOLDER_MODE, strict=False) as fd:
        yield fd


@contextmanager
def _walked(inbox: Path, parts: Sequence[str], create: bool, mode: int,
            strict: bool) -> Iterator[int]:
    fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            shown = inbox.joinpath(*parts[:index + 1])
            child = _step(fd, part, create, mode, shown if strict else None)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _step(parent: int, name: str, create: bool, mode: int, shown_as: Path | None) -> int:
    try:
        if create:
            try:
                os.mkdir(name, mode, dir_fd=parent)
            except FileExistsError:
                pass
        return os.open(name, _DIR, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and shown_as is not None:
            raise WriteError(f"{shown_as} is a link or not a folder; the watcher does not "
                             "write through links in an inbox",
                             hint="remove it; a folder is made in its place") from exc
        raise


def unique_names(name: str, room: int = 0) -> Iterator[str]:
    """`name`, then `stem-2.ext`, `stem-3.ext`, ..., each short enough to leave `room`
    bytes for a suffix (`.error.txt`) within NAME_MAX."""
    pure = PurePosixPath(name)
    suffix = pure.suffix if len(os.fsencode(pure.suffix)) < 32 else ""
    stem = name[:len(name) - len(suffix)] if suffix else name
    n = 1
    while True:
        tail = f"-{n}{suffix}" if n > 1 else suffix
        yield short_name(stem, NAME_MAX - room - len(os.fsencode(tail))) + tail
        n += 1


def move(source: int, name: str, target: int, wanted: str) -> str:
    """Move entry `name` (a file, or a link itself, never its target) of folder
    `source` into folder `target` under the first free one of unique_names(wanted).
    Returns the name it took."""
    for candidate in unique_names(wanted):
        try:
            _rename_noreplace(source, name, target, candidate)
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")


def move_with_note(source: int, name: str, target: int, wanted: str, note: bytes) -> str:
    """As move, with a new `<name>.error.txt` holding `note` beside the moved file.
    The note is written first: a file in Failed/ always has its reason, and when the
    note cannot be written (disk full) the file stays where it was."""
    for candidate in unique_names(wanted, room=len(NOTE)):
        if _exists(target, candidate):
            continue
        try:
            create(target, candidate + NOTE, note)
        except FileExistsError:
            continue
        try:
            _rename_noreplace(source, name, target, candidate)
        except BaseException as exc:
            os.unlink(candidate + NOTE, dir_fd=target)
            if isinstance(exc, FileExistsError):
                continue
            raise
        return candidate
    raise AssertionError("unreachable")


def _exists(fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _rename_noreplace(source: int, name: str, target: int, new: str) -> None:
    """rename(2) that fails with EEXIST rather than replace: renameat2 (Linux) or
    renameatx_np (macOS); where neither works, a hard link then an unlink."""
    libc = ctypes.CDLL(None, use_errno=True)
    call = getattr(libc, "renameat2", None) or getattr(libc, "renameatx_np", None)
    if call is not None:
        flag = 1 if hasattr(libc, "renameat2") else 4   # RENAME_NOREPLACE / RENAME_EXCL
        if call(source, os.fsencode(name), target, os.fsencode(new), flag) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), new)
    os.link(name, new, src_dir_fd=source, dst_dir_fd=target, follow_symlinks=False)
    os.unlink(name, dir_fd=source)


def create(fd: int, name: str, data: bytes) -> None:
    """A new file `name` in folder `fd` holding `data`; FileExistsError when the name
    is there (never opened for writing), and nothing left behind on failure."""
    handle = os.open(name, _NEW, 0o666, dir_fd=fd)
    try:
        with open(handle, "wb", closefd=True) as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        os.unlink(name, dir_fd=fd)
        raise


def remove_file(fd: int, name: str) -> None:
    """Remove `name` from folder `fd` if it is a regular file (never a link's target)."""
    try:
        if stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
            os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        return


def remove_link(inbox: Path, link: Path) -> str | None:
    """Remove `link`, a link inside the inbox's own folders (unlink never follows
    it; its folder is reached without following one). Returns what it pointed to,
    or None when it is no link (any more): then nothing is removed."""
    parts = link.relative_to(inbox).parts
    with opened(inbox, parts[:-1]) as folder:
        try:
            info = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISLNK(info.st_mode):
            return None
        target = os.readlink(parts[-1], dir_fd=folder)
        os.unlink(parts[-1], dir_fd=folder)
    return target


def remove_tree(parent: int, name: str) -> None:
    """Remove folder `name` of folder `parent` and all in it, never through a link
    (a link inside is removed itself). Python 3.10's rmtree takes no dir_fd."""
    fd = os.open(name, _DIR, dir_fd=parent)
    try:
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                remove_tree(fd, entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


def links_below(out: Path, depth: int = 2) -> list[Path]:
    """Links in `out` and its folders, `depth` levels down: where a render would write
    through them (a preset folder, a temporary name, the manifest)."""
    found: list[Path] = []
    try:
        entries = list(os.scandir(out))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        if entry.is_symlink():
            found.append(Path(entry.path))
        elif depth > 1 and entry.is_dir(follow_symlinks=False):
            found += links_below(Path(entry.path), depth - 1)
    return found


def lock_inbox(inbox: Path) -> int:
    """Take the inbox's lock (flock on .repurpose/lock, holding our pid) or raise
    InboxError naming the process that holds it. The kernel drops the lock when
    the process ends, kill -9 included, so a crash never leaves it stuck."""
    where = inbox / STATE / LOCK
    try:
        return _lock(inbox, where)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InboxError(f"{where} is a link; the watcher does not write through links "
                             "in an inbox: remove it") from exc
        error = write_error(exc, where)
        error.hint = "the watcher keeps its lock and ledger in the inbox: make room there"
        raise error from exc


def _lock(inbox: Path, where: Path) -> int:
    with opened(inbox, [STATE], create=True, mode=PRIVATE_MODE) as state:
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=state)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:   # a hard link planted
            raise InboxError(f"{where} is not a plain file of its own; remove it")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise InboxError(f"{inbox} is being watched already by process {holder}; stop "
                         "that watcher first (--status works beside it)") from None
    except BaseException:
        os.close(fd)
        raise
    return fd
