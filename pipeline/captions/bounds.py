"""Sane maximums for every part of a caption, applied before any guardrail
runs, so that the guard's work is bounded whatever a provider, a master's
metadata or a transcript holds; and the characters no caption may carry.

The maximums sit well above what any platform takes (the longest preset
limits: TikTok photo 4,000 UTF-16 units, LinkedIn 3,000 characters; X alt
text 1,000; titles 100), so they only ever cut runaway text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

from pipeline.captions.model import Caption

MAX_TEXT = 10_000          # characters of body copy
MAX_HASHTAGS = 100         # hashtags in the list (Brief allows 100)
MAX_HASHTAG = 100          # characters of one hashtag
MAX_ALT = 1_000            # alt text: X, the most generous, takes 1,000
MAX_TITLE = 300            # titles: YouTube and Pinterest take 100, TikTok 90
MAX_PART = 2_000           # a call to action, link or disclosure (Brief.link: 2,000)
MAX_SOURCE = 50_000        # a transcript or description a provider is shown (~an hour of speech)
ABSURD = 10                # a provider field over ten times its maximum is refused, not cut

LINE_END = re.compile(r"\r\n?")
# tidy's steps, in this order so that each is linear: once runs of spaces are
# one space, "[ \t]*\n" can no longer backtrack over a long run.
SPACE_RUN = re.compile(r"[ \t]{2,}")
SPACE_PUNCT = re.compile(r"[ \t]([,.!?])")
LINE_SPACE = re.compile(r"[ \t]?\n[ \t]?")
BLANK_LINES = re.compile(r"\n{3,}")


def unusable(text: str) -> str | None:
    """Why `text` cannot be pasted anywhere, or None: control characters
    (other than tab and newline) and lone surrogates, which no platform
    takes and UTF-8 cannot even encode."""
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs":
            return "a lone surrogate"
        if category == "Cc" and ch not in "\t\n\r":
            return f"the control character U+{ord(ch):04X}"
    return None


def clean(text: str) -> str:
    """`text` without what `unusable` names, with "\\n" line endings."""
    text = LINE_END.sub("\n", text)
    if unusable(text) is None:
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cs"
                   and (unicodedata.category(ch) != "Cc" or ch in "\t\n"))


def tidy(text: str) -> str:
    """`text` after words were taken out of it: no doubled spaces, no space
    before punctuation, at most one blank line, nothing at either end."""
    text = SPACE_RUN.sub(" ", text)
    text = SPACE_PUNCT.sub(r"\1", text)
    text = LINE_SPACE.sub("\n", text)
    return BLANK_LINES.sub("\n\n", text).strip()


def cut(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, ending at a word if one ends in
    the last fifth (a runaway text has no better place)."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = max(head.rfind(" "), head.rfind("\n"))
    return (head[:space] if space > limit * 4 // 5 else head).rstrip()


def bound(caption: Caption) -> tuple[Caption, list[str]]:
    """The caption with every part clean and within its maximum, and what was cut."""
    notes: list[str] = []
    text = _part(caption.text, MAX_TEXT, "text", notes)
    tags = tuple(clean(t)[:MAX_HASHTAG] for t in caption.hashtags[:MAX_HASHTAGS])
    if len(caption.hashtags) > MAX_HASHTAGS or any(len(t) > MAX_HASHTAG
                                                   for t in caption.hashtags):
        notes.append(f"hashtags cut to {MAX_HASHTAGS} of at most {MAX_HASHTAG} characters")
    alt = _part(caption.alt_text, MAX_ALT, "alt text", notes) if caption.alt_text else None
    title = _part(caption.title, MAX_TITLE, "title", notes) if caption.title else None
    return replace(caption, text=text, hashtags=tags, alt_text=alt, title=title), notes


def _part(text: str, limit: int, name: str, notes: list[str]) -> str:
    cleaned = clean(text)
    if cleaned != LINE_END.sub("\n", text):
        notes.append(f"control characters removed from the {name}")
    if len(cleaned) > limit:
        notes.append(f"{name} cut to {limit:,} characters")
    return cut(cleaned, limit)
