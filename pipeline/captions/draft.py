"""One variant's caption: the request built from the shoot, the chosen
provider (falling back to the template when it fails, misbehaves or its copy
is rejected), the guardrails, and what the manifest records.

`caption_for` never raises for a provider's sake: a built-in provider's
CaptionError, any exception from a plug-in (or from loading it), a reply
that is not a Caption, all end in the template's caption and a finding that
says why. Findings never show a secret from the provider's settings, nor a
URL's user, password or query.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.captions.bounds import MAX_SOURCE, cut
from pipeline.captions.guard import Guarded, guard
from pipeline.captions.length import length
from pipeline.captions.model import Caption, CaptionError, CaptionRequest, CaptionResult, Limits
from pipeline.captions.providers import provider
from pipeline.captions.redact import holds_secret, scrub, secrets_of
from pipeline.languages import DEFAULT, primary
from pipeline.schema import Brand, Brief, CaptionOptions, Preset

log = logging.getLogger(__name__)

MAX_REASON = 300           # characters of a plug-in's own error message kept in a finding


def request_for(preset: Preset, brand: Brand, brief: Brief, options: CaptionOptions,
                metadata: dict[str, Any], transcript: str | None,
                duration_s: float | None, language: str | None = None
                ) -> CaptionRequest | None:
    """None for presets without a caption field (stories, thumbnails). The
    transcript and metadata come with the master: each is cut to MAX_SOURCE.
    `language`: the caption's (unset: captions.language, brief.language, else
    English)."""
    spec = preset.caption
    if spec is None:
        return None
    return CaptionRequest(
        platform=preset.platform, preset=preset.id,
        limits=Limits(spec.max_chars, spec.max_hashtags, spec.title_max_chars, spec.unit),
        brand=brand.name, handle=brand.handle, voice=brand.voice, lexicon=tuple(brand.lexicon),
        brief_title=brief.title, brief_description=brief.description,
        brief_hashtags=tuple(brief.hashtags), link=brief.link,
        call_to_action=brand.call_to_action, metadata=_bounded(metadata),
        transcript=cut(transcript, MAX_SOURCE) if transcript else transcript,
        media=preset.media, duration_s=duration_s,
        language=language or options.language or brief.language or DEFAULT)


def _bounded(metadata: dict[str, Any]) -> dict[str, Any]:
    def one(value: Any) -> Any:
        if isinstance(value, str):
            return cut(value, MAX_SOURCE)
        if isinstance(value, (list, tuple)):
            return [one(v) for v in value[:100]]
        return value
    return {key: one(value) for key, value in metadata.items()}


def caption_for(request: CaptionRequest, preset: Preset, brand: Brand,
                options: CaptionOptions) -> CaptionResult:
    """Draft, guard and record one caption. Never raises for a provider's sake."""
    options = options.for_preset(preset.id)
    name, findings = options.provider, []
    secrets = secrets_of(options.options)
    prompt = hashlib.sha256(json.dumps(request.to_dict(), sort_keys=True,
                                       default=str).encode()).hexdigest()
    checked, failure = _drafted(name, request, brand, options, secrets)
    if checked is None:
        findings.append(f"{name} failed, the template's caption is used: {failure}")
        name = "template"
        checked = guard(provider(name)(request, {}), request, brand, options, ai=False)
    caption = checked.caption
    label = preset.ai_disclosure.api_field if preset.ai_disclosure else None
    return CaptionResult(
        text=caption.text, hashtags=list(caption.hashtags), alt_text=caption.alt_text,
        title=caption.title, provider=name,
        model=str(options.options.get("model")) if options.options.get("model") else None,
        prompt_sha256=prompt,
        findings=[scrub(f, secrets) for f in findings + checked.findings],
        disclosure=checked.disclosure, ai_label_field=label if checked.disclosure else None)


