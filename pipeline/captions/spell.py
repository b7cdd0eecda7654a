"""Brand names as the lexicon spells them: a near miss (case, accents, a typo)
is corrected wherever it occurs, and only the name's own words change (the
full stop after "Buenos Aires." stays).

The text is split into words once; each run of as many words as a name has
is compared, by its folded form, first exactly (a dict) and then fuzzily
(rapidfuzz, in C) against the names of that many words, and each distinct
run is compared once. The corrected text is built in one pass. So the work
grows with the text times the (schema-bounded, 200 at most) lexicon, with no
per-name rescans of the text and no string rebuilt per correction.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

NEAR_MISS = 88             # rapidfuzz ratio (0-100) from which a name is taken as misspelled
MAX_NOTES = 20             # distinct corrections reported one by one; the rest are counted
# A word: letters or digits, with ' ’ & . - inside it ("L'Oréal", "A&W", "co-op"),
# never at its ends, so "Aires." is the word "Aires" and its full stop.
WORD = re.compile(r"\w+(?:['’&.\-]\w+)*")


@dataclass(frozen=True)
class Name:
    spelling: str
    folded: str                 # its words, folded, joined by one space
    separators: tuple[str, ...]     # what stands between its words, spaces left out
    lead: str                   # characters before its first word ("@" of "@brand")
    trail: str                  # characters after its last word ("!" of "Yahoo!")


# Letters Unicode does not decompose into a base letter and an accent.
UNDECOMPOSED = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ı": "i", "ŀ": "l",
                              "æ": "ae", "œ": "oe", "þ": "th", "ð": "d"})


def fold(text: str) -> str:
    """Case and accents folded away, in any language: how two spellings are compared."""
    folded = unicodedata.normalize("NFKD", text.casefold()).translate(UNDECOMPOSED)
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def spell(text: str, lexicon: list[str] | tuple[str, ...]) -> tuple[str, list[str]]:
    """`text` with every near miss of a lexicon name corrected, and a note per
    distinct correction."""
    names = [n for n in (_name(s) for s in dict.fromkeys(lexicon)) if n is not None]
    if not names or not text:
        return text, []
    words = list(WORD.finditer(text))
    folded = [fold(w.group()) for w in words]
    matcher = _Matcher(names)
    pieces: list[str] = []
    done: Counter[tuple[str, str]] = Counter()
    pos = i = 0
    while i < len(words):
        found = matcher.at(text, words, folded, i)
        if found is None:
            i += 1
            continue
        name, start, end, size = found
        if text[start:end] != name.spelling:
            pieces += [text[pos:start], name.spelling]
            done[(text[start:end], name.spelling)] += 1
            pos = end
        i += size
    pieces.append(text[pos:])
    return "".join(pieces), _notes(done)


class _Matcher:
    """Finds the lexicon name that the words from index i spell, longest first."""

    def __init__(self, names: list[Name]) -> None:
        self.sizes = sorted({n.folded.count(" ") + 1 for n in names}, reverse=True)
        self.exact = {(n.folded.count(" ") + 1, n.folded): n for n in names}
        self.by_size = {s: [n for n in names if n.folded.count(" ") + 1 == s]
                        for s in self.sizes}
        self.seen: dict[tuple[int, str], Name | None] = {}

    def at(self, text: str, words: list[re.Match[str]], folded: list[str], i: int
           ) -> tuple[Name, int, int, int] | None:
        for size in self.sizes:
            if i + size > len(words):
                continue
            name = self._lookup(size, " ".join(folded[i:i + size]))
            if name is None or not _fits(text, words[i:i + size], name):
                continue
            start, end = _extend(text, words[i].start(), words[i + size - 1].end(), name)
            return name, start, end, size
        return None

    def _lookup(self, size: int, run: str) -> Name | None:
        key = (size, run)
        if key not in self.seen:
            self.seen[key] = self.exact.get(key) or self._near(size, run)
        return self.seen[key]

    def _near(self, size: int, run: str) -> Name | None:
        from rapidfuzz import fuzz, process

        choices = [n.folded for n in self.by_size[size]]
        best = process.extractOne(run, choices, scorer=fuzz.ratio, score_cutoff=NEAR_MISS)
        return self.by_size[size][best[2]] if best else None


def _name(spelling: str) -> Name | None:
    words = list(WORD.finditer(spelling))
    if not words:
        return None
    separators = tuple(spelling[a.end():b.start()].replace(" ", "")
                       for a, b in zip(words, words[1:], strict=False))
    return Name(spelling, " ".join(fold(w.group()) for w in words), separators,
                spelling[:words[0].start()], spelling[words[-1].end():])


def _fits(text: str, words: list[re.Match[str]], name: Name) -> bool:
    """Whether what stands between the words is only space, or the name's own
    separators: "Buenos. Aires" is two sentences, not a misspelled name."""
    for a, b, own in zip(words, words[1:], name.separators, strict=False):
        between = "".join(text[a.end():b.start()].split())
        if between and between != own:
            return False
    return True


def _extend(text: str, start: int, end: int, name: Name) -> tuple[int, int]:
    """The span to replace: the words, plus the name's own leading or trailing
    characters where the text has them too (so "Yahoo!" never becomes "Yahoo!!")."""
    if name.lead and text[max(0, start - len(name.lead)):start] == name.lead:
        start -= len(name.lead)
    if name.trail and text[end:end + len(name.trail)] == name.trail:
        end += len(name.trail)
    return start, end


def _notes(done: Counter[tuple[str, str]]) -> list[str]:
    notes = [f"lexicon: {found!r} corrected to {name!r}" + (f" ({count} times)"
                                                           if count > 1 else "")
             for (found, name), count in list(done.items())[:MAX_NOTES]]
    if len(done) > MAX_NOTES:
        notes.append(f"lexicon: {len(done) - MAX_NOTES} more spellings corrected")
    return notes
