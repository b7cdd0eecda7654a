"""What a caption finding or error may show: no secret from a provider's
settings (api_key, the value of the api_key_env variable, a base URL's user,
password or query) and every URL through `pipeline.trust.redact_url` (by way
of `shown`, since redact_url raises ValueError on a bad port)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pipeline.trust import redact_url

MIN_SECRET = 6             # shorter values would blank common words; no real key is that short
HIDDEN = "[redacted]"
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)


FUZZY_SECRET = 12         # letters and digits a secret needs to be looked for reformatted


def secrets_of(options: Mapping[str, Any]) -> tuple[str, ...]:
    """Every secret a provider's settings hold or point at, longest first (so a
    key that contains another is hidden whole)."""
    found: list[Any] = [options.get("api_key"),
                        os.environ.get(str(options.get("api_key_env") or "OPENAI_API_KEY"))]
    base = options.get("base_url")
    if isinstance(base, str):
        found += _url_secrets(base)
    unique = {s for s in found if isinstance(s, str) and len(s) >= MIN_SECRET}
    return tuple(sorted(unique, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret hidden and each URL shown without user, password or query."""
    for secret in secrets:
        text = text.replace(secret, HIDDEN)
    return URL.sub(lambda match: shown(match.group()), text)


def shown(url: str) -> str:
    """A URL as it may be shown: redact_url's form, or a placeholder when it
    cannot even be parsed (redact_url raises on a port such as ":99999")."""
    try:
        return redact_url(url)
    except ValueError:
        return "<unparsable URL>"


def holds_secret(texts: Iterable[str | None], secrets: Iterable[str]) -> bool:
    """Whether any text holds a secret, also with its punctuation dropped, its case
    changed or invisible characters slipped in (a key echoed as a hashtag), or in
    base64."""
    hidden, written = tuple(secrets), [t for t in texts if t is not None]
    if any(s in t for t in written for s in hidden):
        return True
    # Reformatted: only for secrets long enough that their letters and digits cannot
    # turn up in ordinary copy by chance.
    long = [s for s in hidden if len(_core(s)) >= FUZZY_SECRET]
    wanted = [_core(s) for s in long] + [
        _core(base64.b64encode(s.encode()).decode().rstrip("=")) for s in long]
    cores = [_core(t) for t in written]
    return any(w in t for t in cores for w in wanted)


def _core(text: str) -> str:
    """Letters and digits only, case folded: what survives any reformatting."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return [url]              # unparsable: hide it whole
    values = [parts.query, user, password]
    values += [unquote(v) for v in (user, password) if v]
    values += [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]
    return [v for v in values if v]
