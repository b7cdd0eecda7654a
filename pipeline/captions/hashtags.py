"""Hashtags as a platform counts them in the text that is pasted: a # (or the
full-width ＃) not glued to a word, and the word after it; not inside a URL
(a link's #fragment is part of the link). Counting is generous on purpose
("#1" counts): a cap is a ceiling, and one tag too few is harmless."""

from __future__ import annotations

import re

TAG = re.compile(r"(?<!\w)[#＃]\w+")
GLUED = re.compile(r"(?:[#＃]\w+)*")         # "#c#d" after "#b": not tags while glued to it
LINK = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)


def found(text: str) -> list[re.Match[str]]:
    """The hashtags of `text`, in order, leaving out those inside links."""
    links = [m.span() for m in LINK.finditer(text)]
    tags, j = [], 0
    for match in TAG.finditer(text):
        while j < len(links) and links[j][1] <= match.start():
            j += 1
        if j < len(links) and links[j][0] <= match.start():
            continue
        tags.append(match)
    return tags


def count(text: str) -> int:
    return len(found(text))


def normal(tags: tuple[str, ...]) -> tuple[str, ...]:
    """A list of hashtags as each is written: "#" and its word characters,
    each once (ignoring case), empty ones left out."""
    clean: list[str] = []
    seen: set[str] = set()
    for tag in tags:
        word = re.sub(r"\W", "", tag.lstrip("#＃"))
        if word and word.casefold() not in seen:
            seen.add(word.casefold())
            clean.append(f"#{word}")
    return tuple(clean)


def keep_first(text: str, keep: int, drop_word: bool) -> tuple[str, list[str]]:
    """`text` with only its first `keep` hashtags; each later one is taken out
    (drop_word) or left as plain text without its # sign. Returns the text and
    the tags that went."""
    tags = found(text)[max(0, keep):]
    if not tags:
        return text, []
    pieces, pos = [], 0
    for match in tags:
        pieces.append(text[pos:match.start()])
        if drop_word:       # with what is glued to it, which would become a tag of its own
            glued = GLUED.match(text, match.end())
            pos = glued.end() if glued else match.end()
        else:
            pieces.append(match.group()[1:])
            pos = match.end()
    pieces.append(text[pos:])
    return "".join(pieces), [m.group() for m in tags]
