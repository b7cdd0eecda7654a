"""The watch loop: take each settled file (scan), render it with its own run, and
move it to Source/ or Failed/ (pipeline.watch describes the whole folder).

With `jobs` above 1, up to that many masters are taken at once, each in a
thread of its own with its own private-copy folder. The bookkeeping (ledger,
scan, moves, pauses) happens under one lock, so it stays in the order a single
watcher would keep; only reading, copying and rendering a master run
alongside others. Two masters that could claim one output name (the same
stem in one folder) are never rendered at once, nor two copies of the same
content.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.errors import PipelineError, SetupError, WriteError, write_error
from pipeline.notify import Notifier, Sending, failed_summary, summary
from pipeline.outputs import remove_stale_temps
from pipeline.trust import Operator
from pipeline.watch.faults import MAX_ATTEMPTS, backoff, disk_fault, transient
from pipeline.watch.folders import (
    FAILED,
    OTHERS_WRITE,
    OUTPUT,
    SOURCE,
    make_folders,
    move,
    move_with_note,
    opened,
    reading,
)
from pipeline.watch.ledger import CRASHED, Ledger, LedgerError
from pipeline.watch.messages import error_text, log, reasons
from pipeline.watch.outbox import guard, relabel, relabel_all
from pipeline.watch.scan import Scan
from pipeline.watch.settle import fingerprint, held, identity
from pipeline.watch.stage import Workspace, context, remove_stale

RESCAN_S = 10.0             # a rescan catches what filesystem events miss
RETRY_S = 30.0              # the first wait after a transient failure; it doubles
ONCE_WAIT_S = 5.0           # --once waits for a retry or a pause no longer than this
# Failed writes that say something about the disk, not about the master.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                errno.ENAMETOOLONG, errno.EMLINK, errno.EXDEV}


@dataclass
class Taken:
    """A settled master being taken: where it is, and what was read of it. The
    descriptors stay open while it is taken: its content is read only through them."""

    path: Path
    key: str
    info: os.stat_result
    folder: int             # its folder, reached without following a link
    master: int             # the file itself, opened without following a link
    digest: str = ""
    context: str = ""
    report: Any = None      # the render's (out folder, Report), for its summary


class Watcher:
    def __init__(self, inbox: Path, out: Path | None, presets_dirs: list[Path],
                 settle: float, jobs: int | None, *, operator: Operator | None = None,
                 trust_inbox: bool = False, retry_wait: float = RETRY_S,
                 notifier: Notifier | None = None, broker: str | None = None) -> None:
        self.inbox = inbox.resolve()
        self.broker = broker                # renders go to queue workers (pipeline.queue)
        self.own_output = out is None
        # Output/ is not resolved: start-up refused a link there, and one made later
        # is found before each render rather than followed.
        self.out = self.inbox / OUTPUT if out is None else out.resolve()
        self.presets_dirs = presets_dirs
        self.settle, self.retry_wait = settle, retry_wait
        self.jobs = jobs or 1               # masters taken at once
        self.operator, self.trust_inbox = operator, trust_inbox
        # Summaries go out from a thread of their own: a slow webhook never holds
        # up the next file. `finish` waits for them when the watcher ends.
        self.sending = Sending(notifier) if notifier else None
        make_folders(self.inbox, self.own_output)
        self.ledger = Ledger(self.inbox)
        self.lock = threading.RLock()       # the ledger, the scan and moves: one at a time
        self.spare = [Workspace(self.inbox, slot) for slot in range(self.jobs)]
        self.busy: dict[Path, Future[None]] = {}
        self.pool = None
        if self.jobs > 1:
            _load_imaging()
            self.pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="repurpose-take")
        self.broken: BaseException | None = None    # a bug in a taking thread: re-raised
        self.rendering: dict[str, tuple[str, str]] = {}     # key: (digest, context)
        self.told: set[str] = set()         # keys waiting for a twin, said once
        self.scan = Scan(self.inbox, self.out, settle)
        self.failed_here: set[str] = set()
        self.paused_until = 0.0             # time.monotonic(); a refused write pauses all
        self.faults = 0                     # refused writes in a row
        self.stopping = False
        self.wake = threading.Event()

    def key(self, path: Path) -> str:
        return str(path.relative_to(self.inbox))

    # ---------------------------------------------------------------- one file

    def take(self, path: Path, work: Workspace | None = None) -> None:
        """Take one settled file (copied into `work`, the first workspace when not
        given). One that vanished or cannot be read is left for the next scan; a disk
        that refuses a write pauses the watcher; neither stops it."""
        key = self.key(path)
        try:
            self._take(path, key, work or self.spare[0])
        except (WriteError, LedgerError, SetupError) as exc:
            with self.lock:
                fields: dict[str, Any] = {}
                row = self.ledger.get(key) if isinstance(exc, SetupError) else None
                if row is not None and row["state"] == "rendering":
                    # The broker went away, not the master: the attempt is given back.
                    fields["attempts"] = max(0, (row["attempts"] or 1) - 1)
                self.ledger.set(key, state="pending", error=str(exc), **fields)
                self._pause(key, exc)
        except sqlite3.Error as exc:        # a ledger changed under us: one line, no traceback
            with self.lock:
                self._pause(key, LedgerError(f"the ledger {self.ledger.path}: {exc}",
                                             hint="move it away and start the watcher again"))
        except OSError as exc:
            with self.lock:
                self.scan.left.add(path)
            log(f"{key}: skipped for now ({exc.strerror or exc})")

    def _take(self, path: Path, key: str, work: Workspace) -> None:
        with self.lock:
            row = self.ledger.get(key)
        if row is not None and row["retry_at"] and row["retry_at"] > time.time():
            return
        parts = path.relative_to(self.inbox).parent.parts
        with reading(self.inbox, parts) as folder:
            info = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
            with self.lock:
                refusal = self.scan.refusal(path, folder, info)
                if refusal:
                    self._fail(path, key, [refusal])
                    return
            with held(folder, path.name, info) as master:
                taken = Taken(path, key, info, folder, master, fingerprint(master),
                              context(self.inbox, parts, self.trust_inbox))
                self._judge(taken, row, work)

    def _judge(self, t: Taken, row: sqlite3.Row | None, work: Workspace) -> None:
        """Take a master already read: done when the same content was rendered in the
        same context, else rendered from a private copy."""
        with self.lock:
            attempts = self._admit(t, row)
            if attempts is None:
                return
            self.rendering[t.key] = (t.digest, t.context)
        try:
            errors = self._staged_render(t, work)
        finally:
            work.clear()
            with self.lock:
                self.rendering.pop(t.key, None)
        with self.lock:
            self._settle(t, errors, attempts)

    def _admit(self, t: Taken, row: sqlite3.Row | None) -> int | None:
        """Record that `t` is being rendered; which attempt this is, or None when it
        is not to be rendered (a duplicate, failed, or a ledger that cannot record;
        or the same content being rendered now: taken again once that is done)."""
        twin = next((key for key, seen in self.rendering.items()
                     if seen == (t.digest, t.context)), None)
        if twin is not None:
            if t.key not in self.told:
                self.told.add(t.key)
                log(f"{t.key}: same content as {twin}, which is being rendered; taken after it")
            return None
        self.told.discard(t.key)
        if self.ledger.done_with(t.digest, t.context):
            self.ledger.set(t.key, size=t.info.st_size, mtime=t.info.st_mtime,
                            sha256=t.digest, context=t.context, state="done",
                            error="duplicate of rendered content")
            self._move(t.path, t.key, SOURCE)
            log(f"{t.key}: same content as a file already rendered; moved to {SOURCE}/")
            return None
        attempts = self._attempts(t, row)
        if attempts is None:
            return None
        self.ledger.set(t.key, size=t.info.st_size, mtime=t.info.st_mtime, sha256=t.digest,
                        context=t.context, state="rendering", attempts=attempts, error=None,
                        retry_at=0)
        if self.ledger.blocked:
            return None         # taken again once the ledger can record it
        return attempts

    def _attempts(self, t: Taken, row: sqlite3.Row | None) -> int | None:
        """Which attempt at this content this is; None when it failed instead."""
        same = row is not None and row["sha256"] == t.digest   # new content: new count
        attempts = (row["attempts"] if same and row is not None else 0) + 1
        if same and row is not None and row["error"] == CRASHED and attempts > MAX_ATTEMPTS:
            # It stops the whole watcher (a decoder crash, memory): no more tries.
            self._fail(t.path, t.key, [f"{CRASHED}, {attempts - 1} times; it may crash the "
                                       "decoder or need more memory than there is"])
            return None
        return attempts

    def _settle(self, t: Taken, errors: list[PipelineError] | None, attempts: int) -> None:
        """Record what came of an attempt: None for errors is a copy that was not what
        had been read."""
        if errors is None:
            self.ledger.set(t.key, state="pending", attempts=attempts - 1, error=None)
            log(f"{t.key}: changed while it was copied; taken again once it settles")
            return
        now = identity(t.path)
        if now != identity(t.info):
            self._changed(t.key, now is None, errors, attempts)
        else:
            self._conclude(t.path, t.key, errors, attempts, t.report)

    def _staged_render(self, t: Taken, work: Workspace) -> list[PipelineError] | None:
        """Render a private copy of the master: None when the copy is not what was
        read (the file changed while it was copied)."""
        try:
            staged = work.stage(t.master, t.folder, t.path.name, t.digest, t.key)
        except WriteError as exc:       # the watcher's disk, not the master
            return [exc]
        if staged is None:
            return None
        log(f"{t.key}: rendering")
        return self._render(t, staged)

    def _render(self, t: Taken, staged: Path) -> list[PipelineError]:
        from pipeline.runner import run

        path, key = t.path, t.key
        out = self.out / path.parent.relative_to(self.inbox)
        try:
            guard(self.inbox, self.out, self.own_output, out)
            # A ZIP's pages are masters of one run: they share this file's part of
            # the cores (all of them when one file is taken at a time).
            report = run([staged], out, self.presets_dirs,
                         jobs=max(1, (os.cpu_count() or 1) // self.jobs),
                         shoot_root=self.inbox, trusted=self.trust_inbox,
                         operator=self.operator, announce=self._announce,
                         aliases={staged: path}, broker=self.broker)
            relabel(self.inbox, out)
            t.report = (out, report)
        except SetupError:                  # the broker went away: the watcher pauses
            raise
        except PipelineError as exc:        # ConfigError of a trusted shoot.yaml, WriteError
            return [exc]
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            return [write_error(exc, exc.filename or out, key)]
        except Exception as exc:  # noqa: BLE001 - recorded and reported, never lost
            return [PipelineError(f"internal error: {type(exc).__name__}: {exc}", path=key,
                                  hint="please report this with the file; "
                                       "REPURPOSE_DEBUG=1 shows more")]
        return list(report.errors)

    def _announce(self, line: str) -> None:
        log(f"privileged: {line}")

    def _reasons(self, errors: list[PipelineError]) -> list[str]:
        """One line per problem, as strangers may read it (Failed/*.error.txt): the
        private copy's and the inbox's own paths left out."""
        lines = reasons(errors)
        works = [(f"{work.path}{os.sep}", "") for work in self.spare]
        for long, short in (*works, (f"{self.inbox}{os.sep}", ""), (str(self.inbox), "INBOX")):
            lines = [line.replace(long, short) for line in lines]
        return lines

    def _conclude(self, path: Path, key: str, errors: list[PipelineError],
                  attempts: int, report: Any = None) -> None:
        if not errors:
            self.faults = 0
            self.ledger.set(key, state="done")
            self._move(path, key, SOURCE)
            log(f"{key}: done, master moved to {SOURCE}/")
            self._tell(key, report=report)
            return
        lines = self._reasons(errors)
        message = "; ".join(lines)
        disk = any(disk_fault(e) for e in errors)
        if not transient(errors) or (not disk and attempts >= MAX_ATTEMPTS):
            self._fail(path, key, lines)
        elif disk:              # not the master's fault: it does not use up an attempt
            self.ledger.set(key, state="pending", error=message, attempts=attempts - 1)
            self._pause(key, errors[0] if len(errors) == 1 else PipelineError(message))
        else:
            wait = backoff(self.retry_wait, attempts)
            self.ledger.set(key, state="pending", error=message, retry_at=time.time() + wait)
            log(f"{key}: attempt {attempts} failed, retrying in {wait:g} s ({message})")

    def _changed(self, key: str, gone: bool, errors: list[PipelineError],
                 attempts: int) -> None:
        """The master vanished or was replaced while it was rendered (saved again, moved
        away): whatever came of it says nothing about the file there now."""
        message = "; ".join(self._reasons(errors)) or None
        if gone:
            self.ledger.set(key, state="gone", error=message)
            log(f"{key}: vanished while it was rendered" + (f" ({message})" if message else ""))
        else:
            self.ledger.set(key, state="pending", attempts=attempts - 1, error=None)
            log(f"{key}: changed while it was rendered; taken again once it settles")

    def _fail(self, path: Path, key: str, lines: list[str]) -> None:
        message = "; ".join(lines)
        note = error_text(key, lines)
        moved = self._move(path, key, FAILED, note)
        self.ledger.failure(key, moved, message)
        self.failed_here.add(key)
        self.faults = 0
        log(f"{key}: failed, moved to {FAILED}/{moved} ({message})")
        self._tell(key, f"{FAILED}/{moved}", message)

    def _tell(self, key: str, failed_to: str | None = None, message: str | None = None,
              report: Any = None) -> None:
        """The hand-off of a finished file (done, or failed for good) to --notify and
        --events; what becomes of it never changes the file's outcome. `report`: the
        render's (out folder, Report)."""
        if self.sending is None:
            return
        try:
            if failed_to is None and report is not None:
                out, made = report
                body = summary("watch.finished", [key], out, made)
            else:
                body = failed_summary("watch.finished", [key], self.out,
                                      [{"source": key, "preset": None, "error": message}],
                                      failed_to)
        except Exception as exc:  # noqa: BLE001 - a hand-off never stops the watcher
            log(f"{key}: no summary sent ({type(exc).__name__}: {exc})")
            return
        self.sending.send(body)

    def finish(self) -> None:
        """Wait for the summaries still to be sent (each bounded by its attempts)."""
        if self.sending is not None:
            self.sending.close()
            self.sending = None

    def _move(self, path: Path, key: str, folder: str, note: bytes | None = None) -> str:
        """Move a master (or a link itself) into Source/ or Failed/ under its own
        relative path, on a free name; returns that path."""
        parent = path.relative_to(self.inbox).parent.parts
        try:
            with opened(self.inbox, parent) as source, \
                    opened(self.inbox, [folder, *parent], create=True) as target:
                name = (move(source, path.name, target, path.name) if note is None else
                        move_with_note(source, path.name, target, path.name, note))
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            raise write_error(exc, f"{self.inbox / folder / key}", key) from exc
        self.scan.seen.pop(path, None)
        return str(PurePosixPath(*parent, name))

    # ---------------------------------------------------------------- the loop

    def _pause(self, who: str, error: PipelineError) -> None:
        self.faults += 1
        wait = backoff(self.retry_wait, self.faults)
        self.paused_until = time.monotonic() + wait
        log(f"{who}: {error}; pausing, trying again in {wait:g} s")

    def cleanup(self) -> None:
        """At start: what a crash left (files marked rendering, our temporary outputs,
        private copies), manifests an earlier version labelled with the operator's
        paths, and a umask that keeps every folder and file the watcher makes from
        being writable by group or others."""
        os.umask(os.umask(0) | OTHERS_WRITE)    # no thread runs yet to see umask 0
        if self.trust_inbox:
            log(f"trusting shoot.yaml files in {self.inbox}: they may run programs, call "
                "hosts and read files; use --trust-inbox only on a folder nobody else "
                "can write to")
        back = self.ledger.recover()
        if back:
            log(f"{back} file(s) left rendering by a crash are pending again")
        if self.out.is_dir() and not self.out.is_symlink():
            if not self.broker:             # with workers elsewhere, theirs are not ours
                remove_stale_temps(self.out)
            relabel_all(self.inbox, self.out)
        remove_stale(self.inbox)

    def step(self) -> None:
        """One pass: write what the ledger kept back, then take each settled file,
        unless a refused write paused the watcher."""
        with self.lock:
            if not self.ledger.flush():
                if time.monotonic() >= self.paused_until:
                    self._pause("ledger", LedgerError(
                        f"cannot write {self.ledger.path}: {self.ledger.fault}",
                        hint="free space or make the inbox's disk writable"))
                return
            ready = list(self.scan.ready())
        for path in ready:
            if self.stopping or time.monotonic() < self.paused_until:
                break
            if self.pool is None:
                self.take(path)
            elif len(self.busy) >= self.jobs:
                break
            else:
                self._start(path)
        if self.broken is not None:
            raise self.broken

    def _start(self, path: Path) -> None:
        """Take `path` in a thread of its own, unless it is being taken, or another
        master being taken could claim its output name or has its content."""
        with self.lock:
            if path in self.busy or any(_rivals(path, other) for other in self.busy):
                return
            work = self.spare.pop()
            future = self.pool.submit(self.take, path, work)  # type: ignore[union-attr]
            self.busy[path] = future

        def done(finished: Future[None]) -> None:
            with self.lock:
                self.busy.pop(path, None)
                self.spare.append(work)
                if finished.exception() is not None and self.broken is None:
                    self.broken = finished.exception()
            self.wake.set()

        future.add_done_callback(done)

    def drain(self) -> None:
        """Wait for the masters being taken (each finishes its render)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def once(self) -> bool:
        """Process what is in the inbox now, waiting for each file to settle. True when
        everything seen is done: nothing failed, nothing left in the inbox."""
        self.cleanup()
        try:
            while not self.stopping:
                self.step()
                if not self._waiting():
                    break
                self.wake.wait(min(1.0, max(0.1, self.settle / 4)))
                self.wake.clear()
        finally:
            self.drain()
        if self.broken is not None:
            raise self.broken
        with self.lock:
            left = list(self.scan.candidates())
        self.finish()
        return not (self.failed_here or left or self.ledger.blocked)

    def _waiting(self) -> bool:
        with self.lock:
            if self.busy:
                return True
            if self.paused_until - time.monotonic() > ONCE_WAIT_S:
                return False
            return self.ledger.blocked or any(self._pending(p)
                                              for p in self.scan.candidates())

    def _pending(self, path: Path) -> bool:
        """Whether a file in the inbox is still to be taken soon. Every file left there
        is (done and failed ones were moved out: one back under the same name is a new
        arrival), except one unreadable, empty, or waiting long for a retry."""
        if path in self.scan.left:
            return False
        try:
            row = self.ledger.get(self.key(path))
        except LedgerError:
            return False
        if row is not None and row["state"] == "pending" and row["retry_at"]:
            return bool(row["retry_at"] <= time.time() + ONCE_WAIT_S)
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
                self.step()
                self.wake.wait(self._nap())
                self.wake.clear()
        finally:
            observer.stop()
            observer.join()
            self.drain()
            self.finish()
        log("stopped")

    def _nap(self) -> float:
        """Files settling are looked at again soon; a pause ends on time; otherwise a
        periodic rescan catches what events miss."""
        pause = self.paused_until - time.monotonic()
        if pause > 0:
            return min(pause, RESCAN_S)
        with self.lock:
            settling = bool(self.scan.seen)
        return max(0.2, self.settle / 2) if settling else RESCAN_S

    def stop(self, *_: object) -> None:
        if not self.stopping:
            log("stopping after the current file" if self.jobs == 1 else
                "stopping after the files being rendered")
        self.stopping = True
        self.wake.set()


def _load_imaging() -> None:
    """Import the imaging stack before threads race to: OpenCV's package replaces
    itself while it loads, and a second thread importing it then sees a module
    without its attributes ("module 'cv2' has no attribute 'data'")."""
    import cv2  # noqa: F401

    import pipeline.render.jobs  # noqa: F401
    import pipeline.render.videojob  # noqa: F401


_NUMBERED = re.compile(r"-[0-9]+$")


def _rivals(path: Path, other: Path) -> bool:
    """Whether two masters could claim one output name if rendered at once: the
    same folder and stem, ignoring case and a -N that names are given apart by
    (pipeline.outputs.assign_stems)."""
    def base(p: Path) -> str:
        return _NUMBERED.sub("", p.stem).casefold()

    return path.parent == other.parent and base(path) == base(other)


def install_stop(watcher: Watcher) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, watcher.stop)
