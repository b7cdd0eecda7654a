"""The hallucination guard: numbers, prices, dates, @handles and URLs in the
copy that no source (brief, metadata, transcript) holds.

Every pattern is linear on hostile text: no quantified group is followed by
something that can fail after it, or a lookbehind pins where it may start
(a price's digits start a run of digits, so "111…1" is tried once, not once
per digit). A fact inside an earlier fact's place ("12" of "$12", "12" and
"24" of the date "12/24") is not a second one; the same fact elsewhere is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.captions.spell import fold

URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
HANDLE = re.compile(r"(?<![\w@])@\w{2,}")
PRICE = re.compile(r"[$€£¥]\s?\d[\d,.]*|(?<![\d,.])\d[\d,.]*\s?(?:USD|EUR|GBP|dollars|euros)\b",
                   re.IGNORECASE)
MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
DATE = re.compile(rf"\b(?:\d{{1,4}}[/-]\d{{1,2}}(?:[/-]\d{{1,4}})?|{MONTH}[a-z]*\.? \d{{1,2}}"
                  rf"(?:st|nd|rd|th)?|\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{MONTH}[a-z]*)\b",
                  re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w#])\d[\d,.]*%?")
PATTERNS = (URL, HANDLE, PRICE, DATE, NUMBER)
TRAILING = ".,;:!?)"


@dataclass(frozen=True)
class Fact:
    text: str
    start: int
    end: int


def unsupported(text: str, sources: str) -> list[Fact]:
    """Each place in `text` that states a fact `sources` does not hold."""
    folded_sources = fold(sources)
    taken = bytearray(len(text) + 1)        # 1 where an earlier fact already stands
    known: dict[str, bool] = {}
    found: list[Fact] = []
    for pattern in PATTERNS:
        for match in pattern.finditer(text):
            fact = match.group(0).rstrip(TRAILING)
            start = match.start()
            end = start + len(fact)
            if not fact or any(taken[start:end]):
                continue
            taken[start:end] = b"\1" * (end - start)
            if fact not in known:
                known[fact] = fold(fact) in folded_sources
            if not known[fact]:
                found.append(Fact(fact, start, end))
    return sorted(found, key=lambda f: f.start)


def without(text: str, facts: list[Fact]) -> str:
    """`text` with each of `facts` (in order, not overlapping) taken out."""
    pieces, pos = [], 0
    for fact in facts:
        pieces.append(text[pos:fact.start])
        pos = fact.end
    pieces.append(text[pos:])
    return "".join(pieces)
