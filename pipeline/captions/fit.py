"""The text that is pasted, composed from its parts and held to the platform.

A post is the body, the brand's required parts (call to action, link, AI
disclosure) and the hashtag line. Every limit is judged on the composed
text, exactly as `.caption.txt` and the manifest will hold it: hashtags are
counted in all of it (the body's inline ones too), and the length is
measured in the platform's unit on the whole, never on a part with an
allowance for the rest. Priorities when something must give: the required
parts, then the body, then the hashtag line. A last step re-measures the
composed text and cuts it if it is somehow still over, so no path can hand
the platform more than it takes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from pipeline.captions import hashtags
from pipeline.captions.bounds import tidy
from pipeline.captions.length import length

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
WORD_END = re.compile(r"\S+")
ELLIPSIS = "…"


@dataclass(frozen=True)
class Post:
    body: str
    lead: tuple[str, ...] = ()      # the disclosure, when it goes first
    tail: tuple[str, ...] = ()      # call to action, link, disclosure: each on its line
    tags: tuple[str, ...] = ()

    def text(self) -> str:
        first = " ".join(p for p in (*self.lead, self.body) if p)
        return "\n\n".join(p for p in (first, *self.tail, " ".join(self.tags)) if p)


def cap_hashtags(post: Post, cap: int | None, findings: list[str]) -> Post:
    """At most `cap` hashtags in the whole text: the required parts' first,
    then the body's inline ones, then the hashtag line."""
    if cap is None:
        return post
    budget = cap
    lead, budget = _plain_beyond(post.lead, budget, findings)
    tail, budget = _plain_beyond(post.tail, budget, findings)
    body, gone = hashtags.keep_first(post.body, budget, drop_word=True)
    if gone:
        body = tidy(body)
        findings.append(f"{len(gone)} hashtags removed from the text ({', '.join(gone[:5])}"
                        f"{', …' if len(gone) > 5 else ''}): the platform allows {cap}")
    inline = {m.group()[1:].casefold() for m in hashtags.found(body)}
    tags = tuple(t for t in post.tags if t[1:].casefold() not in inline)
    budget -= hashtags.count(body)
    if len(tags) > max(0, budget):
        findings.append(f"hashtags cut to the platform's {cap}")
        tags = tags[:max(0, budget)]
    return Post(body, lead, tail, tags)


def _plain_beyond(parts: tuple[str, ...], budget: int, findings: list[str]
                  ) -> tuple[tuple[str, ...], int]:
    """The brand's parts keep their words, but a hashtag past the cap loses its #."""
    kept = []
    for part in parts:
        part, gone = hashtags.keep_first(part, budget, drop_word=False)
        if gone:
            findings.append(f"{', '.join(gone)} in the call to action, link or disclosure "
                            "left as plain words: the platform allows no more hashtags")
        budget -= hashtags.count(part)
        kept.append(part)
    return tuple(kept), budget


def fit(post: Post, limit: int | None, unit: str, findings: list[str]) -> tuple[str, Post]:
    """The text to paste, within `limit` (in `unit`), and the post it came from."""
    if limit is None or length(post.text(), unit) <= limit:
        return post.text(), post
    post = _fit_tags(post, limit, unit, findings)
    post = _fit_body(post, limit, unit, findings)
    text = post.text()
    if length(text, unit) > limit:
        text = hard_cut(text, limit, unit)
        findings.append(f"cut to {limit} ({unit}): the call to action, link, disclosure and "
                        "hashtags alone are longer")
        left = {m.group() for m in hashtags.found(text)}
        post = replace(post, tags=tuple(t for t in post.tags if t in left))
    return text, post


def _fit_tags(post: Post, limit: int, unit: str, findings: list[str]) -> Post:
    """Fewer hashtags (the last go first) when they would leave the body less
    than half the limit, or less than it needs."""
    bare = replace(post, body="")
    need = length(post.text(), unit) - length(bare.text(), unit)
    room = limit - min(need, limit // 2)
    if length(bare.text(), unit) <= room:
        return post
    keep = _longest(len(post.tags), lambda k: length(
        replace(bare, tags=post.tags[:k]).text(), unit) <= room)
    findings.append(f"hashtags cut from {len(post.tags)} to {keep} to fit {limit} ({unit})")
    return replace(post, tags=post.tags[:keep])


def _fit_body(post: Post, limit: int, unit: str, findings: list[str]) -> Post:
    if length(post.text(), unit) <= limit:
        return post
    def fits(b: str) -> bool:
        return length(replace(post, body=b).text(), unit) <= limit

    body = shorten_to(post.body, fits)
    if not body:        # one word longer than the room (a pasted URL, a run of letters)
        chars = _longest(len(post.body), lambda k: fits(post.body[:k].rstrip() + ELLIPSIS))
        body = post.body[:chars].rstrip() + ELLIPSIS if chars else ""
        if body:
            findings.append(f"shortened to {limit} ({unit}) inside a word: no word end fits")
            return replace(post, body=body)
    if not body:
        findings.append("the required parts alone fill the limit: body dropped")
    else:
        findings.append(f"shortened to {limit} ({unit}) at a "
                        f"{'word' if body.endswith(ELLIPSIS) else 'sentence'} boundary")
    return replace(post, body=body)


def shorten(text: str, limit: int, unit: str) -> str:
    """The longest start of `text` within `limit`: whole sentences if any fit,
    else whole words and an ellipsis. Never mid-word."""
    return shorten_to(text, lambda t: length(t, unit) <= limit)


def shorten_to(text: str, fits: Callable[[str], bool]) -> str:
    """The longest start of `text` that `fits`: whole sentences if any, else whole
    words and an ellipsis, else "". Binary search: a few measures, not one per word."""
    if fits(text):
        return text
    ends = [m.start() for m in SENTENCE_END.finditer(text)]
    best = _longest(len(ends), lambda k: fits(text[:ends[k - 1]]))
    if best:
        return text[:ends[best - 1]]
    words = [m.end() for m in WORD_END.finditer(text)]

    def clipped(k: int) -> str:
        return text[:words[k - 1]].rstrip(",;:—-") + ELLIPSIS

    best = _longest(len(words), lambda k: fits(clipped(k)))
    return clipped(best) if best else ""


def hard_cut(text: str, limit: int, unit: str) -> str:
    """The longest start of `text` within `limit`, at a word end if any fits,
    else at any character; with an ellipsis where it fits."""
    words = [m.end() for m in WORD_END.finditer(text)]
    best = _longest(len(words), lambda k: length(
        text[:words[k - 1]].rstrip() + ELLIPSIS, unit) <= limit)
    if best:
        return text[:words[best - 1]].rstrip() + ELLIPSIS
    best = _longest(len(text), lambda k: length(text[:k], unit) <= limit)
    return text[:best].rstrip()


def _longest(count: int, fits: Callable[[int], bool]) -> int:
    """The largest k in 0..count with fits(k), taking 0 to fit and checking
    every k it returns (so a measure that is not monotonic costs length, not
    correctness)."""
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low

