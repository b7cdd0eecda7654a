"""Private temporary folders, and those that killed runs left behind.

Every folder the pipeline works in outside its output (ZIP pages, subtitles
pulled out of a master, a still's frames, speech audio, burned-in ASS files) is
made here: `repurpose-<kind>-<pid>-xxxxxxxx` directly in the temp dir, readable by
its owner only, and locked (flock) for as long as it is in use. A kill -9 or the
out-of-memory killer gives no chance to remove it, so `remove_stale()` (run by
every ingest) removes any folder of ours whose process is dead and whose lock is
free: the kernel drops a lock when its process dies, however it dies.

A new kind of folder joins KINDS; names of other kinds are never touched.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

KINDS = frozenset({"zip", "analysis", "subs", "still", "speech", "ass", "trial"})
PREFIX = "repurpose-"
_NAME = re.compile(rf"{PREFIX}(?P<kind>[a-z]+)-(?P<pid>[0-9]{{1,10}})-[A-Za-z0-9_]+")


@contextmanager
def scratch(kind: str) -> Iterator[Path]:
    """A new private folder for one piece of work, removed on every way out."""
    held: list[tuple[Path, int]] = []
    try:
        folder, _ = claim(kind, lambda made, lock: held.append((made, lock)))
        yield folder
    finally:
        for made, lock in held:
            release(made, lock)


def claim(kind: str, keep: Callable[[Path, int], None] | None = None) -> tuple[Path, int]:
    """A new folder and the descriptor that holds its lock, for a folder that lives
    longer than one `with` block: the caller ends it with release(folder, lock).
    `keep` gets both before a Ctrl-C or SIGTERM can interrupt (they are held while
    the folder is made and handed over), so whoever removes it on the way out
    always has it: a signal arriving just after mkdir leaves nothing behind."""
    if kind not in KINDS:
        raise ValueError(f"unknown scratch kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    with _signals_held():
        folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{os.getpid()}-"))
        try:
            lock = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            # Shared: several holders never exclude each other; remove_stale asks for
            # an exclusive lock, which any holder denies.
            fcntl.flock(lock, fcntl.LOCK_SH)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if keep is not None:
            keep(folder, lock)
    return folder, lock


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (in the main thread, where their handlers run) until
    the block ends; then the handler runs, and its exception finds the folder kept."""
    if not hasattr(signal, "pthread_sigmask") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def release(folder: Path, lock: int) -> None:
    """Remove the folder, then let go of its lock."""
    try:
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(lock)


def remove_stale(tmp: Path | None = None) -> int:
    """Remove the scratch folders that killed runs left in the temp dir; returns how
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
        match = _NAME.fullmatch(entry.name)
        if not match or match["kind"] not in KINDS or not _stale(entry, int(match["pid"])):
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
