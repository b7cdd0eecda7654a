"""A person's caption, held to the platform by the same steps as a drafted one:
hashtags capped across the whole text, then the length in the platform's own
unit (X weighted, UTF-16, bytes...), shortening at a sentence or word end.
The studio counts with `measure` as the person types and saves what `hold`
returns, showing what it changed."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.captions import hashtags
from pipeline.captions.fit import Post, cap_hashtags, fit
from pipeline.captions.length import length
from pipeline.captions.model import Limits


@dataclass(frozen=True)
class Count:
    """How long a text is for its platform."""
    length: int
    limit: int | None
    unit: str
    hashtags: int
    max_hashtags: int | None

    @property
    def over(self) -> bool:
        return bool((self.limit is not None and self.length > self.limit) or (
            self.max_hashtags is not None and self.hashtags > self.max_hashtags))

    def to_dict(self) -> dict[str, object]:
        return {"length": self.length, "limit": self.limit, "unit": self.unit,
                "hashtags": self.hashtags, "max_hashtags": self.max_hashtags,
                "over": self.over}


def measure(text: str, limits: Limits | None) -> Count:
    """`text` measured as the guard measures it."""
    unit = limits.unit if limits else "chars"
    return Count(length(text, unit), limits.max_chars if limits else None, unit,
                 hashtags.count(text), limits.max_hashtags if limits else None)


def hold(text: str, limits: Limits | None) -> tuple[str, list[str]]:
    """`text` within the platform's limits, and what was changed to get there."""
    findings: list[str] = []
    if limits is None:
        return text, findings
    post = cap_hashtags(Post(text), limits.max_hashtags, findings)
    held, _ = fit(post, limits.max_chars, limits.unit, findings)
    return (held if findings else text), findings
