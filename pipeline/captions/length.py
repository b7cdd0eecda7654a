"""Text length as each platform counts it."""

from __future__ import annotations

import unicodedata


def length(text: str, unit: str) -> int:
    if unit == "x_weighted":
        from twitter_text import parse_tweet

        return int(parse_tweet(text).weightedLength)
    if unit == "utf16":
        return len(text.encode("utf-16-le")) // 2
    if unit == "bytes":
        return len(text.encode("utf-8"))
    if unit == "chars_emoji_utf8_bytes":     # Threads: an emoji counts its UTF-8 bytes
        return sum(len(ch.encode("utf-8")) if _emoji(ch) else 1 for ch in text)
    return len(text)


def _emoji(ch: str) -> bool:
    return unicodedata.category(ch) == "So" and ord(ch) > 0x2000
