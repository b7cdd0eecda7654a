"""Subtitle layout for one variant's frame: lines broken with the real metrics
of the shipped font (at most MAX_LINES lines of about MAX_CHARS characters,
within the preset's safe area), cues split when they hold more than that,
short cues lengthened (or merged) to MIN_CUE_MS, and reading speed kept
under MAX_CPS where the next cue leaves room. The cues' language decides the
rest: a word wider than a line (a long Hungarian compound) is hyphenated
where its language's dictionary allows (pyphen, LibreOffice's patterns), and
the short words its typography keeps off a line's end (Hungarian "a", Czech
"v") go down with the next word. Pure, apart from reading the font file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from PIL import ImageFont

from pipeline.languages import language as lang_of
from pipeline.subtitles.cues import Cue, Word

FONTS = Path(__file__).resolve().parent.parent / "fonts"
MAX_LINES = 2
MAX_CHARS = 42
MAX_CPS = 20
MIN_CUE_MS = 700
HYPHENATE_MAX = 60         # letters: longer runs (a pasted hash, a row of digits) are cut
GAP_MS = 80                # kept between a lengthened cue and the next


@dataclass(frozen=True)
class Style:
    name: str
    font: str
    size: float                # of the frame's height
    colour: str
    outline_colour: str
    outline: float             # of the font size
    box: bool
    position: str              # bottom | middle | top
    box_colour: str = "#000000"
    highlight: str = "#FFD400"
    karaoke: bool = False

    @property
    def font_path(self) -> Path:
        return FONTS / self.font


@cache
def styles() -> dict[str, Style]:
    raw = yaml.safe_load((Path(__file__).with_name("styles.yaml")).read_text(encoding="utf-8"))
    return {name: Style(name=name, **fields) for name, fields in raw.items()}


@dataclass(frozen=True)
class Frame:
    """The output frame and the box subtitles must stay inside (pixels)."""

    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float


def frame_of(size: tuple[int, int], safe: tuple[float, float, float, float]) -> Frame:
    """`safe` is the preset's safe area (top, bottom, left, right fractions)."""
    width, height = size
    top, bottom, left, right = safe
    margin = 0.03        # a little air inside the safe area, and at the frame's edges
    return Frame(width, height, width * max(left, margin), height * max(top, margin),
                 width * (1 - max(right, margin)), height * (1 - max(bottom, margin)))


def font_size(style: Style, frame: Frame) -> int:
    return max(10, round(style.size * frame.height))


@cache
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def layout(cues: Sequence[Cue], style: Style, frame: Frame, length: int,
           language: str | None = None) -> list[Cue]:
    """Cues whose text is broken into lines that fit, timed to be readable,
    and ending by `length` (the variant's milliseconds). `language`: the cues'
    BCP 47 tag (unset: English rules)."""
    font = _font(style.font_path, font_size(style, frame))
    room = (frame.right - frame.left) - 2 * style.outline * font_size(style, frame)
    rules = _rules(language)
    out: list[Cue] = []
    for cue in _merge_short(cues):
        lines = _lines(" ".join(cue.text.split()), font, room, rules)
        for chunk, (start, end), words in _chunks(cue, lines, font, room, rules):
            out.append(Cue(start, end, "\n".join(chunk), words))
    return _lengthen(out, length)


@dataclass(frozen=True)
class _Rules:
    binding: frozenset[str]
    hyphenation: str | None          # a pyphen dictionary


@cache
def _rules(language: str | None) -> _Rules:
    import pyphen

    found = lang_of(language or "en")
    dictionary = pyphen.language_fallback(language.replace("-", "_")) if language else "en_US"
    return _Rules(found.binding if found else frozenset(), dictionary)


def _units(words: list[str], rules: _Rules) -> list[str]:
    """Words as lines may be broken between them: a binding word ("a" before
    "legjobb") stays with the word after it."""
    units: list[str] = []
    glue = False
    for word in words:
        if glue and units:
            units[-1] = f"{units[-1]} {word}"
        else:
            units.append(word)
        glue = word.casefold() in rules.binding
    return units


