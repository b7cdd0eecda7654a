"""The ledger: a SQLite file in INBOX/.repurpose remembering every file the watch
folder has seen (path, size, content hash, state, attempts, error, where a
failure went), so a restart re-queues nothing that is done and a crash
mid-render puts that file back to pending.

Versions (pragma user_version): 0 is the first ledger; 1 adds `files.moved_to`
and the `failures` table, one row per failure, so a name that fails twice is
brought back twice by --retry-failed; 2 adds `files.context`, what a render
depended on besides the master's bytes (its folder and governing shoot.yaml),
so the same content elsewhere is not taken for done. A write the disk refuses
(full, read-only) is kept, in order, and written once the disk takes it again;
`blocked` says so meanwhile and the watcher pauses.

The file sits in the inbox, so it may have been planted: it is opened with
`trusted_schema` off and refused unless it holds exactly the tables and index
we make (a trigger or a view would run SQL of someone else's on our writes).
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.errors import PipelineError, printable, write_error
from pipeline.watch.folders import (
    FAILED,
    NOTE,
    PRIVATE_MODE,
    STATE,
    InboxError,
    move,
    opened,
    remove_file,
)

FILE = "ledger.db"
SCHEMA = """
create table if not exists files (
    path text primary key, size integer, mtime real, sha256 text, state text,
    attempts integer default 0, error text, updated text, retry_at real default 0);
create index if not exists by_hash on files (sha256, state);
"""
TO_V1 = """
begin;
{add_column}
create table if not exists failures (
    id integer primary key, path text not null, moved_to text not null, error text,
    at text);
insert into failures (path, moved_to, error, at)
    select path, path, error, updated from files where state = 'failed';
update files set moved_to = path where state = 'failed' and moved_to is null;
pragma user_version = 1;
commit;
"""
TO_V2 = """
begin;
alter table files add column context text;
pragma user_version = 2;
commit;
"""
VERSION = 2
# Every schema object a ledger of ours holds (its SQL as SQLite keeps it, spaces
# normalised); the files table as each version left it.
FILES_V0 = ("create table files(path text primary key,size integer,mtime real,sha256 text,"
            "state text,attempts integer default 0,error text,updated text,"
            "retry_at real default 0")
KNOWN: dict[str, set[str | None]] = {
    "files": {FILES_V0 + ")", FILES_V0 + ",moved_to text)",
              FILES_V0 + ",moved_to text,context text)"},
    "failures": {"create table failures(id integer primary key,path text not null,"
                 "moved_to text not null,error text,at text)"},
    "by_hash": {"create index by_hash on files(sha256,state)"},
    "sqlite_autoindex_files_1": {None},
}
# SQLite result codes (and, before Python 3.11, the words of their messages) that
# say the disk refused, not that the SQL is wrong.
FAULTS = {13: "disk full", 8: "read-only disk", 10: "disk I/O error",
          14: "cannot open the file", 5: "busy", 6: "locked"}
FAULT_WORDS = {"disk is full": "disk full", "readonly": "read-only disk",
               "disk i/o": "disk I/O error", "unable to open": "cannot open the file",
               "locked": "locked"}
CRASHED = "the watcher stopped while it rendered this file (a crash, kill -9, power loss)"


class LedgerError(PipelineError):
    """The ledger cannot be read or written (its disk is full or read-only)."""


def storage_fault(exc: sqlite3.Error) -> str | None:
    """Why the disk refused a ledger operation, or None for any other error (a bug,
    which propagates)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in FAULTS:
        return FAULTS[code & 0xFF]
    text = str(exc).lower()
    return next((why for words, why in FAULT_WORDS.items() if words in text), None)


