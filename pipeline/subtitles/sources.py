"""Where a master's subtitles come from, in this order: a sidecar beside it
(`<stem>.srt`, `.vtt`, `.ass`/`.ssa`, or `<stem>.<lang>.srt` ...), then an
embedded text subtitle stream. Parsed with pysubs2."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pysubs2

from pipeline.errors import InputError
from pipeline.ffmpeg import GLOBAL_ARGS, content_input, ffmpeg_exe, run_ffmpeg
from pipeline.languages import primary
from pipeline.model import VideoInfo
from pipeline.scratch import scratch
from pipeline.subtitles.cues import Cue
from pipeline.subtitles.encoding import decode, suggestion
from pipeline.trust import inside

SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")
MAX_BYTES = 2 * 1024 * 1024      # hours of dialogue are a few hundred KB
MAX_CUES = 10_000                # a three-hour film has about 2,000
# An HTML entity, whole: "&amp;", "&#233;", "&#x201C;" (never "&notice" without its ";").
ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def find_sidecar(master: Path, language: str | None = None,
                 others: Sequence[str] = ()) -> Path | None:
    """`<stem>.<ext>` first, then `<stem>.<language>.<ext>` (with the shoot's first
    `language`, nothing else), else any `<stem>.<tag>.<ext>` in name order that is
    not in one of the `others` languages (those are translations). A link that
    leads out of the master's folder is no sidecar (it could expose any file)."""
    folder, stem = master.parent, master.stem
    for suffix in SUFFIXES:
        exact = folder / f"{stem}{suffix}"
        if exact.is_file() and inside(folder, exact):
            return exact
    if language:            # the shoot's first language: a file in another is no stand-in
        return find_translation(master, language)
    skip = {primary(t) for t in others}
    return next((p for p in _tagged(master) if primary(tag_of(p)) not in skip), None)


def find_translation(master: Path, language: str) -> Path | None:
    """`<stem>.<language>.<ext>` beside the master (`clip.en.srt`, `clip.en-GB.vtt`)."""
    return next((p for p in _tagged(master) if primary(tag_of(p)) == primary(language)), None)


def _tagged(master: Path) -> list[Path]:
    """`<stem>.<tag>.<ext>` subtitle files beside the master, in name order."""
    folder, stem = master.parent, master.stem
    try:
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and inside(folder, p) and p.suffix.lower() in SUFFIXES
                      and p.name.startswith(f"{stem}.") and p.name.count(".") >= 2
                      and p.stem[len(stem) + 1:].replace("-", "").replace("_", "").isalpha())
    except OSError:
        return []


class UncertainEncoding(InputError):
    """A legacy subtitle file whose code page cannot be told: it is not burned in."""


def load_cues(path: Path, label: str, encoding: str | None = None,
              hints: Iterable[str | None] = ()) -> list[Cue]:
    """Every dialogue line of a subtitle file, as plain text."""
    return read_cues(path, label, encoding, hints)[0]


def read_cues(path: Path, label: str, encoding: str | None = None,
              hints: Iterable[str | None] = ()) -> tuple[list[Cue], str]:
    """Every dialogue line of a subtitle file, as plain text, and the encoding it
    was read in. `encoding`: as shoot.yaml names it; `hints`: languages the text is
    likely in (the file's own `.hu.srt` tag is added first)."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"subtitles {path.name} are larger than {MAX_BYTES // 2**20} MB",
                             path=label, hint="a subtitle file is text; check it is the right "
                                              "file")
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read subtitles {path.name}: {exc.strerror or exc}",
                         path=label, hint="check the file can be read") from exc
    try:
        decoded = decode(data, encoding, hints, own=tag_of(path))
    except (UnicodeError, LookupError) as exc:
        if encoding:
            raise InputError(f"subtitles {path.name} are not {encoding}: {exc}", path=label,
                             hint="correct subtitles.encoding in shoot.yaml, or remove it to "
                                  "detect the encoding") from exc
        raise InputError(f"subtitles {path.name} start with a byte-order mark but do not "
                         f"decode as it says: {exc}", path=label,
                         hint="save the file again as UTF-8") from exc
    if decoded.encoding == "binary":
        raise UncertainEncoding(f"subtitles {path.name} are not text: {decoded.doubt}",
                                path=label, hint="remove the file, or save it again as UTF-8 "
                                                 "SRT or WebVTT")
    if not decoded.certain:
        raise UncertainEncoding(
            f"the encoding of subtitles {path.name} is uncertain: {decoded.doubt}",
            path=label, hint=f"name it in shoot.yaml (subtitles: {{encoding: "
                             f"{suggestion(data, decoded)}}}), or save the file as UTF-8")
    try:
        subs = pysubs2.SSAFile.from_string(decoded.text, format_=_format(path, decoded.text))
    except (pysubs2.exceptions.Pysubs2Error, ValueError) as exc:
        raise InputError(f"cannot read subtitles {path.name}: {exc}", path=label,
                         hint="save it again as UTF-8 SRT or WebVTT") from exc
    entities = path.suffix.lower() in (".srt", ".vtt")
    cues = []
    for event in subs:
        if event.is_comment or event.end <= event.start:
            continue
        # Downloaded .srt files carry HTML entities ("Tom &amp; Jerry"): shown as meant.
        text = (ENTITY.sub(lambda m: html.unescape(m.group()), event.plaintext) if entities
                else event.plaintext).strip()
        if text:
            cues.append(Cue(int(event.start), int(event.end), text))
        if len(cues) > MAX_CUES:
            raise InputError(f"subtitles {path.name} hold more than {MAX_CUES:,} lines",
                             path=label, hint="a subtitle file is text for this video; check "
                                              "it is the right file")
    return sorted(cues, key=lambda c: (c.start, c.end)), decoded.encoding


def origin(path: Path, encoding: str) -> str:
    """Where cues came from, as the manifest says it: the file, and its encoding
    when that is not UTF-8 ("clip.srt (cp1250)")."""
    return path.name if encoding in ("utf-8", "ascii") else f"{path.name} ({encoding})"


def tag_of(path: Path) -> str | None:
    """The language tag in a sidecar's name (`clip.hu.srt`, `clip.pt-BR.vtt`), if any."""
    parts = path.name.split(".")
    return parts[-2] if len(parts) >= 3 and primary(parts[-2]) else None


def _format(path: Path, text: str) -> str | None:
    """pysubs2's format for the file: by its content, or by its suffix when the
    content does not say (an SRT with one cue is still an SRT)."""
    try:
        return str(pysubs2.formats.autodetect_format(text))
    except (pysubs2.exceptions.Pysubs2Error, ValueError):
        return {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ssa"}.get(
            path.suffix.lower())


def embedded_cues(master: Path, info: VideoInfo, label: str) -> list[Cue]:
    """The first embedded text subtitle stream, or nothing."""
    stream = next((s for s in info.subtitles if s.is_text), None)
    if stream is None:
        return []
    with scratch("subs") as folder:
        target = folder / "embedded.srt"
        run_ffmpeg([ffmpeg_exe(), *GLOBAL_ARGS, *content_input(master), "-map",
                    f"0:{stream.index}", "-f", "srt", str(target)], label)
        return load_cues(target, label)
