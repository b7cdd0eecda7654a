"""`repurpose export`: a reviewed OUT folder's posts, written in the format a
scheduler imports or a platform's API takes.

Exporters register by name in EXPORTERS (`@exporter(...)`), like caption
providers; third parties add theirs through the `repurpose.exporters` entry-point
group, whose object is an Exporter. An exporter receives the posts (approved,
checked, scheduled, with URLs when a base URL is given) and returns the files
to write and the posts it could not take, each with its reason.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from pipeline.errors import PipelineError
from pipeline.export.posts import Collected, Media, Post, Skip, collect
from pipeline.export.schedule import spread

ENTRY_POINTS = "repurpose.exporters"


class ExportError(PipelineError):
    """An export that cannot be made as asked (exit 2): a format that needs URLs or
    times without them, an unknown format, a bad base URL."""


@dataclass(frozen=True)
class Options:
    """What every exporter is told besides the posts."""

    tz: tzinfo = timezone.utc
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    base_url: str | None = None
    skipped: tuple[Skip, ...] = ()  # variants left out before the exporter saw them


@dataclass
class Output:
    """What an exporter makes: files (a name tag, "" for the only one, and the
    bytes), posts it could not take, and notes for the person exporting."""

    files: list[tuple[str, bytes]] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, post: Post, reason: str) -> None:
        self.skipped.append(Skip(post.id, post.preset, reason))


Write = Callable[[Sequence[Post], Options], Output]


@dataclass(frozen=True)
class Exporter:
    name: str
    write: Write
    extension: str                  # of the files it writes: csv, json
    description: str
    needs_urls: bool = False        # media go as public URLs (--base-url)
    needs_times: bool = False       # every row needs a date and time (--start)
    drafts: bool = False            # marks a draft as one (else drafts are left out)


EXPORTERS: dict[str, Exporter] = {}


def exporter(name: str, *, extension: str, description: str, needs_urls: bool = False,
             needs_times: bool = False, drafts: bool = False) -> Callable[[Write], Write]:
    """Register the decorated function as the exporter `name`."""
    def add(write: Write) -> Write:
        EXPORTERS[name] = Exporter(name, write, extension, description, needs_urls,
                                   needs_times, drafts)
        return write
    return add


def find(name: str) -> Exporter:
    _builtins()
    if name in EXPORTERS:
        return EXPORTERS[name]
    for point in entry_points(group=ENTRY_POINTS):
        if point.name == name:
            loaded = point.load()
            if not isinstance(loaded, Exporter):
                raise ExportError(f"the entry point {point.value} of {ENTRY_POINTS} is no "
                                  "pipeline.export.Exporter", hint="fix that package")
            EXPORTERS[name] = loaded
            return loaded
    raise ExportError(f"no export format {name!r}; one of {', '.join(names())}")


def names() -> list[str]:
    _builtins()
    found = set(EXPORTERS) | {p.name for p in entry_points(group=ENTRY_POINTS)}
    return sorted(found)


def _builtins() -> None:
    import pipeline.export.api  # noqa: F401 - each registers itself
    import pipeline.export.plan  # noqa: F401
    import pipeline.export.schedulers  # noqa: F401


@dataclass
class Result:
    exporter: Exporter
    files: list[tuple[str, bytes]]
    posts: list[Post]
    skipped: list[Skip]
    notes: list[str]


def export(out_dir: Path, name: str, *, base_url: str | None = None,
           start: datetime | None = None, every: timedelta | None = None,
           tz: tzinfo = timezone.utc, include_drafts: bool = False,
           presets_dirs: Sequence[Path] = (), now: datetime | None = None) -> Result:
    """The export of OUT's posts in format `name`. Raises ExportError (or a
    ReviewError for an unreadable manifest) when it cannot be made at all."""
    chosen = find(name)
    base = check_base_url(base_url) if base_url else None
    if chosen.needs_urls and base is None:
        raise ExportError(f"{name} imports media from public URLs, not files",
                          hint="publish OUT (a CDN, a synced bucket, a shared-link root) "
                               "and give its address with --base-url")
    if chosen.needs_times and start is None:
        raise ExportError(f"{name} needs a date and time for every post",
                          hint="say when the first goes out with --start (and --every)")
    moment = now or datetime.now(timezone.utc)
    found: Collected = collect(out_dir, include_drafts, presets_dirs)
    posts = spread(found.posts, start, every, tz)
    skipped = list(found.skipped)
    kept = []
    for post in posts:
        if post.status == "draft" and not chosen.drafts:
            skipped.append(Skip(post.id, post.preset, f"a draft, and {name}'s file has no way "
                                "to mark one: it would be posted; approve it first"))
        elif post.at is not None and post.at < moment:
            skipped.append(Skip(post.id, post.preset, f"scheduled in the past "
                                f"({post.at.isoformat(timespec='minutes')}); give a later "
                                "--start"))
        else:
            kept.append(with_urls(post, base) if base else post)
    try:
        made = chosen.write(kept, Options(tz=tz, now=moment, base_url=base,
                                          skipped=tuple(skipped)))
    except OverflowError as exc:        # a date past the year 9999 in the format's zone
        raise ExportError("the schedule runs past the year 9999",
                          hint="give an earlier --start or a shorter --every") from exc
    taken = {s.path for s in made.skipped}
    return Result(chosen, made.files, [p for p in kept if p.id not in taken],
                  skipped + made.skipped, made.notes)


def file_name(stem: str, tag: str, extension: str) -> str:
    """`stem.ext`, or `stem-tag.ext` for one of several files; a tag (a plug-in's
    too) never carries a path."""
    tag = re.sub(r"[^\w.-]+", "_", tag).strip(".")
    return f"{stem}-{tag}.{extension}" if tag else f"{stem}.{extension}"


def check_base_url(text: str) -> str:
    """The base URL with one trailing slash: http(s), a host in ASCII (IDNA), no
    user or password (they would go into every row), no query or fragment, no
    spaces, control characters or backslashes."""
    hint = "give where OUT is published, e.g. https://cdn.example.com/out/"
    text = text.strip()
    if not text.isascii() or not text.isprintable() or " " in text or "\\" in text:
        raise ExportError(f"--base-url {text!r} has spaces, a backslash or characters "
                          "outside ASCII", hint="percent-encode them (a host in its "
                          "xn-- form)")
    try:
        parts = urlsplit(text)
        parts.port      # noqa: B018 - raises for a port that is no number or out of range
    except ValueError as exc:
        raise ExportError(f"--base-url {text!r} cannot be read ({exc})", hint=hint) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ExportError(f"--base-url {text!r} is no http(s) address", hint=hint)
    if parts.username is not None or parts.password is not None:
        raise ExportError("--base-url carries a user or password; every row would show it",
                          hint="publish OUT where it needs none (a public bucket, a CDN)")
    if parts.query or parts.fragment:
        raise ExportError(f"--base-url {text!r} has a query or a fragment",
                          hint="give the folder's address; file names are added after it")
    return text.rstrip("/") + "/"


def url_of(base: str, path: str) -> str:
    """The public URL of `path` (relative to OUT) under `base`, each part of the
    path percent-encoded from its bytes on disk (spaces, accents, #, ? stay part
    of the name; a name that is no UTF-8 keeps its own bytes)."""
    return base + "/".join(quote(os.fsencode(part), safe="") for part in path.split("/"))


def with_urls(post: Post, base: str) -> Post:
    def linked(media: Media) -> Media:
        return replace(media, url=url_of(base, media.path))
    return replace(post, media=tuple(linked(m) for m in post.media),
                   thumbnail=linked(post.thumbnail) if post.thumbnail else None)


def csv_bytes(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> bytes:
    """A CSV file as schedulers read it: UTF-8, comma-separated, every field that
    needs it quoted, CRLF line ends (RFC 4180). Captions go in as they are, even
    one opening with = or @: the file is for an importer, which posts what it
    reads; a spreadsheet opening it may take such a cell for a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8", "backslashreplace")


def json_bytes(body: Any) -> bytes:
    """JSON as UTF-8; a name that is no UTF-8 (a lone surrogate in Python) stays a
    JSON escape, \\udcff, as in the manifest."""
    text = json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    return text.encode("utf-8", "backslashreplace")


__all__ = ["EXPORTERS", "ExportError", "Exporter", "Options", "Output", "Post", "Result",
           "Skip", "csv_bytes", "export", "exporter", "file_name", "find", "json_bytes", "names",
           "url_of"]