def _lines(text: str, font: ImageFont.FreeTypeFont, room: float, rules: _Rules) -> list[str]:
    """Greedy lines under `room` pixels and MAX_CHARS, then each pair balanced."""
    lines: list[str] = []
    units = _units(text.split(" "), rules)
    while units:
        unit = units.pop(0)
        trial = f"{lines[-1]} {unit}" if lines else unit
        if lines and _fits(trial, font, room):
            lines[-1] = trial
        elif _fits(unit, font, room):
            lines.append(unit)
        elif " " in unit:       # a bound pair wider than a line: its last word hyphenated
            head, word = unit.rsplit(" ", 1)
            parts = _hyphenated(word, font, room, rules, head)
            if parts[0].startswith(f"{head} "):
                lines.extend(parts)
            else:               # not even its first syllable fits beside: two words after all
                units[:0] = unit.split(" ")
        else:
            lines.extend(_hyphenated(unit, font, room, rules))
    balanced: list[str] = []
    for index in range(0, len(lines), MAX_LINES):
        pair = lines[index:index + MAX_LINES]
        balanced += _balance(pair, font, room, rules) if len(pair) == 2 else pair
    return balanced


def _fits(line: str, font: ImageFont.FreeTypeFont, room: float) -> bool:
    return len(line) <= MAX_CHARS and font.getlength(line) <= room


def _hyphenated(word: str, font: ImageFont.FreeTypeFont, room: float, rules: _Rules,
                head: str = "") -> list[str]:
    """A word wider than a line, in lines: broken where its language's
    hyphenation allows (a hyphen ends each line but the last), else where the
    line is full; a URL, an address or a word of HYPHENATE_MAX letters or more
    only where the line is full, and without a hyphen added. `head`: words
    bound to it, kept on its first line when the first part fits beside them
    (else the word starts its own line). Linear in the word: a line holds at
    most MAX_CHARS characters, and only that much is measured per line."""
    import pyphen

    lines = []
    plain = len(word) < HYPHENATE_MAX and not any(c in word for c in "/@:\\.=_")
    dictionary = pyphen.Pyphen(lang=rules.hyphenation) if rules.hyphenation and plain else None
    lead = f"{head} " if head else ""
    while not _fits(lead + word, font, room):
        cut = None
        if dictionary is not None:
            cut = next(((a, b) for a, b in dictionary.iterate(word)
                        if _fits(f"{lead}{a}{_mark(a)}", font, room)), None)
        if cut is None and lead:
            return [head, *_hyphenated(word, font, room, rules)]
        if cut is None:
            mark = "-" if plain else ""
            low, high = 1, min(len(word), MAX_CHARS)      # the most that fits, by halves
            while low < high:
                middle = (low + high + 1) // 2
                if _fits(f"{word[:middle]}{mark}", font, room):
                    low = middle
                else:
                    high = middle - 1
            size = low
            if size >= len(word):
                break
            cut = (word[:size], word[size:])
        lines.append(f"{lead}{cut[0]}{_mark(cut[0]) if plain else ''}")
        word, lead = cut[1], ""
    return [*lines, lead + word]


def _mark(part: str) -> str:
    """The hyphen that ends a broken line, unless the break is at a hyphen already."""
    return "" if part.endswith(("-", "\u2010", "\u2013")) else "-"


def _balance(pair: list[str], font: ImageFont.FreeTypeFont, room: float, rules: _Rules
             ) -> list[str]:
    """Two lines broken where the longer one is shortest (a tidier block); a line
    that ends in a hyphen stays as it is."""
    if pair[0].endswith("-"):
        return pair
    units = _units(" ".join(pair).split(" "), rules)
    best = pair
    widest = max(font.getlength(line) for line in pair)
    for cut in range(1, len(units)):
        a, b = " ".join(units[:cut]), " ".join(units[cut:])
        width = max(font.getlength(a), font.getlength(b))
        if width < widest and width <= room and max(len(a), len(b)) <= MAX_CHARS:
            best, widest = [a, b], width
    return best


