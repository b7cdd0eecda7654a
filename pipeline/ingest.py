"""Ingest: turn the SOURCE arguments (files, folders, ZIPs) into Assets.

Folders are walked recursively in a stable order; hidden files and the
sidecars a shoot may hold (shoot.yaml, .xmp, .srt, ...) are not masters, but
a photo or movie given a sidecar's name (a JPEG called manifest.json) is
reported, never skipped in silence. A ZIP (Canva's multi-page download)
becomes an ordered set of pages, extracted into a private temporary folder
within fixed limits (pipeline.zipsource); members with absolute paths,
`..`, or links are refused. For content (`trusted=False`: a watch inbox,
`render --untrusted`) links are not followed. Whether a file is a photo is
decided later by its content (probe), never by its extension.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from natsort import natsorted, ns

from pipeline.errors import InputError, PipelineError
from pipeline.model import Asset
from pipeline.scratch import remove_stale
from pipeline.shoot import SHOOT_FILE
from pipeline.sniff import SIDECAR_SUFFIXES, misnamed_error, misnamed_media
from pipeline.trust import inside
from pipeline.zipsource import add_zip, is_container_zip

__all__ = ["SIDECAR_SUFFIXES", "Found", "ingest", "misnamed_media"]

@dataclass
class Found:
    """What ingest found: assets to render and inputs that failed already."""

    assets: list[Asset] = field(default_factory=list)
    errors: list[PipelineError] = field(default_factory=list)
    _tempdirs: list[Path] = field(default_factory=list)
    _locks: list[int] = field(default_factory=list)
    _seen: set[Path] = field(default_factory=set)

    def cleanup(self) -> None:
        for folder in self._tempdirs:
            shutil.rmtree(folder, ignore_errors=True)
        self._tempdirs.clear()
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()

    def __enter__(self) -> Found:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def ingest(sources: Iterable[Path], exclude: Iterable[Path] = (),
           shoot_root: Path | None = None, *, trusted: bool = True,
           aliases: Mapping[Path, Path] | None = None) -> Found:
    """Assets of the SOURCE arguments; folders in `exclude` (the output) are not walked.
    A file named on its own takes the shoot.yaml of its folder, or with `shoot_root`
    (a watch folder) the nearest one up to that root. With `trusted` False, a link
    (file or folder) inside a source folder or under `shoot_root` is an error, not
    followed. `aliases` maps a file given as a source (a watch folder's private copy)
    to the path it stands for: the copy is read, everything else (shoot.yaml,
    `sources:` key, label) is the other path's, and the label is relative to
    `shoot_root` (the operator's own path is no business of whoever reads the
    manifest). Temporary folders are removed if ingest itself fails or is
    interrupted."""
    found = Found()
    skip = {Path(p).resolve() for p in exclude}
    try:
        remove_stale()             # scratch folders of runs killed with kill -9
        for source in sources:
            _add_source(found, Path(source), skip, shoot_root, trusted, aliases or {})
    except BaseException:          # Ctrl-C, SIGTERM (SystemExit) included
        found.cleanup()
        raise
    return found


def _add_source(found: Found, source: Path, skip: set[Path], shoot_root: Path | None,
                trusted: bool, aliases: Mapping[Path, Path]) -> None:
    if source.is_dir():
        _add_folder(found, source, skip, trusted)
        return
    named = aliases.get(source, source)      # what the user knows; `source` is what is read
    root = shoot_root if shoot_root and shoot_root in named.parents else None
    label = str(named.relative_to(root)) if root and source in aliases else str(named)
    if not trusted:
        # An alias's own name is never read (its copy is), only the folders above it.
        link = _first_link(named.parent if source in aliases else named, root or named.parent)
        if link is not None:
            found.errors.append(_link_error(link, root or named.parent, label))
            return
    folder = _shoot_dir(named.parent, root) if root else named.parent
    key = named.relative_to(folder).as_posix() if root else named.name
    _add_file(found, source, label=label, shoot_dir=folder, options_key=key)


def _add_folder(found: Found, source: Path, skip: set[Path], trusted: bool) -> None:
    for path in _walk(source, skip):
        rel = path.relative_to(source)
        label = str(Path(source.name) / rel)
        if path.is_symlink():
            if not trusted:
                found.errors.append(_link_error(path, source, label))
                continue
            if path.is_dir():       # as os.walk: a linked folder is not walked
                continue
        if path.suffix.lower() in SIDECAR_SUFFIXES:
            error = misnamed_error(path, label)
            if error:
                found.errors.append(error)
            continue
        _add_file(found, path, label=label, shoot_dir=_shoot_dir(path.parent, source),
                  options_key=rel.as_posix())


def _walk(root: Path, skip: set[Path]) -> Iterator[Path]:
    """Every visible file, and every visible link to a folder (never walked)."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX"
                         and (Path(folder) / d).resolve() not in skip)
        linked = [d for d in dirs if (Path(folder) / d).is_symlink()]
        for name in natsorted([*files, *linked], alg=ns.IGNORECASE):
            if not name.startswith("."):
                yield Path(folder) / name


def _is_master_candidate(path: Path) -> bool:
    """By name alone: not hidden and not a sidecar (see misnamed_media for the rest)."""
    name = path.name
    return not name.startswith(".") and path.suffix.lower() not in SIDECAR_SUFFIXES


def _first_link(path: Path, root: Path) -> Path | None:
    """The first link on the way down from `root` (the operator's, not checked) to `path`."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return path if path.is_symlink() else None
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def _link_error(link: Path, root: Path, label: str) -> InputError:
    # The link's own text is shown, not where it leads: it says nothing about this
    # machine that the sender did not write.
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    folder = link.is_dir()
    where = "in" if inside(root, link) else "outside"
    what = "folder" if folder else "file"
    return InputError(f"is a link to {target!r} {where} the folder; links are not followed "
                      "in files that came from others", path=label,
                      hint=f"copy the {what} itself in")


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
    if not path.is_dir() and is_container_zip(path):
        add_zip(found, path, label, shoot_dir)
        return
    found.assets.append(Asset(path=path, label=label, stem=_stem(path.name),
                              shoot_dir=shoot_dir, options_key=options_key))


def _stem(name: str) -> str:
    stem = PurePosixPath(name).stem
    return stem or name