def stored(name: str) -> str | bytes:
    """A path as the ledger keeps it: text, or its bytes when the name is not UTF-8
    (a file name may hold any byte but "/" and NUL; SQLite text may not)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name)
    return name


def loaded(value: Any) -> Any:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Ledger:
    """The durable record of every file the watch folder has seen."""

    def __init__(self, inbox: Path) -> None:
        folder = inbox / STATE
        self.path = folder / FILE
        self.deferred: list[tuple[str, list[Any]]] = []
        self.fault: str | None = None
        try:
            folder.mkdir(mode=PRIVATE_MODE, exist_ok=True)  # check_layout refused a link
            _check_own_files(folder)
            # Used from the watcher's taking threads too, always under its lock.
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10,
                                      check_same_thread=False)
            # Before anything reads the schema: SQL functions in it (an index, a
            # default) may no longer do what is not harmless.
            self.db.execute("pragma trusted_schema=off")
            self._check_schema()
            self.db.row_factory = sqlite3.Row
            self.db.execute("pragma journal_mode=wal")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise self._error("cannot open", exc) from exc

    def _check_schema(self) -> None:
        """Refuse a file that is no ledger of ours (a trigger, a view, another table,
        a files table of another shape, not a database at all): one line, the fix."""
        try:
            rows = self.db.execute("select type, name, sql from sqlite_master").fetchall()
        except sqlite3.DatabaseError as exc:
            if storage_fault(exc) is not None:
                raise
            raise self._foreign(str(exc)) from exc
        for kind, name, sql in rows:
            shape = None if sql is None else _normal(sql)
            if kind not in ("table", "index") or shape not in KNOWN.get(name, ()):
                raise self._foreign(f"it holds {kind} {name!r}, which the watcher never "
                                    "makes")

    def _foreign(self, why: str) -> InboxError:
        return InboxError(f"{self.path} is not a ledger of this watcher ({printable(why)}); "
                          "move it away and the watcher starts a new one")
    def _error(self, doing: str, exc: sqlite3.Error | OSError) -> LedgerError:
        fault = storage_fault(exc) if isinstance(exc, sqlite3.Error) else exc.strerror
        if fault is None:           # not the disk: the file itself is damaged
            return LedgerError(f"{doing} the ledger {self.path}: {printable(str(exc))}",
                               hint="move it away and start the watcher again")
        return LedgerError(f"{doing} the ledger {self.path}: {fault}",
                           hint="free space or make the inbox's disk writable")

    def _migrate(self) -> None:
        self.db.executescript(SCHEMA)
        version = self.db.execute("pragma user_version").fetchone()[0]
        if version < 1:
            columns = {row[1] for row in self.db.execute("pragma table_info(files)")}
            add = "" if "moved_to" in columns else "alter table files add column moved_to text;"
            self.db.executescript(TO_V1.format(add_column=add))
        if version < VERSION:
            columns = {row[1] for row in self.db.execute("pragma table_info(files)")}
            if "context" not in columns:
                self.db.executescript(TO_V2)

    # ---------------------------------------------------------------- reading

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return list(self.db.execute(sql, params))
        except sqlite3.Error as exc:
            # Not a bug of ours to crash on: a ledger damaged (or changed) under us.
            raise self._error("cannot read", exc) from exc

    def get(self, path: str) -> sqlite3.Row | None:
        rows = self._read("select * from files where path=?", (stored(path),))
        return rows[0] if rows else None

    def done_with(self, digest: str, context: str) -> bool:
        """Whether this content was rendered in this context (the same folder and
        shoot.yaml): its outputs are there already."""
        return bool(self._read("select 1 from files where sha256=? and state='done' and "
                               "context=?", (digest, context)))

    def summary(self) -> dict[str, int]:
        return {row[0]: row[1] for row in self._read(
            "select state, count(*) from files group by state")}

    def failed(self) -> list[dict[str, Any]]:
        """Every failure not yet brought back: id, path, moved_to (in Failed/), error."""
        return [{k: loaded(row[k]) for k in row.keys()} for row in self._read(
            "select id, path, moved_to, error from failures order by id")]

    # ---------------------------------------------------------------- writing

    @property
    def blocked(self) -> bool:
        """Whether writes wait for the disk (the watcher takes nothing meanwhile)."""
        return bool(self.deferred)

    def flush(self) -> bool:
        """Write what the disk refused earlier, in order; True when nothing is left."""
        while self.deferred:
            sql, params = self.deferred[0]
            try:
                self.db.execute(sql, params)
            except sqlite3.Error as exc:
                # Kept, and tried again: the disk may take it later; a ledger damaged
                # under us is said in the same line and never escapes as a traceback.
                self.fault = storage_fault(exc) or f"damaged ({printable(str(exc))}); move " \
                                                  "it away and start the watcher again"
                return False
            self.deferred.pop(0)
        self.fault = None
        return True

    def _write(self, sql: str, params: list[Any]) -> None:
        self.deferred.append((sql, params))
        self.flush()

    def set(self, path: str, **fields: Any) -> None:
        """Record `fields` of `path`; texts that are no UTF-8 are kept escaped."""
        fields = {k: printable(v) if isinstance(v, str) and isinstance(stored(v), bytes) else v
                  for k, v in fields.items()}
        if isinstance(fields.get("moved_to"), str):
            fields["moved_to"] = stored(fields["moved_to"])
        fields["updated"] = now()
        names = ", ".join(fields)
        self._write(f"insert into files (path, {names}) values "
                    f"({', '.join('?' * (len(fields) + 1))}) on conflict(path) do update set "
                    + ", ".join(f"{k}=excluded.{k}" for k in fields),
                    [stored(path), *fields.values()])

    def failure(self, path: str, moved_to: str, error: str) -> None:
        """`path` failed and went to Failed/`moved_to`."""
        self.set(path, state="failed", error=error, moved_to=moved_to)
        self._write("insert into failures (path, moved_to, error, at) values (?, ?, ?, ?)",
                    [stored(path), stored(moved_to), printable(error) if isinstance(
                        stored(error), bytes) else error, now()])

    def forget_failure(self, failure_id: int) -> None:
        self._write("delete from failures where id=?", [failure_id])

    def recover(self) -> int:
        """Files left `rendering` by a crash go back to pending, marked CRASHED."""
        count = len(self._read("select 1 from files where state='rendering'"))
        self._write("update files set state='pending', error=? where state='rendering'",
                    [CRASHED])
        return count


def _normal(sql: str) -> str:
    """SQL as compared with KNOWN: lower case, one space for any run of them, none
    beside brackets and commas (what differs between SQLite versions and editors)."""
    text = re.sub(r"\s+", " ", sql.strip().lower())
    return re.sub(r" ?([(),]) ?", r"\1", text)


def _check_own_files(folder: Path) -> None:
    """The ledger's files must be plain files of their own: SQLite would write
    through a link (or a hard link) planted in their place."""
    for name in (FILE, f"{FILE}-wal", f"{FILE}-shm", f"{FILE}-journal"):
        try:
            info = os.lstat(folder / name)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise InboxError(f"{folder / name} is a link or not a plain file; the watcher "
                             "does not write through links in an inbox: remove it")


def retry_failed(inbox: Path) -> int:
    """Put every failed file back into the inbox, pending: under the name it came
    with, or a free one beside it when that is taken. Returns how many."""
    inbox = inbox.resolve()
    ledger = Ledger(inbox)
    count = 0
    for row in ledger.failed():
        moved, home = PurePosixPath(row["moved_to"]), PurePosixPath(row["path"])
        try:
            with opened(inbox, [FAILED, *moved.parent.parts]) as source, \
                    opened(inbox, home.parent.parts, create=True) as target:
                name = move(source, moved.name, target, home.name)
                remove_file(source, moved.name + NOTE)
        except FileNotFoundError:           # taken out of Failed/ by hand
            ledger.forget_failure(row["id"])
            continue
        except OSError as exc:
            raise write_error(exc, inbox / home, row["path"]) from exc
        ledger.set(str(Path(*home.parent.parts, name)), state="pending", attempts=0,
                   error=None, retry_at=0, moved_to=None)
        ledger.forget_failure(row["id"])
        count += 1
    if not ledger.flush():
        raise LedgerError(f"cannot write {ledger.path}: {ledger.fault}")
    return count