def _chunks(cue: Cue, lines: list[str], font: ImageFont.FreeTypeFont, room: float,
            rules: _Rules) -> list[tuple[list[str], tuple[int, int], tuple[Word, ...]]]:
    """At most MAX_LINES lines per cue: a longer one becomes several cues of
    about equal length, the time shared by characters (or cut at word times)."""
    if len(lines) <= MAX_LINES:
        return [(lines, (cue.start, cue.end), cue.words)]
    words = " ".join(cue.text.split()).split(" ")
    parts = -(-len(lines) // MAX_LINES)
    total = sum(len(w) + 1 for w in words)
    groups: list[list[str]] = [[] for _ in range(parts)]
    seen = 0
    for unit in _units(words, rules):   # each goes to the part its middle character falls in
        groups[min(parts - 1, int((seen + len(unit) / 2) * parts / total))].append(unit)
        seen += len(unit) + 1
    out = []
    start, used, taken = cue.start, 0, 0
    for number, group in enumerate(g for g in groups if g):
        text = " ".join(group)
        used += len(text) + 1
        count = text.count(" ") + 1
        spoken = cue.words[taken:taken + count]
        taken += count
        if number == parts - 1 or taken >= len(words):
            end = cue.end
        elif cue.words and taken < len(cue.words):
            end = cue.words[taken].start
        else:
            end = cue.start + round(cue.duration * used / total)
        out.append((_lines(text, font, room, rules), (start, end), spoken))
        start = end
    if any(len(chunk) > MAX_LINES for chunk, _, _ in out):
        return _paired(cue, lines)
    return out


def _paired(cue: Cue, lines: list[str]) -> list[tuple[list[str], tuple[int, int],
                                                      tuple[Word, ...]]]:
    """The lines as they are, MAX_LINES to a cue, the time shared by characters:
    for text whose balanced parts would not fit (a word hyphenated over lines)."""
    total = sum(len(line) + 1 for line in lines)
    out: list[tuple[list[str], tuple[int, int], tuple[Word, ...]]] = []
    start, used = cue.start, 0
    for index in range(0, len(lines), MAX_LINES):
        pair = lines[index:index + MAX_LINES]
        used += sum(len(line) + 1 for line in pair)
        end = cue.end if index + MAX_LINES >= len(lines) else \
            cue.start + round(cue.duration * used / total)
        out.append((pair, (start, end), ()))
        start = end
    return out


def _merge_short(cues: Sequence[Cue]) -> list[Cue]:
    """A cue under MIN_CUE_MS that the next one leaves no room to lengthen joins
    it, when their text fits one cue."""
    merged: list[Cue] = []
    for cue in cues:
        if merged and merged[-1].start + MIN_CUE_MS > cue.start - GAP_MS:
            last = merged[-1]
            text = f"{' '.join(last.text.split())} {' '.join(cue.text.split())}"
            if len(text) <= MAX_CHARS * MAX_LINES:
                merged[-1] = Cue(last.start, cue.end, text, last.words + cue.words)
                continue
        merged.append(cue)
    return merged


def _lengthen(cues: list[Cue], length: int) -> list[Cue]:
    """Cues too short or too fast to read last longer, into the gap before the next."""
    out: list[Cue] = []
    for index, cue in enumerate(cues):
        following = cues[index + 1].start - GAP_MS if index + 1 < len(cues) else length
        chars = len(cue.text.replace("\n", " "))
        wanted = max(MIN_CUE_MS, round(chars * 1000 / MAX_CPS))
        end = cue.end
        if cue.duration < wanted:
            end = max(cue.end, min(cue.start + wanted, following))
        out.append(Cue(cue.start, min(end, length), cue.text, cue.words))
    return out
