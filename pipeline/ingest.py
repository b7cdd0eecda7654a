"""Ingest: turn the SOURCE arguments (files, folders, ZIPs) into Assets.

Folders are walked recursively in a stable order; hidden files and the
sidecars a shoot may hold (shoot.yaml, .xmp, .srt, ...) are not masters.
A ZIP (Canva's multi-page download) becomes an ordered set of pages,
extracted into a private temporary folder; members with absolute paths,
`..`, or links are refused. Whether a file is a photo is decided later by
its content (probe), never by its extension.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from natsort import natsorted, ns

from pipeline.errors import InputError
from pipeline.model import Asset
from pipeline.shoot import SHOOT_FILE

# Files that live beside masters but are not masters themselves.
SIDECAR_SUFFIXES = {".yaml", ".yml", ".json", ".xmp", ".srt", ".vtt", ".ass", ".ssa",
                    ".txt", ".md", ".log", ".ini", ".db",
                    ".py", ".pyc"}     # effect modules a preset names (module:function)
MAX_ZIP_MEMBER_BYTES = 2 * 1024**3     # one page of a design export is far smaller
MAX_ZIP_TOTAL_BYTES = 8 * 1024**3


@dataclass
class Found:
    """What ingest found: assets to render and inputs that failed already."""

    assets: list[Asset] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    _tempdirs: list[Path] = field(default_factory=list)
    _seen: set[Path] = field(default_factory=set)

    def cleanup(self) -> None:
        for folder in self._tempdirs:
            shutil.rmtree(folder, ignore_errors=True)
        self._tempdirs.clear()

    def __enter__(self) -> Found:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def ingest(sources: Iterable[Path], exclude: Iterable[Path] = (),
           shoot_root: Path | None = None) -> Found:
    """Assets of the SOURCE arguments; folders in `exclude` (the output) are not walked.
    A file named on its own takes the shoot.yaml of its folder, or with `shoot_root`
    (a watch folder) the nearest one up to that root."""
    found = Found()
    skip = {Path(p).resolve() for p in exclude}
    for source in sources:
        source = Path(source)
        if source.is_dir():
            for path in _walk(source, skip):
                rel = path.relative_to(source)
                _add_file(found, path, label=str(Path(source.name) / rel),
                          shoot_dir=_shoot_dir(path.parent, source), options_key=rel.as_posix())
        else:
            root = shoot_root if shoot_root and shoot_root in source.parents else None
            folder = _shoot_dir(source.parent, root) if root else source.parent
            key = source.relative_to(folder).as_posix() if root else source.name
            _add_file(found, source, label=str(source), shoot_dir=folder, options_key=key)
    return found


def _walk(root: Path, skip: set[Path]) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX"
                         and (Path(folder) / d).resolve() not in skip)
        for name in natsorted(files, alg=ns.IGNORECASE):
            path = Path(folder) / name
            if _is_master_candidate(path):
                yield path


def _is_master_candidate(path: Path) -> bool:
    name = path.name
    return not name.startswith(".") and path.suffix.lower() not in SIDECAR_SUFFIXES


def _shoot_dir(folder: Path, root: Path) -> Path:
    """The nearest folder at or above `folder` (within root) that has a shoot.yaml."""
    current = folder
    while True:
        if (current / SHOOT_FILE).is_file() or current == root:
            return current
        current = current.parent


def _add_file(found: Found, path: Path, label: str, shoot_dir: Path, options_key: str) -> None:
    real = path.resolve()
    if real in found._seen:         # named twice (a folder and a file in it): render once
        return
    found._seen.add(real)
    if not path.is_dir() and _is_container_zip(path):
        _add_zip(found, path, label, shoot_dir)
        return
    found.assets.append(Asset(path=path, label=label, stem=_stem(path.name),
                              shoot_dir=shoot_dir, options_key=options_key))


def _stem(name: str) -> str:
    stem = PurePosixPath(name).stem
    return stem or name


def _is_container_zip(path: Path) -> bool:
    """A ZIP of pages, not an Office or OpenDocument file (which are ZIPs too)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    return "[Content_Types].xml" not in names and "mimetype" not in names


def _add_zip(found: Found, path: Path, label: str, shoot_dir: Path) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        found.errors.append(InputError(f"cannot open ZIP: {exc}", path=label,
                                       hint="download or export the ZIP again"))
        return
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        members = [m for m in members if not _hidden_member(m.filename)]
        members = natsorted(members, key=lambda m: m.filename, alg=ns.IGNORECASE)
        target = Path(tempfile.mkdtemp(prefix="repurpose-zip-"))
        found._tempdirs.append(target)
        total = 0
        for order, member in enumerate(members):
            where = f"{label}!{member.filename}"
            problem = _unsafe_member(member)
            if problem is None:
                total += member.file_size
                if total > MAX_ZIP_TOTAL_BYTES:
                    problem = f"ZIP unpacks to more than {MAX_ZIP_TOTAL_BYTES // 1024**3} GB"
            if problem:
                found.errors.append(InputError(f"refused ZIP member: {problem}", path=where,
                                               hint="re-create the ZIP with plain relative names"))
                continue
            name = PurePosixPath(member.filename.replace("\\", "/")).name
            if PurePosixPath(name).suffix.lower() in SIDECAR_SUFFIXES:
                continue
            dest = target / f"{order:05d}" / name
            dest.parent.mkdir(parents=True)
            try:
                with zf.open(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 1024 * 1024)
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                found.errors.append(InputError(f"cannot extract: {exc}", path=where,
                                               hint="download or export the ZIP again"))
                continue
            found.assets.append(Asset(path=dest, label=where, stem=_stem(name),
                                      shoot_dir=shoot_dir, options_key=name,
                                      group=label, order=order + 1))


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
    mode = member.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if member.file_size > MAX_ZIP_MEMBER_BYTES:
        return f"member larger than {MAX_ZIP_MEMBER_BYTES // 1024**3} GB"
    return None
