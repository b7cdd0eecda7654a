"""Guardrails applied to every provider's caption, the template's too: sane
maximums, brand lexicon and banned words, the hallucination guard, AI
disclosure, hashtag caps and the platform's hard length limits. Each change
or doubt becomes a finding that the manifest records.

What is judged is exactly what is pasted: the composed text of body, call to
action, link, disclosure and hashtags (pipeline/captions/fit.py). Every step
is linear, or near it, in the text, so hostile copy costs no more than long
copy. To add a guardrail: a function from text to text and findings, called
from `guard` before the post is composed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.captions import hashtags
from pipeline.captions.bounds import MAX_PART, bound, clean, cut, tidy
from pipeline.captions.facts import unsupported, without
from pipeline.captions.fit import Post, cap_hashtags, fit, shorten
from pipeline.captions.model import Caption, CaptionRequest, Limits
from pipeline.captions.spell import spell
from pipeline.schema import Brand, CaptionOptions

__all__ = ["Guarded", "guard", "shorten", "spell"]

MAX_NOTES = 20             # unsupported facts reported one by one; the rest are counted


@dataclass
class Guarded:
    caption: Caption
    findings: list[str] = field(default_factory=list)
    rejected: bool = False
    disclosure: str | None = None


def guard(caption: Caption, request: CaptionRequest, brand: Brand, options: CaptionOptions,
          ai: bool) -> Guarded:
    out = Guarded(caption)
    caption, out.findings = bound(caption)
    text, notes = spell(caption.text, brand.lexicon)
    title, title_notes = spell(caption.title, brand.lexicon) if caption.title else (None, [])
    out.findings += notes + title_notes
    kept = _banned(Caption(text, hashtags.normal(caption.hashtags), caption.alt_text, title),
                   brand, out)
    if kept is None:
        return out
    text = _facts(kept.text, request, options, out.findings)
    post = _post(text, kept.hashtags, request, options, ai, out)
    post = cap_hashtags(post, request.limits.max_hashtags, out.findings)
    pasted, post = fit(post, request.limits.max_chars, request.limits.unit, out.findings)
    out.caption = Caption(pasted, post.tags, kept.alt_text,
                          _title(kept.title, request.limits, out.findings))
    return out


def _banned(caption: Caption, brand: Brand, out: Guarded) -> Caption | None:
    """The caption without the brand's banned words (in its text, hashtags, title
    and alt text), or None when the brand rejects such a caption."""
    text, tags, title, alt = caption.text, caption.hashtags, caption.title, caption.alt_text
    for word in dict.fromkeys(w for w in brand.banned if w.strip()):
        pattern = re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)
        hits = [t for t in (text, title, alt, *tags) if t and pattern.search(t)]
        if not hits:
            continue
        if brand.banned_action == "reject":
            out.findings.append(f"banned word {word!r}: caption rejected")
            out.rejected = True
            return None
        text = tidy(pattern.sub("", text))
        title = tidy(pattern.sub("", title)) if title else title
        alt = tidy(pattern.sub("", alt)) if alt else alt
        tags = tuple(t for t in tags if not pattern.search(t))
        out.findings.append(f"banned word {word!r} removed")
    return Caption(text, tags, alt or None, title or None)


def _facts(text: str, request: CaptionRequest, options: CaptionOptions,
           findings: list[str]) -> str:
    facts = unsupported(text, request.sources())
    distinct = list(dict.fromkeys(f.text for f in facts))
    for fact in distinct[:MAX_NOTES]:
        findings.append(f"unsupported fact {fact!r} removed (not in brief, metadata or "
                        "transcript)" if options.strict else
                        f"unsupported fact {fact!r}: not in brief, metadata or transcript; "
                        "check it")
    if len(distinct) > MAX_NOTES:
        findings.append(f"{len(distinct) - MAX_NOTES} more unsupported facts "
                        f"{'removed' if options.strict else 'to check'}")
    return tidy(without(text, facts)) if options.strict and facts else text


def _post(body: str, tags: tuple[str, ...], request: CaptionRequest, options: CaptionOptions,
          ai: bool, out: Guarded) -> Post:
    """The parts of the text to paste. The brand's required parts stand apart
    from the body (taken out of it if the copy repeats them), so no shortening
    can cut them: call to action and link each on its own line, the AI
    disclosure first or last."""
    required = [_part(p) for p in (request.call_to_action, request.link) if p]
    disclosure = _part(options.disclosure.text) if ai and options.disclosure else ""
    for part in (*required, disclosure):
        if part.strip():        # whole only: the disclosure "#AI" is not inside "#AIart"
            body = re.sub(rf"(?<!\w){re.escape(part)}(?!\w)", "", body)
    lead: tuple[str, ...] = ()
    if disclosure.strip():
        out.disclosure = disclosure
        if options.disclosure and options.disclosure.position == "start":
            lead = (disclosure,)
        else:
            required.append(disclosure)
    return Post(tidy(body), lead, tuple(p for p in required if p.strip()), tags)


def _part(text: str) -> str:
    """A required part as it may be pasted: clean, one line's worth at most."""
    return cut(clean(text), MAX_PART).strip()


def _title(title: str | None, limits: Limits, findings: list[str]) -> str | None:
    if title and limits.title_max_chars and len(title) > limits.title_max_chars:
        findings.append(f"title shortened to {limits.title_max_chars} characters")
        return shorten(title, limits.title_max_chars, "chars") or None
    return title
