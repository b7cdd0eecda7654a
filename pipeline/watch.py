"""`repurpose watch INBOX`: a watch folder that never loses or double-renders
a file, laid out like Adobe Media Encoder's.

Finished variants go to INBOX/Output (or --out), masters move to
INBOX/Source after success, failures to INBOX/Failed with `<name>.error.txt`.
A file is taken only once complete: its size and mtime unchanged for the
settle time. A SQLite ledger in INBOX/.repurpose remembers every file (path,
size, content hash, state, attempts, error), so a restart re-queues nothing
that is done, and a crash mid-render puts that file back to pending. The
same content is rendered once; a changed file under the same name again.
Filesystem events (watchdog) wake the loop early; a periodic rescan catches
what events miss (network shares, restarts).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipeline.errors import InputError, PipelineError
from pipeline.ingest import _is_master_candidate

OUTPUT, SOURCE, FAILED, STATE = "Output", "Source", "Failed", ".repurpose"
RESCAN_S = 10.0
MAX_ATTEMPTS = 3
SCHEMA = """
create table if not exists files (
    path text primary key, size integer, mtime real, sha256 text, state text,
    attempts integer default 0, error text, updated text, retry_at real default 0);
create index if not exists by_hash on files (sha256, state);
"""


def log(message: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} {message}", file=sys.stderr, flush=True)


class Ledger:
    """The durable record of every file the watch folder has seen."""

    def __init__(self, inbox: Path) -> None:
        folder = inbox / STATE
        folder.mkdir(exist_ok=True)
        self.db = sqlite3.connect(folder / "ledger.db", isolation_level=None)
        self.db.execute("pragma journal_mode=wal")
        self.db.executescript(SCHEMA)

    def recover(self) -> int:
        """Files left `rendering` by a crash go back to pending."""
        return self.db.execute("update files set state='pending' where state='rendering'"
                               ).rowcount

    def get(self, path: str) -> sqlite3.Row | None:
        self.db.row_factory = sqlite3.Row
        row: sqlite3.Row | None = self.db.execute("select * from files where path=?",
                                                  (path,)).fetchone()
        return row

    def done_with(self, digest: str) -> bool:
        return self.db.execute("select 1 from files where sha256=? and state='done'",
                               (digest,)).fetchone() is not None

    def set(self, path: str, **fields: object) -> None:
        fields["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        row = self.get(path)
        if row is None:
            names = ["path", *fields]
            self.db.execute(f"insert into files ({', '.join(names)}) values "
                            f"({', '.join('?' * len(names))})", [path, *fields.values()])
        else:
            self.db.execute(f"update files set {', '.join(f'{k}=?' for k in fields)} "
                            "where path=?", [*fields.values(), path])

    def summary(self) -> dict[str, int]:
        return dict(self.db.execute("select state, count(*) from files group by state"))

    def failed(self) -> list[tuple[str, str]]:
        return list(self.db.execute("select path, error from files where state='failed' "
                                    "order by path"))


@dataclass
class Seen:
    size: int
    mtime: float
    since: float        # when this size and mtime were first seen


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


class Watcher:
    def __init__(self, inbox: Path, out: Path | None, presets_dirs: list[Path],
                 settle: float, jobs: int | None) -> None:
        self.inbox = inbox.resolve()
        self.out = (out or self.inbox / OUTPUT).resolve()
        self.presets_dirs = presets_dirs
        self.settle = settle
        self.jobs = jobs
        self.ledger = Ledger(self.inbox)
        self.seen: dict[Path, Seen] = {}
        self.stopping = False
        self.wake = threading.Event()
        self.unreadable: set[Path] = set()     # could not be read: --once does not wait

    # ---------------------------------------------------------------- finding files

    def candidates(self) -> Iterator[Path]:
        skip = {self.inbox / OUTPUT, self.inbox / SOURCE, self.inbox / FAILED,
                self.inbox / STATE, self.out}
        for folder, dirs, files in os.walk(self.inbox):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if here / d not in skip and not d.startswith("."))
            for name in sorted(files):
                path = here / name
                if _is_master_candidate(path) and path.is_file():
                    yield path

    def ready(self) -> list[Path]:
        """Files whose size and mtime have not changed for the settle time."""
        now, found = time.monotonic(), []
        present = set()
        for path in self.candidates():
            present.add(path)
            try:
                stat = path.stat()
            except OSError:
                continue
            seen = self.seen.get(path)
            if seen is None or (seen.size, seen.mtime) != (stat.st_size, stat.st_mtime):
                self.seen[path] = Seen(stat.st_size, stat.st_mtime, now)
                continue
            if now - seen.since >= self.settle and stat.st_size > 0 and complete(path):
                found.append(path)
        for gone in set(self.seen) - present:
            del self.seen[gone]
        return found

    # ---------------------------------------------------------------- one file

    def take(self, path: Path) -> None:
        """Render one settled file; a file that vanished or cannot be read meanwhile
        is left for the next scan, never a reason to stop watching."""
        try:
            self._take(path)
        except OSError as exc:
            self.unreadable.add(path)
            log(f"{path.relative_to(self.inbox)}: skipped for now ({exc.strerror or exc})")

    def _take(self, path: Path) -> None:
        from pipeline.outputs import sha256_file

        key = str(path.relative_to(self.inbox))
        row = self.ledger.get(key)
        if row is not None and row["retry_at"] and row["retry_at"] > time.time():
            return
        digest = sha256_file(path)
        stat = path.stat()
        if self.ledger.done_with(digest):
            log(f"{key}: same content as a file already rendered; moved to {SOURCE}/")
            self.ledger.set(key, size=stat.st_size, mtime=stat.st_mtime, sha256=digest,
                            state="done", error="duplicate of rendered content")
            self._move(path, SOURCE)
            return
        attempts = (row["attempts"] if row is not None else 0) + 1
        self.ledger.set(key, size=stat.st_size, mtime=stat.st_mtime, sha256=digest,
                        state="rendering", attempts=attempts, error=None)
        log(f"{key}: rendering")
        try:
            errors = self._render(path)
        except Exception as exc:  # noqa: BLE001 - recorded and retried, never lost
            errors = [PipelineError(f"internal error: {exc}", path=key)]
        if not errors:
            self.ledger.set(key, state="done")
            self._move(path, SOURCE)
            log(f"{key}: done, master moved to {SOURCE}/")
            return
        message = "; ".join(str(e) for e in errors)
        definite = all(isinstance(e, InputError) for e in errors) or attempts >= MAX_ATTEMPTS
        if definite:
            self.ledger.set(key, state="failed", error=message)
            target = self._move(path, FAILED)
            target.with_name(target.name + ".error.txt").write_text(
                f"{key} could not be rendered.\n\n{message}\n\nFix the file (or shoot.yaml) "
                f"and put it back in the inbox, or run: repurpose watch --retry-failed "
                f"{self.inbox}\n", encoding="utf-8")
            log(f"{key}: failed, moved to {FAILED}/ ({message})")
        else:
            wait = 30.0 * 2 ** (attempts - 1)
            self.ledger.set(key, state="pending", error=message, retry_at=time.time() + wait)
            log(f"{key}: attempt {attempts} failed, retrying in {wait:.0f} s ({message})")

    def _render(self, path: Path) -> list[PipelineError]:
        from pipeline.runner import run

        relative = path.parent.relative_to(self.inbox)
        report = run([path], self.out / relative, self.presets_dirs, jobs=self.jobs,
                     shoot_root=self.inbox)
        return list(report.errors)

    def _move(self, path: Path, folder: str) -> Path:
        target = self.inbox / folder / path.relative_to(self.inbox)
        target.parent.mkdir(parents=True, exist_ok=True)
        stem, n = target, 2
        while target.exists():
            target = stem.with_name(f"{stem.stem}-{n}{stem.suffix}")
            n += 1
        shutil.move(str(path), str(target))
        self.seen.pop(path, None)
        return target

    # ---------------------------------------------------------------- the loop

    def cleanup(self) -> None:
        """What a crash left: files marked rendering, temporary outputs."""
        back = self.ledger.recover()
        if back:
            log(f"{back} file(s) left rendering by a crash are pending again")
        if self.out.exists():
            for temp in self.out.rglob(".*.part"):
                temp.unlink(missing_ok=True)

    def once(self) -> None:
        """Process what is in the inbox now, waiting for each file to settle."""
        self.cleanup()
        while not self.stopping:
            for path in self.ready():
                if self.stopping:
                    break
                self.take(path)
            waiting = [p for p in self.candidates() if self._pending(p)]
            if not waiting:
                return
            time.sleep(min(1.0, max(0.1, self.settle / 4)))

    def _pending(self, path: Path) -> bool:
        """Whether a file in the inbox still has to be taken. Every file left there is
        (done and failed ones were moved out: one back under the same name is a new
        arrival), except one waiting for a retry later."""
        if path in self.unreadable:
            return False
        row = self.ledger.get(str(path.relative_to(self.inbox)))
        if row is not None and row["state"] == "pending" and row["retry_at"]:
            return bool(row["retry_at"] <= time.time() + 5)
        return True

    def forever(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        self.cleanup()
        wake = self.wake

        class Poke(FileSystemEventHandler):
            def on_any_event(self, event: object) -> None:
                wake.set()

        observer = Observer()
        observer.schedule(Poke(), str(self.inbox), recursive=True)
        observer.start()
        log(f"watching {self.inbox} (output {self.out})")
        try:
            while not self.stopping:
                for path in self.ready():
                    if self.stopping:
                        break
                    self.take(path)
                # Files settling are looked at again soon; otherwise a periodic rescan
                # catches what events miss.
                self.wake.wait(max(0.2, self.settle / 2) if self.seen else RESCAN_S)
                self.wake.clear()
        finally:
            observer.stop()
            observer.join()
        log("stopped")

    def stop(self, *_: object) -> None:
        if not self.stopping:
            log("stopping after the current file")
        self.stopping = True
        self.wake.set()


def retry_failed(inbox: Path) -> int:
    """Put every failed file back into the inbox, pending."""
    ledger = Ledger(inbox)
    count = 0
    for path, _ in ledger.failed():
        moved = inbox / FAILED / path
        if moved.exists():
            shutil.move(str(moved), str(inbox / path))
            Path(str(moved) + ".error.txt").unlink(missing_ok=True)
        ledger.set(path, state="pending", attempts=0, error=None, retry_at=0)
        count += 1
    return count


def install_stop(watcher: Watcher) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, watcher.stop)
