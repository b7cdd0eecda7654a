"""Where a master's subtitles come from, in this order: a sidecar beside it
(`<stem>.srt`, `.vtt`, `.ass`/`.ssa`, or `<stem>.<lang>.srt` ...), then an
embedded text subtitle stream. Parsed with pysubs2."""

from __future__ import annotations

from pathlib import Path

import pysubs2

from pipeline.errors import InputError
from pipeline.ffmpeg import GLOBAL_ARGS, content_input, ffmpeg_exe, run_ffmpeg
from pipeline.model import VideoInfo
from pipeline.scratch import scratch
from pipeline.subtitles.cues import Cue
from pipeline.trust import inside

SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")
MAX_BYTES = 2 * 1024 * 1024      # hours of dialogue are a few hundred KB
MAX_CUES = 10_000                # a three-hour film has about 2,000


def find_sidecar(master: Path) -> Path | None:
    """`<stem>.<ext>` first, then `<stem>.<lang>.<ext>` in name order. A link that
    leads out of the master's folder is no sidecar (it could expose any file)."""
    folder, stem = master.parent, master.stem
    for suffix in SUFFIXES:
        exact = folder / f"{stem}{suffix}"
        if exact.is_file() and inside(folder, exact):
            return exact
    try:
        names = sorted(p for p in folder.iterdir()
                       if p.is_file() and inside(folder, p) and p.suffix.lower() in SUFFIXES
                       and p.name.startswith(f"{stem}.") and p.name.count(".") >= 2
                       and p.stem[len(stem) + 1:].replace("-", "").replace("_", "").isalpha())
    except OSError:
        return None
    return names[0] if names else None


def load_cues(path: Path, label: str) -> list[Cue]:
    """Every dialogue line of a subtitle file, as plain text."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"subtitles {path.name} are larger than {MAX_BYTES // 2**20} MB",
                             path=label, hint="a subtitle file is text; check it is the right "
                                              "file")
        subs = pysubs2.load(str(path), encoding="utf-8")
    except UnicodeDecodeError:
        subs = pysubs2.load(str(path), encoding="latin-1")
    except (pysubs2.exceptions.Pysubs2Error, ValueError, OSError) as exc:
        raise InputError(f"cannot read subtitles {path.name}: {exc}", path=label,
                         hint="save it again as UTF-8 SRT or WebVTT") from exc
    cues = []
    for event in subs:
        if event.is_comment or event.end <= event.start:
            continue
        text = event.plaintext.strip()
        if text:
            cues.append(Cue(int(event.start), int(event.end), text))
        if len(cues) > MAX_CUES:
            raise InputError(f"subtitles {path.name} hold more than {MAX_CUES:,} lines",
                             path=label, hint="a subtitle file is text for this video; check "
                                              "it is the right file")
    return sorted(cues, key=lambda c: (c.start, c.end))


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
