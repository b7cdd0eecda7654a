"""A provider's reply, read as hostile: at most REPLY_CAP bytes, UTF-8 JSON of
the right shape, no control characters, no field absurdly long. Anything
else is a CaptionError that says what was wrong (never the reply itself),
so the variant keeps the template's caption and the manifest says why."""

from __future__ import annotations

import json
from typing import Any

from pipeline.captions.bounds import (
    ABSURD,
    MAX_ALT,
    MAX_HASHTAG,
    MAX_HASHTAGS,
    MAX_TEXT,
    MAX_TITLE,
    unusable,
)
from pipeline.captions.model import Caption, CaptionError

REPLY_CAP = 256 * 1024     # bytes; a caption reply is a few kilobytes


def load_json(raw: bytes, what: str) -> Any:
    """The JSON value in `raw`, or a CaptionError naming `what` was not JSON."""
    if len(raw) > REPLY_CAP:
        raise CaptionError(f"{what} is larger than {REPLY_CAP // 1024} KB")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CaptionError(f"{what} is not UTF-8 text") from None
    except (ValueError, RecursionError):     # RecursionError: "[[[[…" nested too deep
        raise CaptionError(f"{what} is not JSON") from None


def caption_of(data: Any, what: str) -> Caption:
    """The Caption in a decoded {"text", "hashtags", "alt_text", "title"} object."""
    if not isinstance(data, dict):
        raise CaptionError(f"{what} is not a JSON object with a \"text\"")
    text = _text(data.get("text"), "text", MAX_TEXT, what)
    if text is None or not text.strip():
        raise CaptionError(f"{what} has no \"text\"")
    return Caption(text=text, hashtags=_hashtags(data.get("hashtags"), what),
                   alt_text=_text(data.get("alt_text"), "alt_text", MAX_ALT, what),
                   title=_text(data.get("title"), "title", MAX_TITLE, what))


def strip_fence(content: str) -> str:
    """A model's JSON without the ```json fence some models put around it."""
    body = content.strip()
    if body.startswith("```") and body.endswith("```") and len(body) >= 6:
        body = body[3:-3]
        return body[4:] if body[:4].lower() == "json" else body
    return content


def _text(value: Any, field: str, limit: int, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CaptionError(f"{what}: \"{field}\" is a {_kind(value)}, not a string")
    if len(value) > limit * ABSURD:
        raise CaptionError(f"{what}: \"{field}\" is {len(value):,} characters long")
    bad = unusable(value)
    if bad:
        raise CaptionError(f"{what}: \"{field}\" holds {bad}")
    return value


def _hashtags(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CaptionError(f"{what}: \"hashtags\" is a {_kind(value)}, not a list of strings")
    if len(value) > MAX_HASHTAGS * ABSURD:
        raise CaptionError(f"{what}: {len(value):,} hashtags")
    return tuple(_text(tag, "hashtags", MAX_HASHTAG, what) or "" for tag in value)


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", bool: "boolean", int: "number",
            float: "number", str: "string"}.get(type(value), type(value).__name__)