def _drafted(name: str, request: CaptionRequest, brand: Brand, options: CaptionOptions,
             secrets: tuple[str, ...]) -> tuple[Guarded | None, str]:
    """The provider's guarded caption, or None and why there is none."""
    try:
        drafted = _checked(provider(name)(request, dict(options.options)))
        checked = guard(drafted, request, brand, options, ai=name != "template")
        if checked.rejected:
            return None, "; ".join(checked.findings)
        if name != "template" and holds_secret(_texts(checked.caption), secrets):
            return None, "its caption holds a secret from the provider's settings"
        return checked, ""
    except CaptionError as exc:
        reason = _said(exc)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plug-in's bug never loses a variant
        # SystemExit too: a plug-in that calls sys.exit() must not end a watch folder.
        reason = f"{type(exc).__name__}: {_said(exc)}"
    # No traceback in the log: a plug-in's exception may quote its key.
    log.debug("caption provider %s failed: %s", name, scrub(reason, secrets))
    return None, reason


def _said(exc: BaseException) -> str:
    """An exception's message, short; a plug-in's own __str__ may fail too."""
    try:
        return str(exc)[:MAX_REASON]
    except Exception:  # noqa: BLE001
        return "(its message could not be read)"


def _checked(drafted: object) -> Caption:
    """A plug-in may return anything: only a Caption of strings goes on (its
    hashtags as a tuple, though a list is forgiven)."""
    if not isinstance(drafted, Caption):
        raise CaptionError(f"it returned a {type(drafted).__name__}, not a Caption")
    tags = drafted.hashtags
    if not isinstance(tags, (tuple, list)) or not all(isinstance(t, str) for t in tags) or \
            not isinstance(drafted.text, str) or \
            not all(s is None or isinstance(s, str) for s in (drafted.alt_text, drafted.title)):
        raise CaptionError("it returned a Caption whose parts are not all strings")
    return Caption(drafted.text, tuple(tags), drafted.alt_text, drafted.title)


def _texts(caption: Caption) -> list[str | None]:
    return [caption.text, caption.alt_text, caption.title, *caption.hashtags]


OVER_LIMIT = "over the platform's limit: "


def caption_name(path: str, caption: Mapping[str, Any] | None = None) -> str:
    """Where a variant's caption is pasted from, beside it: `<name>.caption.txt`, or
    `<name>.<tag>.caption.txt` when the shoot posts in several languages (the
    caption records its tag; only a plain lowercase tag is taken from a manifest)."""
    tag = caption.get("tag") if isinstance(caption, Mapping) else None
    tagged = isinstance(tag, str) and primary(tag) == tag
    return str(PurePosixPath(path).with_suffix(f".{tag}.caption.txt" if tagged
                                               else ".caption.txt"))


def kept_caption(previous: dict[str, Any] | None, file: Path,
                 limits: Limits | None = None) -> dict[str, Any] | None:
    """The caption a person owns, which a re-render keeps: one approved or edited
    in the manifest, or whose caption.txt was changed by hand since it was written.
    It is never rewritten, but measured again: a finding says when it is over the
    platform's limit (so no export takes it as ready to post)."""
    caption = (previous or {}).get("caption")
    if not isinstance(caption, dict):
        return None
    try:
        on_disk = file.read_text(encoding="utf-8").rstrip("\n")
    except (OSError, UnicodeDecodeError):
        on_disk = None
    if on_disk is not None and on_disk != caption.get("text"):
        caption = {**caption, "text": on_disk, "status": "edited"}
    elif caption.get("status") not in ("approved", "edited"):
        return None
    return measured(caption, limits)


def measured(caption: dict[str, Any], limits: Limits | None) -> dict[str, Any]:
    """`caption` with its over-the-limit finding made current (kept captions and
    people's edits are measured again, never rewritten)."""
    findings = [f for f in caption.get("findings") or [] if isinstance(f, str)
                and not f.startswith(OVER_LIMIT)]
    text = caption.get("text")
    if limits and limits.max_chars and isinstance(text, str):
        size = length(text, limits.unit)
        if size > limits.max_chars:
            findings.append(f"{OVER_LIMIT}{size} of {limits.max_chars} ({limits.unit}); "
                            "shorten it before posting")
    return {**caption, "findings": findings}
