"""One variant's caption: the request built from the shoot, the chosen
provider (falling back to the template when it fails or its copy is
rejected), the guardrails, and what the manifest records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline.captions.guard import guard
from pipeline.captions.model import CaptionRequest, CaptionResult, Limits
from pipeline.captions.providers import CaptionError, provider
from pipeline.schema import Brand, Brief, CaptionOptions, Preset


def request_for(preset: Preset, brand: Brand, brief: Brief, options: CaptionOptions,
                metadata: dict[str, Any], transcript: str | None,
                duration_s: float | None) -> CaptionRequest | None:
    """None for presets without a caption field (stories, thumbnails)."""
    spec = preset.caption
    if spec is None:
        return None
    return CaptionRequest(
        platform=preset.platform, preset=preset.id,
        limits=Limits(spec.max_chars, spec.max_hashtags, spec.title_max_chars, spec.unit),
        brand=brand.name, handle=brand.handle, voice=brand.voice, lexicon=tuple(brand.lexicon),
        brief_title=brief.title, brief_description=brief.description,
        brief_hashtags=tuple(brief.hashtags), link=brief.link,
        call_to_action=brand.call_to_action, metadata=metadata, transcript=transcript,
        media=preset.media, duration_s=duration_s, language=options.language)


def caption_for(request: CaptionRequest, preset: Preset, brand: Brand,
                options: CaptionOptions) -> CaptionResult:
    """Draft, guard and record one caption. Never raises for a provider's sake."""
    options = options.for_preset(preset.id)
    name, findings = options.provider, []
    prompt = hashlib.sha256(json.dumps(request.to_dict(), sort_keys=True,
                                       default=str).encode()).hexdigest()
    try:
        drafted = provider(name)(request, dict(options.options))
        checked = guard(drafted, request, brand, options, ai=name != "template")
        if checked.rejected:
            raise CaptionError("; ".join(checked.findings))
    except CaptionError as exc:
        findings.append(f"{name} failed, the template's caption is used: {exc}")
        name = "template"
        checked = guard(provider(name)(request, {}), request, brand, options, ai=False)
    caption = checked.caption
    label = preset.ai_disclosure.api_field if preset.ai_disclosure else None
    return CaptionResult(
        text=caption.text, hashtags=list(caption.hashtags), alt_text=caption.alt_text,
        title=caption.title, provider=name,
        model=str(options.options.get("model")) if options.options.get("model") else None,
        prompt_sha256=prompt, findings=findings + checked.findings,
        disclosure=checked.disclosure, ai_label_field=label if checked.disclosure else None)


def kept_caption(previous: dict[str, Any] | None, file: Path) -> dict[str, Any] | None:
    """The caption a person owns, which a re-render keeps: one approved or edited
    in the manifest, or whose caption.txt was changed by hand since it was written."""
    caption = (previous or {}).get("caption")
    if not isinstance(caption, dict):
        return None
    try:
        on_disk = file.read_text(encoding="utf-8").rstrip("\n")
    except OSError:
        on_disk = None
    if on_disk is not None and on_disk != caption.get("text"):
        return {**caption, "text": on_disk, "status": "edited"}
    if caption.get("status") in ("approved", "edited"):
        return caption
    return None
