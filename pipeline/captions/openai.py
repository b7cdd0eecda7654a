"""The `openai` caption provider: any OpenAI-compatible chat-completions
endpoint (hosted APIs, Ollama, llama.cpp server, vLLM). One request per
platform, the platform's rules and the brand's voice in the prompt, JSON
output requested and validated; timeouts and retries with backoff.

options: base_url (default https://api.openai.com/v1), model, api_key or
api_key_env (default OPENAI_API_KEY), timeout (s, default 60), retries
(default 3), temperature (default 0.4).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from pipeline.captions.model import Caption, CaptionRequest
from pipeline.captions.providers import CaptionError, register

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def prompt(request: CaptionRequest) -> list[dict[str, str]]:
    limits = request.limits
    rules = [f"Write the post copy for {request.platform} ({request.preset}).",
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


@register("openai")
def openai(request: CaptionRequest, options: dict[str, Any]) -> Caption:
    base = str(options.get("base_url", "https://api.openai.com/v1")).rstrip("/")
    model = options.get("model")
    if not model:
        raise CaptionError("captions.options.model is required for the openai provider")
    key = options.get("api_key") or os.environ.get(str(options.get("api_key_env",
                                                                   "OPENAI_API_KEY")), "")
    body = json.dumps({"model": model, "messages": prompt(request),
                       "temperature": float(options.get("temperature", 0.4)),
                       "response_format": {"type": "json_object"}}).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    timeout = float(options.get("timeout", 60))
    retries = int(options.get("retries", 3))
    for attempt in range(retries + 1):
        call = urllib.request.Request(f"{base}/chat/completions", data=body, headers=headers,
                                      method="POST")
        try:
            with urllib.request.urlopen(call, timeout=timeout) as response:
                reply = json.loads(response.read())
            break
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRY_STATUS or attempt == retries:
                raise CaptionError(f"{base} answered HTTP {exc.code}") from exc
            wait = _retry_after(exc) or min(8.0, 0.5 * 2 ** attempt)
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            if attempt == retries:
                raise CaptionError(f"{base} did not answer: {exc}") from exc
            wait = min(8.0, 0.5 * 2 ** attempt)
        time.sleep(wait)
    try:
        content = reply["choices"][0]["message"]["content"]
        data = json.loads(content)
        text = str(data["text"])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise CaptionError(f"the model's answer is not the caption JSON asked for: {exc}") \
            from exc
    tags = data.get("hashtags") or []
    return Caption(text=text, hashtags=tuple(str(t) for t in tags if isinstance(t, str)),
                   alt_text=data.get("alt_text") if isinstance(data.get("alt_text"), str)
                   else None,
                   title=data.get("title") if isinstance(data.get("title"), str) else None)


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    value = error.headers.get("Retry-After") if error.headers else None
    try:
        return min(8.0, float(value)) if value else None
    except ValueError:
        return None
