"""Text length as each platform counts it.

X counts a "weighted length" (twitter/twitter-text, config/README.md and
js/src/parseTweet.js): the text is NFC-normalised and its line endings made
"\\n"; every URL counts 23, an emoji sequence 2, code points in the Latin,
punctuation and general ranges 1 and everything else (CJK, most symbols) 2.
twitter-text-parser implements that, but its URL regex backtracks
catastrophically on dotted runs without a top-level domain ("a.a.a…" of
1,000 characters takes seconds, 10,000 minutes), and captions are content.
So the text is measured one whitespace-separated token at a time (no URL or
emoji contains twitter-text's spaces, and each token keeps the space before
it, so the URL rules see the same neighbour), tokens are cached, and a token
with a run of more than MAX_DOTS dots gets a safe upper bound instead of a
parse: 2 per character plus 23 per dot or "://" (every URL holds one).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

URL_WEIGHT = 23                 # twitter-text transformedURLLength
MAX_DOTS = 8                    # more dots in one run than any real host name has
# twitter-text's spaces_group: the characters a URL or an emoji never holds.
SPACES = "\t\n\x0b\x0c\r \x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TOKEN = re.compile(f"[^{SPACES}]+")
LINE_END = re.compile(r"\r\n|\r")
# A run that twitter-text may try as a host name: its punctuation, less the
# ".", "-" and "_" that host names hold, ends one (regexp/punct.py there).
DOTTED = re.compile(r"[^!'#%&()*+,/:;<=>?@\[\]^{|}~$\\]+")


def length(text: str, unit: str) -> int:
    if unit == "x_weighted":
        return x_weighted(text)
    if unit == "utf16":
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    if unit == "bytes":
        return len(text.encode("utf-8", "surrogatepass"))
    if unit == "chars_emoji_utf8_bytes":     # Threads: an emoji counts its UTF-8 bytes
        return sum(len(ch.encode("utf-8", "surrogatepass")) if _emoji(ch) else 1
                   for ch in text)
    return len(text)


def x_weighted(text: str) -> int:
    """twitter-text's weightedLength, in time linear in the text."""
    text = LINE_END.sub("\n", unicodedata.normalize("NFC", text))
    total, pos = 0, 0
    for match in TOKEN.finditer(text):
        gap = text[pos:match.start()]
        total += sum(_parsed(ch) for ch in gap)
        total += _token(gap[-1:], match.group())
        pos = match.end()
    return total + sum(_parsed(ch) for ch in text[pos:])


@lru_cache(maxsize=1024)      # tokens of a few captions: bounded memory in a long watch
def _token(space: str, token: str) -> int:
    """One token's weight, measured after the space that precedes it."""
    if _hostile(token):
        return 2 * len(token) + URL_WEIGHT * (token.count(".") + token.count("://"))
    return _parsed(space + token) - _parsed(space)


@lru_cache(maxsize=1024)      # tokens of a few captions: bounded memory in a long watch
def _parsed(text: str) -> int:
    if not text:
        return 0
    from twitter_text import parse_tweet

    return int(parse_tweet(text).weightedLength)


def _hostile(token: str) -> bool:
    if token.count(".") <= MAX_DOTS:
        return False
    return any(run.count(".") > MAX_DOTS for run in DOTTED.findall(token))


def _emoji(ch: str) -> bool:
    return unicodedata.category(ch) == "So" and ord(ch) > 0x2000
