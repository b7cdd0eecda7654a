"""Guardrails applied to every provider's caption, the template's too: brand
lexicon and banned words, the hallucination guard, AI disclosure, hashtag
caps and the platform's hard length limits. Each change or doubt becomes a
finding that the manifest records."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from pipeline.captions.length import length
from pipeline.captions.model import Caption, CaptionRequest
from pipeline.schema import Brand, CaptionOptions

NEAR_MISS = 88            # rapidfuzz ratio (0-100) from which a name is taken as misspelled
URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
HANDLE = re.compile(r"(?<![\w@])@\w{2,}")
PRICE = re.compile(r"[$€£¥]\s?\d[\d,.]*|\d[\d,.]*\s?(?:USD|EUR|GBP|dollars|euros)\b",
                   re.IGNORECASE)
DATE = re.compile(r"\b(?:\d{1,4}[/-]\d{1,2}[/-]\d{1,4}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|"
                  r"oct|nov|dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?|\d{1,2}(?:st|nd|rd|th)? "
                  r"(?:of )?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*)\b",
                  re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w#])\d[\d,.]*%?")
HASHTAG = re.compile(r"(?<!\w)#\w+")


@dataclass
class Guarded:
    caption: Caption
    findings: list[str] = field(default_factory=list)
    rejected: bool = False
    disclosure: str | None = None


def guard(caption: Caption, request: CaptionRequest, brand: Brand, options: CaptionOptions,
          ai: bool) -> Guarded:
    out = Guarded(caption)
    text, title = caption.text, caption.title
    text, notes = spell(text, brand.lexicon)
    out.findings += notes
    if title:
        title, notes = spell(title, brand.lexicon)
        out.findings += notes
    for word in brand.banned:
        pattern = re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)
        if pattern.search(text) or (title and pattern.search(title)):
            if brand.banned_action == "reject":
                out.findings.append(f"banned word {word!r}: caption rejected")
                out.rejected = True
                return out
            text = _tidy(pattern.sub("", text))
            title = _tidy(pattern.sub("", title)) if title else title
            out.findings.append(f"banned word {word!r} removed")
    for fact in unsupported(text, request):
        if options.strict:
            text = _tidy(text.replace(fact, ""))
            out.findings.append(f"unsupported fact {fact!r} removed (not in brief, metadata "
                                "or transcript)")
        else:
            out.findings.append(f"unsupported fact {fact!r}: not in brief, metadata or "
                                "transcript; check it")
    tags = _hashtags(caption.hashtags, text, request.limits.max_hashtags, out.findings)
    # The parts the brand requires are set apart from the body, so no shortening
    # can cut them; they follow it on their own lines.
    required = [p for p in (request.call_to_action, request.link) if p]
    for part in required:
        text = _tidy(text.replace(part, ""))
    if ai and options.disclosure:
        out.disclosure = options.disclosure.text
        required.append(options.disclosure.text)
    text = fit(text, tags, required, request, options, out.findings)
    if title and request.limits.title_max_chars and len(title) > request.limits.title_max_chars:
        title = shorten(title, request.limits.title_max_chars, "chars")
        out.findings.append(f"title shortened to {request.limits.title_max_chars} characters")
    out.caption = Caption(text, tags, caption.alt_text, title)
    return out


def spell(text: str, lexicon: list[str]) -> tuple[str, list[str]]:
    """Brand names as the lexicon spells them: a near-miss (case, accents, a typo)
    is corrected and reported."""
    from rapidfuzz import fuzz

    notes = []
    for name in lexicon:
        size = len(name.split())
        words = list(re.finditer(r"[\w'’&.-]+", text))
        for i in range(len(words) - size + 1):
            start, end = words[i].start(), words[i + size - 1].end()
            found = text[start:end]
            if found == name:
                continue
            if _plain(found) == _plain(name) or fuzz.ratio(_plain(found), _plain(name)) >= \
                    NEAR_MISS:
                text = text[:start] + name + text[end:]
                notes.append(f"lexicon: {found!r} corrected to {name!r}")
                break
    return text, notes


def unsupported(text: str, request: CaptionRequest) -> list[str]:
    """Numbers, prices, dates, @handles and URLs that no source holds."""
    sources = _plain(request.sources())
    found: list[str] = []
    for pattern in (URL, HANDLE, PRICE, DATE, NUMBER):
        for match in pattern.finditer(text):
            fact = match.group(0).rstrip(".,;:!?)")
            if any(fact in f or f in fact for f in found):
                continue
            if _plain(fact) not in sources:
                found.append(fact)
    return found


def fit(body: str, tags: tuple[str, ...], required: list[str], request: CaptionRequest,
        options: CaptionOptions, findings: list[str]) -> str:
    """The text to paste, within the platform's limit: the body is shortened at a
    sentence or word boundary, never the required parts (call to action, link,
    disclosure)."""
    limits = request.limits
    position = options.disclosure.position if options.disclosure else "end"

    def compose(text: str) -> str:
        lead = [r for r in required if position == "start" and options.disclosure
                and r == options.disclosure.text]
        tail = [r for r in required if r not in lead]
        lines = [" ".join([*lead, text]).strip(), *tail]
        if tags:
            lines.append(" ".join(tags))
        return "\n\n".join(line for line in lines if line)

    whole = compose(body)
    if limits.max_chars is None or length(whole, limits.unit) <= limits.max_chars:
        return whole
    room = limits.max_chars - length(compose(""), limits.unit) - 2
    if room <= 0:
        findings.append("the required parts alone fill the limit: body dropped")
        return compose("")
    short = shorten(body, room, limits.unit)
    findings.append(f"shortened to {limits.max_chars} ({limits.unit}) at a "
                    f"{'sentence' if not short.endswith('…') else 'word'} boundary")
    return compose(short)


def shorten(text: str, limit: int, unit: str) -> str:
    """The longest start of `text` within `limit`: whole sentences if any fit,
    else whole words and an ellipsis. Never mid-word."""
    if length(text, unit) <= limit:
        return text
    sentences = re.split(r"(?<=[.!?])\s+", text)
    kept = ""
    for sentence in sentences:
        trial = f"{kept} {sentence}".strip()
        if length(trial, unit) > limit:
            break
        kept = trial
    if kept:
        return kept
    words, kept = text.split(), ""
    for word in words:
        trial = f"{kept} {word}".strip()
        if length(trial + "…", unit) > limit:
            break
        kept = trial
    return (kept.rstrip(",;:—-") + "…") if kept else ""


def _hashtags(tags: tuple[str, ...], text: str, cap: int | None,
              findings: list[str]) -> tuple[str, ...]:
    clean: list[str] = []
    for tag in tags:
        tag = "#" + re.sub(r"\W", "", tag.lstrip("#"))
        if len(tag) > 1 and tag.lower() not in {t.lower() for t in clean}:
            clean.append(tag)
    if cap is not None:
        in_text = len(HASHTAG.findall(text))
        allowed = max(0, cap - in_text)
        if len(clean) > allowed:
            findings.append(f"hashtags cut to the platform's {cap}")
            clean = clean[:allowed]
    return tuple(clean)


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def _tidy(text: str) -> str:
    return re.sub(r"\s{2,}", " ", re.sub(r"\s+([,.!?])", r"\1", text)).strip()
