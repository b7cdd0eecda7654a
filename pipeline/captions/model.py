"""Caption hooks speak plain data: a request in, a caption out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class CaptionError(Exception):
    """A provider failed; the variant keeps the template's caption and says why.
    Its message never holds a secret or a URL's user, password or query."""


@dataclass(frozen=True)
class Limits:
    max_chars: int | None
    max_hashtags: int | None
    title_max_chars: int | None
    unit: str                   # chars | utf16 | bytes | x_weighted | chars_emoji_utf8_bytes


@dataclass(frozen=True)
class CaptionRequest:
    platform: str
    preset: str
    limits: Limits
    brand: str | None
    handle: str | None
    voice: str | None
    lexicon: tuple[str, ...]
    brief_title: str | None
    brief_description: str | None
    brief_hashtags: tuple[str, ...]
    link: str | None
    call_to_action: str | None
    metadata: dict[str, Any]            # title, description, keywords, creator from the master
    transcript: str | None
    media: str                          # photo | video
    duration_s: float | None
    language: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sources(self) -> str:
        """Everything the copy may take facts from."""
        parts = [self.brand, self.handle, self.brief_title, self.brief_description, self.link,
                 self.call_to_action, self.transcript, " ".join(self.brief_hashtags),
                 " ".join(self.lexicon), " ".join(str(v) for v in self.metadata.values())]
        return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class Caption:
    text: str
    hashtags: tuple[str, ...] = ()
    alt_text: str | None = None
    title: str | None = None


@dataclass
class CaptionResult:
    """What the manifest records for one variant's caption."""

    text: str
    hashtags: list[str]
    alt_text: str | None
    title: str | None
    provider: str
    model: str | None
    prompt_sha256: str | None
    findings: list[str] = field(default_factory=list)
    disclosure: str | None = None
    ai_label_field: str | None = None
    status: str = "draft"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
