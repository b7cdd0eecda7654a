"""Files written from cues: the ASS that libass burns in (one per variant,
styled for its frame), SRT/WebVTT sidecars, and the glyph check against the
shipped font."""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pysubs2

from pipeline.subtitles.cues import Cue
from pipeline.subtitles.layout import Frame, Style, font_size


def write_ass(cues: Sequence[Cue], style: Style, frame: Frame, target: Path) -> None:
    """An ASS file for libass with the frame as its canvas (no rescaling)."""
    subs = pysubs2.SSAFile()
    subs.info.update({"PlayResX": str(frame.width), "PlayResY": str(frame.height),
                      "WrapStyle": "2", "ScaledBorderAndShadow": "yes"})
    size = font_size(style, frame)
    alignment, margin_v = {
        "bottom": (pysubs2.Alignment.BOTTOM_CENTER, frame.height - frame.bottom),
        "middle": (pysubs2.Alignment.MIDDLE_CENTER, 0),
        "top": (pysubs2.Alignment.TOP_CENTER, frame.top),
    }[style.position]
    plain, sung = _colour(style.colour), _colour(style.highlight)
    subs.styles["Default"] = pysubs2.SSAStyle(
        fontname=family(style.font_path), fontsize=size, bold=_bold(style.font_path),
        primarycolor=sung if style.karaoke else plain, secondarycolor=plain,
        outlinecolor=_colour(style.outline_colour),
        backcolor=_colour(style.box_colour if style.box else style.outline_colour),
        borderstyle=3 if style.box else 1,
        outline=round(size * (0.18 if style.box else style.outline), 1), shadow=0,
        alignment=alignment, marginl=round(frame.left), marginr=round(frame.width - frame.right),
        marginv=round(margin_v))
    for cue in cues:
        text = _karaoke(cue) if style.karaoke else _escape(cue.text).replace("\n", r"\N")
        subs.append(pysubs2.SSAEvent(start=cue.start, end=cue.end, text=text))
    subs.save(str(target), format_="ass", encoding="utf-8")


def write_sidecar(cues: Sequence[Cue], target: Path, fmt: str) -> None:
    """An SRT or WebVTT caption file (plain text, lines as laid out)."""
    subs = pysubs2.SSAFile()
    for cue in cues:
        text = _escape(cue.text)
        if fmt == "vtt":        # WebVTT cue text: & and < start markup (W3C WebVTT 4.2.2)
            text = html.escape(text, quote=False)
        subs.append(pysubs2.SSAEvent(start=cue.start, end=cue.end,
                                     text=text.replace("\n", r"\N")))
    subs.save(str(target), format_={"srt": "srt", "vtt": "vtt"}[fmt], encoding="utf-8")


def missing_glyphs(cues: Sequence[Cue], font: Path) -> list[str]:
    """Characters of the cues the font cannot draw, each once, by Unicode name."""
    drawable = _cmap(font)
    missing = sorted({ch for cue in cues for ch in cue.text
                      if not ch.isspace() and ord(ch) not in drawable})
    return [f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')} ({ch})"
            for ch in missing]


@cache
def _cmap(font: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(str(font), lazy=True) as face:
        return frozenset(face.getBestCmap())


@cache
def family(font: Path) -> str:
    from fontTools.ttLib import TTFont

    with TTFont(str(font), lazy=True) as face:
        return str(face["name"].getBestFamilyName())


def _bold(font: Path) -> bool:
    return "bold" in font.stem.lower()


def _colour(hex_colour: str) -> pysubs2.Color:
    value = hex_colour.lstrip("#")
    return pysubs2.Color(int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def _escape(text: str) -> str:
    """Text shown as written: ASS override braces and backslashes neutralised."""
    return text.replace("\\", "\u29f5").replace("{", "(").replace("}", ")")


def _karaoke(cue: Cue) -> str:
    """Each word highlighted from its start (word times, or spread by length)."""
    lines = cue.text.split("\n")
    words = [w for line in lines for w in line.split(" ")]
    if cue.words and len(cue.words) == len(words):
        starts = [w.start for w in cue.words]
    else:
        total = sum(len(w) + 1 for w in words)
        starts, at = [], cue.start
        for word in words:
            starts.append(at)
            at += round(cue.duration * (len(word) + 1) / total)
    parts, index = [], 0
    for number, line in enumerate(lines):
        chunk = []
        for word in line.split(" "):
            following = starts[index + 1] if index + 1 < len(starts) else cue.end
            chunk.append(f"{{\\kf{max(1, round((following - starts[index]) / 10))}}}"
                         f"{_escape(word)}")
            index += 1
        parts.append(" ".join(chunk))
        if number == 0 and len(starts) and starts[0] > cue.start:
            parts[0] = f"{{\\k{round((starts[0] - cue.start) / 10)}}}" + parts[0]
    return r"\N".join(parts)
