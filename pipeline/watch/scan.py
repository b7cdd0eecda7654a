"""What the inbox holds to take, and which of it has settled: size and mtime
unchanged for the settle time, then complete (settle). Links, hard links and
media named like sidecars are taken too, only to fail with the reason
(`refusal`)."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest import _is_master_candidate, misnamed_media
from pipeline.watch.folders import FAILED, OUTPUT, SOURCE, STATE
from pipeline.watch.settle import complete


@dataclass
class Seen:
    size: int
    mtime: float
    since: float        # when this size and mtime were first seen


class Scan:
    """The files of one inbox as last seen: which are there, which have settled."""

    def __init__(self, inbox: Path, out: Path, settle: float) -> None:
        self.inbox, self.out, self.settle = inbox, out, settle
        self.seen: dict[Path, Seen] = {}
        self.sniffed: dict[Path, tuple[tuple[int, int], str | None]] = {}
        self.left: set[Path] = set()        # could not be read, or empty: --once does not wait

    def candidates(self) -> Iterator[Path]:
        """What the inbox holds to take: masters, links (which fail) and media named
        like sidecars (which fail). Our own and hidden folders are not entered, nor
        any link (os.walk does not follow them)."""
        skip = {self.inbox / n for n in (OUTPUT, SOURCE, FAILED, STATE)} | {self.out}
        for folder, dirs, files in os.walk(self.inbox):
            here = Path(folder)
            links = [d for d in dirs if (here / d).is_symlink() and here / d not in skip]
            dirs[:] = sorted(d for d in dirs if here / d not in skip and not d.startswith(".")
                             and d not in links)
            for name in sorted(files + links):
                if not name.startswith(".") and self._wanted(here / name):
                    yield here / name

    def _wanted(self, path: Path) -> bool:
        try:
            info = os.lstat(path)
        except OSError:
            return False
        if stat.S_ISLNK(info.st_mode):
            return True
        return stat.S_ISREG(info.st_mode) and (
            _is_master_candidate(path) or self._misnamed(path, info) is not None)

    def _misnamed(self, path: Path, info: os.stat_result) -> str | None:
        """What a file with a sidecar's name really is, when it is a photo or a video
        (a JPEG named manifest.json); looked at once per size and date."""
        if _is_master_candidate(path):
            return None
        mark = (info.st_size, info.st_mtime_ns)
        known = self.sniffed.get(path)
        if known is None or known[0] != mark:
            known = self.sniffed[path] = (mark, misnamed_media(path))
        return known[1]

    def ready(self) -> list[Path]:
        """Files whose size and mtime have not changed for the settle time."""
        now, found, present = time.monotonic(), [], set()
        for path in self.candidates():
            present.add(path)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            seen = self.seen.get(path)
            if seen is None or (seen.size, seen.mtime) != (info.st_size, info.st_mtime):
                self.seen[path] = Seen(info.st_size, info.st_mtime, now)
                self.left.discard(path)
                continue
            if now - seen.since < self.settle:
                continue
            if info.st_size == 0:
                self.left.add(path)             # an empty file waits for its content
            elif stat.S_ISLNK(info.st_mode) or complete(path):
                found.append(path)
        for gone in set(self.seen) - present:
            del self.seen[gone]
            self.sniffed.pop(gone, None)
        return found

    def refusal(self, path: Path, folder: int, info: os.stat_result) -> str | None:
        """Why a file is not rendered at all, or None."""
        if stat.S_ISLNK(info.st_mode):
            return (f"a link (to {os.readlink(path.name, dir_fd=folder)}); the watcher does "
                    "not follow links out of an inbox: put the file itself there")
        if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
            # Another name of a file that may be anyone's (where hard links to others'
            # files are allowed, fs.protected_hardlinks=0): read as if it were content.
            return (f"a hard link ({info.st_nlink} names for one file); the watcher reads "
                    "only files of their own: copy the file itself in")
        what = self._misnamed(path, info)
        if what:
            return (f"{what} named like a sidecar file ({path.suffix}); rename it with its "
                    "real extension and put it back")
        return None
