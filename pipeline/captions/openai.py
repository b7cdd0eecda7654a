"""The `openai` caption provider: any OpenAI-compatible chat-completions
endpoint (hosted APIs, Ollama, llama.cpp server, vLLM). One request per
platform, the platform's rules and the brand's voice in the prompt, JSON
output requested and validated; retries with backoff.

options: base_url (default https://api.openai.com/v1; a user:password in it
is sent as HTTP Basic auth when there is no key, a query string is kept),
model, api_key or api_key_env (default OPENAI_API_KEY), timeout (seconds for
the whole call, retries and backoff included, default 60), retries (default
3), temperature (default 0.4).

The reply is hostile until proven otherwise: at most REPLY_CAP bytes, read
within the deadline (pipeline/captions/transport.py says how), JSON of the
shape asked for (pipeline/captions/reply.py). No message ever shows the key
or the base URL's user, password or query.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pipeline.captions.model import Caption, CaptionError, CaptionRequest
from pipeline.captions.providers import number_option, register
from pipeline.captions.redact import shown as shown_url
from pipeline.captions.reply import REPLY_CAP, caption_of, load_json, strip_fence
from pipeline.captions.transport import Deadline, Failed, post
from pipeline.languages import name as language_name

MAX_WAIT = 8.0             # seconds: the longest backoff or Retry-After honoured


def prompt(request: CaptionRequest) -> list[dict[str, str]]:
    limits = request.limits
    rules = [f"Write the post copy for {request.platform} ({request.preset}) in "
             f"{language_name(request.language)} ({request.language}).",
             "Answer with one JSON object: {\"text\": str, \"hashtags\": [str], "
             "\"alt_text\": str or null, \"title\": str or null}.",
             "Use only facts from the brief, metadata and transcript given; never invent "
             "numbers, prices, dates, handles, links or names."]
    if limits.max_chars:
        rules.append(f"The text must stay under {limits.max_chars} ({limits.unit}).")
    if limits.max_hashtags is not None:
        rules.append(f"At most {limits.max_hashtags} hashtags.")
    if limits.title_max_chars:
        rules.append(f"A title of at most {limits.title_max_chars} characters.")
    if request.voice:
        rules.append(f"The brand's voice: {request.voice}.")
    if request.lexicon:
        rules.append("Spell these names exactly: " + ", ".join(request.lexicon) + ".")
    return [{"role": "system", "content": " ".join(rules)},
            {"role": "user", "content": json.dumps(request.to_dict(), ensure_ascii=False,
                                                   default=str)}]


@dataclass(frozen=True)
class Endpoint:
    url: str                    # what is called: no user or password, query kept
    shown: str                  # what a message may show: trust.redact_url's form
    headers: dict[str, str]


@register("openai")
def openai(request: CaptionRequest, options: dict[str, Any]) -> Caption:
    model = options.get("model")
    if not isinstance(model, str) or not model:
        raise CaptionError("captions.options.model is required for the openai provider")
    endpoint = _endpoint(options)
    timeout = number_option(options, "timeout", 60.0, 3600.0, positive=True)
    retries = int(number_option(options, "retries", 3, 10))
    body = json.dumps({"model": model, "messages": prompt(request),
                       "temperature": number_option(options, "temperature", 0.4, 2.0),
                       "response_format": {"type": "json_object"}}).encode()
    raw = _call(endpoint, body, Deadline(timeout), retries)
    content = _content(load_json(raw, f"{endpoint.shown}'s answer"), endpoint.shown)
    what = "the model's answer"
    return caption_of(load_json(strip_fence(content).encode("utf-8", "replace"), what), what)


def _endpoint(options: dict[str, Any]) -> Endpoint:
    base = str(options.get("base_url") or "https://api.openai.com/v1")
    shown = shown_url(base)
    try:
        parts = urlsplit(base)
        user, password = parts.username, parts.password
        parts.port                              # noqa: B018 - raises on a bad port
    except ValueError:
        raise CaptionError(f"captions.options.base_url is not a URL: {shown}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CaptionError(f"captions.options.base_url must be an http or https URL: {shown}")
    path = parts.path.rstrip("/") + "/chat/completions"
    url = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], path, parts.query, ""))
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    key = options.get("api_key") or os.environ.get(str(options.get("api_key_env")
                                                       or "OPENAI_API_KEY"), "")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    elif user is not None:
        pair = f"{unquote(user)}:{unquote(password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    if not all(_header_safe(v) for v in headers.values()):
        # http.client would refuse it with a message that quotes the whole header.
        raise CaptionError("the API key holds characters an HTTP header cannot carry")
    return Endpoint(url, shown, headers)


def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable()


def _call(endpoint: Endpoint, body: bytes, deadline: Deadline, retries: int) -> bytes:
    """The reply of the first attempt that gets one, all within `deadline`."""
    attempt = 0
    while True:
        outcome = post(endpoint.url, body, endpoint.headers, deadline, REPLY_CAP,
                       endpoint.shown)
        if not isinstance(outcome, Failed):
            return outcome
        wait = min(MAX_WAIT, outcome.wait if outcome.wait is not None else 0.5 * 2 ** attempt)
        if not outcome.retry or attempt >= retries or deadline.left() <= wait:
            raise outcome
        time.sleep(wait)
        attempt += 1


def _content(reply: Any, shown: str) -> str:
    """choices[0].message.content of a chat-completions reply."""
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        raise CaptionError(f"{shown}'s answer is not a chat completion with a message")
    return content
