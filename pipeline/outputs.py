"""Outputs: atomic files, output names, and OUT/manifest.json.

Every file is written under a hidden temporary name in its final folder and
renamed into place when complete, so no reader (a person, a sync client, a
watch folder) ever sees a partial file. The manifest records every variant
with the digest of what decided it, so a re-run can skip unchanged work.

Manifest format (schema_version 1):
    {"schema_version": 1, "generator": "repurpose X.Y.Z",
     "variants": [{source, preset, path, media, width, height, bytes, sha256,
                   status, warnings, checks: [{name, ok, expected, actual}],
                   quality, key, group, order, plan, caption,
                   duration, fps, codec, audio}],
     "errors": [{source, preset, error, hint}],
     "warnings": ["shoot.yaml: sources.x.jpg matches no master", ...]}
`path` is relative to OUT; `status` is rendered, unchanged, failed or planned.
People's decisions sit in the entries too (`review`, and the caption's status):
pipeline.review.decisions writes them, under `manifest_lock` like every writer.
Video entries also say what their written file is, read back from it:
`duration` (seconds, a float, until its last stream ends), `fps` (the constant
frame rate as an exact fraction string: "30", "25", "30000/1001"), `codec` (the
picture's codec, "h264") and `audio` (the sound's codec, "aac", or false for a
silent file). Unchanged entries carry them over; failed and planned entries
have them null; photo entries have none of them.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline import __version__
from pipeline.errors import PipelineError, WriteError
from pipeline.model import Asset, VariantResult

MANIFEST = "manifest.json"
STATE = ".repurpose"                # OUT's private folder (0700): the lock, the studio's cache
MANIFEST_LOCK = "manifest.lock"
SCHEMA_VERSION = 1
NAME_MAX = 255          # bytes in one file name (ext4, APFS, NTFS via UTF-16 is more)
# A stem leaves room for what follows it: "-99999", ".part99", ".transcript.json".
STEM_BYTES = NAME_MAX - 6 - 7 - len(".transcript.json")
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]{1,10})\.part", re.DOTALL)
_PART = re.compile(r"\.part[0-9]+$")


def short_name(text: str, limit: int) -> str:
    """`text` if it fits `limit` bytes on disk, else cut at a character boundary and
    marked with `~` and 8 hex digits of the whole name's digest, so shortened names
    are deterministic and distinct names stay distinct."""
    raw = os.fsencode(text)
    if len(raw) <= limit:
        return text
    mark = "~" + hashlib.sha256(raw).hexdigest()[:8]
    kept, size = [], 0
    for char in text:
        size += len(os.fsencode(char))
        if size > limit - len(mark):
            break
        kept.append(char)
    return "".join(kept) + mark


SIDE_ROOM = 12      # bytes a temporary name leaves free for a side file's tag (side_path)


def temp_path(final: Path) -> Path:
    """The hidden name a file is written under before it takes `final`'s name:
    `.{name}.{pid}.part`, the name shortened when it would pass NAME_MAX."""
    suffix = f".{os.getpid()}.part"
    room = NAME_MAX - 1 - len(suffix) - SIDE_ROOM
    return final.parent / f".{short_name(final.name, room)}{suffix}"


def side_path(temp: Path, tag: str) -> Path:
    """A scratch file beside a temporary output (its sound, a lossless copy for an
    effect), named `.{name}.{tag}.{pid}.part` so remove_stale_temps knows it too."""
    match = TEMP_NAME.fullmatch(temp.name)
    if match is None or len(tag) >= SIDE_ROOM:
        raise ValueError(f"{temp.name!r} is not a temporary name of ours")
    return temp.with_name(f".{match['name']}.{tag}.{match['pid']}.part")


def claim(path: Path) -> Path:
    """Create `path` empty for a program that opens it by name to write (ffmpeg -y,
    PyAV): whatever had that name (a link planted there) is removed, never followed,
    and the program then writes into our own regular file."""
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o666))
    return path


def atomic_write(path: Path, data: bytes, verify: Callable[[Path], None] | None = None) -> None:
    """Write `data` to `path` so that the file appears whole or not at all.

    `verify` reads the written temporary file before it takes the final name;
    if it raises, the temporary file is removed and `path` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    # A name of ours with our own pid is left only by a dead process that had this pid,
    # or planted (a link): removing it touches no target, and O_EXCL|O_NOFOLLOW then
    # never writes through anything that was there.
    tmp.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        with open(os.open(tmp, flags, 0o666), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if verify:
            verify(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return sha256_fd(fh.fileno())


def sha256_fd(fd: int) -> str:
    """The content digest of an open file, from its start (whatever its offset)."""
    digest, at = hashlib.sha256(), 0
    while block := os.pread(fd, 1024 * 1024, at):
        digest.update(block)
        at += len(block)
    return digest.hexdigest()


def assign_stems(assets: Iterable[Asset],
                 previous: dict[str, dict[str, Any]] | None = None) -> dict[Asset, str]:
    """Output stems, unique without regard to case (macOS and Windows folders) and
    short enough for NAME_MAX with every suffix added to them.

    `previous` (the last manifest's entries by output path) counts too, so separate
    runs into one OUT never share a name: a master keeps the stem it had there, and
    a stem another source used is taken. The others go in the order of their labels;
    the first keeps its stem, later ones get -2, -3, ... so names are deterministic.
    """
    owners, kept = _earlier_stems(previous or {})
    ordered = sorted(assets, key=lambda a: (a.stem.casefold(), a.group or "", a.order, a.label))
    out: dict[Asset, str] = {}
    for asset in ordered:            # first, those keeping a stem (unless two claim one)
        stem = kept.get(_source(asset.label))
        if stem is not None and _stem_key(stem) not in map(_stem_key, out.values()):
            out[asset] = stem
    used = {_stem_key(stem) for stem in out.values()}
    for asset in ordered:
        if asset in out:
            continue
        base, me = short_name(asset.stem, STEM_BYTES), {_source(asset.label)}
        stem, n = base, 1
        while _stem_key(stem) in used or owners.get(_stem_key(stem), me) != me:
            n += 1
            stem = f"{base}-{n}"
        used.add(_stem_key(stem))
        out[asset] = stem
    return out


def _source(label: str) -> str:
    """A source label as runs compare it: `a.jpg` and `./a.jpg` are one master. Not
    made absolute: a folder's masters are labelled from the folder's own name, so a
    shoot rendered again from another working directory keeps its names."""
    return os.path.normpath(label)


def _stem_key(stem: str) -> str:
    """What two stems must not share: `x` and `x.part2` name the same video's parts;
    `Café` typed on macOS (NFD) and elsewhere (NFC) are one name on APFS."""
    return unicodedata.normalize("NFC", _PART.sub("", stem)).casefold()


def _earlier_stems(previous: dict[str, dict[str, Any]]
                   ) -> tuple[dict[str, set[str]], dict[str, str]]:
    """From earlier manifest entries: the sources using each stem key, and the stem
    each source had (`x` for a video split into `x.part1`, `x.part2`)."""
    owners: dict[str, set[str]] = {}
    names: dict[str, set[str]] = {}
    for path, entry in previous.items():
        # Only outputs that exist hold a name (a failed entry leaves no file behind).
        if not isinstance(entry.get("source"), str) or entry.get("status") not in (
                "rendered", "unchanged"):
            continue
        source = _source(entry["source"])
        name = PurePosixPath(str(entry.get("path") or path)).stem
        owners.setdefault(_stem_key(name), set()).add(source)
        names.setdefault(source, set()).add(name)
    return owners, {source: _own_stem(found) for source, found in names.items()}


def _own_stem(names: set[str]) -> str:
    for name in sorted(names, key=lambda n: (len(n), n)):
        for stem in (name, _PART.sub("", name)):
            if all(n == stem or (n.startswith(f"{stem}.part") and n[len(stem) + 5:].isdigit())
                   for n in names):
                return stem
    return min(names)


MAX_MANIFEST_BYTES = 64 * 1024**2     # a manifest of thousands of variants is a few MB
OUTPUT_PATH = re.compile(r"[a-z0-9][a-z0-9-]*/[^/\\\x00]+")    # preset-id/name.ext


def load_previous(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Entries of the last manifest by output path; empty if none or unreadable. The
    file may have been planted (a watch folder's Output/ is within reach of its
    senders): it is read without following a link, size-capped, parsed defensively,
    and only entries whose path is one of ours (`preset-id/name.ext`) are kept, so a
    planted `/etc/passwd` entry never makes us look at, or vouch for, anything."""
    try:
        fd = os.open(out_dir / MANIFEST, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with open(fd, "rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            return {}
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        return {}
    variants = data.get("variants")
    if not isinstance(variants, list):
        return {}
    return {v["path"]: v for v in variants if isinstance(v, dict) and is_output_path(v.get("path"))}


def is_output_path(path: Any) -> bool:
    """Whether a manifest's `path` is one we could have written: `preset-id/name.ext`."""
    return isinstance(path, str) and OUTPUT_PATH.fullmatch(path) is not None and all(
        part not in ("", ".", "..") for part in path.split("/"))


def error_entry(err: PipelineError) -> dict[str, Any]:
    return {"source": err.path, "preset": err.preset, "error": err.message, "hint": err.hint}


def manifest(results: list[VariantResult], errors: list[PipelineError], notes: list[str],
             earlier: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """The manifest of OUT: this run's variants, plus `earlier` entries (from the
    last manifest) for outputs this run did not touch."""
    variants = [r.to_dict() for r in results]
    done = {v["path"] for v in variants}
    variants += [e for e in earlier if e.get("path") not in done]
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": f"repurpose {__version__}",
        "variants": sorted(variants, key=lambda v: (v["preset"], v["path"])),
        "errors": [error_entry(e) for e in errors],
        "warnings": list(notes),
    }


def carousels(results: Iterable[VariantResult], limits: dict[str, int]) -> list[dict[str, Any]]:
    """Ordered sets of a multi-page master (a Canva ZIP) for presets that take
    several items in one post, up to each preset's item limit."""
    sets: dict[tuple[str, str], list[VariantResult]] = {}
    for result in results:
        if result.group and result.preset in limits and result.status in ("rendered",
                                                                          "unchanged"):
            sets.setdefault((result.group, result.preset), []).append(result)
    out = []
    for (group, preset), members in sorted(sets.items()):
        if len(members) < 2:
            continue
        ordered = [m.path for m in sorted(members, key=lambda m: m.order)]
        limit = limits[preset]
        entry: dict[str, Any] = {"source": group, "preset": preset, "limit": limit,
                                 "items": ordered[:limit]}
        if len(ordered) > limit:
            entry["left_out"] = ordered[limit:]
        out.append(entry)
    return out


def still_present(out_dir: Path, previous: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier manifest entries whose file is still in OUT, as it was written."""
    kept = []
    for path, entry in previous.items():
        target = out_dir / path
        if entry.get("status") in ("rendered", "unchanged") and target.is_file() and (
                target.stat().st_size == entry.get("bytes")):
            kept.append(entry)
    return kept


def remove_stale_temps(out_dir: Path) -> int:
    """Temporary outputs that a killed run left in OUT: removed. Only our own names
    (`.{name}.{pid}.part`, see temp_path) of processes no longer alive, only regular
    files, found without following a link anywhere below OUT (a running render's
    files and whatever a link leads to stay). Returns how many."""
    removed = 0
    top = Path(out_dir).resolve()       # OUT itself may be a link the operator chose
    if not top.is_dir():
        return 0
    for _, _, files, folder in os.fwalk(top, follow_symlinks=False):
        for name in files:
            if _stale_temp(name, folder):
                try:
                    os.unlink(name, dir_fd=folder)
                except OSError:         # gone already, or a read-only disk: best effort
                    continue
                removed += 1
    return removed


def _stale_temp(name: str, folder: int) -> bool:
    match = TEMP_NAME.fullmatch(name)
    if match is None:
        return False
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and not alive(int(match["pid"]))


def alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another user counts); a pid that cannot
    be one is taken as alive, so a name we never made is never removed."""
    if not 0 < pid < 2**31:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:             # EPERM: it exists, owned by someone else
        return True
    return True


def write_manifest(out_dir: Path, body: dict[str, Any]) -> None:
    text = json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n"
    # A name that is no UTF-8 (a lone surrogate in Python) stays a JSON escape, \udcff.
    atomic_write(out_dir / MANIFEST, text.encode("utf-8", "backslashreplace"))


@contextmanager
def manifest_lock(out_dir: Path) -> Iterator[None]:
    """Hold OUT's manifest lock (flock on OUT/.repurpose/manifest.lock) while reading
    and writing the manifest, so no writer (a render ending, a decision, a caption
    edit) ever replaces a manifest that another changed since it read it. The folder
    is made 0700 and opened, and the lock file too, without following a link: a
    watch folder's Output/ is within its senders' reach. The kernel drops the lock
    when the process ends, kill -9 included. Not reentrant: never nest it."""
    where = out_dir / STATE / MANIFEST_LOCK
    try:
        (out_dir / STATE).mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = os.open(out_dir / STATE, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            fd = os.open(MANIFEST_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=folder)
        finally:
            os.close(folder)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
            bad = where if exc.filename == MANIFEST_LOCK else where.parent
            raise WriteError(f"{bad} is a link or not what it should be; the manifest's "
                             "lock is never taken through one",
                             hint="remove it, then try again") from exc
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise WriteError(f"{where} is not a plain file", hint="remove it, then try again")
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)            # closing drops the lock
