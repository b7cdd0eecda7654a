"""Caption providers: a registry of functions from a CaptionRequest (and the
provider's options) to a Caption. Built in: `template` (offline and
deterministic) and `command` (a program: request JSON on stdin, caption JSON
on stdout). Third-party providers register through the `repurpose.captions`
entry-point group."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from pipeline.captions.model import Caption, CaptionRequest
from pipeline.registry import registrar

Provider = Callable[[CaptionRequest, dict[str, Any]], Caption]
PROVIDERS: dict[str, Provider] = {}
ENTRY_POINTS = "repurpose.captions"


class CaptionError(Exception):
    """A provider failed; the variant keeps the template's caption and says why."""


register = registrar(PROVIDERS)


def provider(name: str) -> Provider:
    if name == "openai" and name not in PROVIDERS:
        import pipeline.captions.openai  # noqa: F401 - registers itself
    if name in PROVIDERS:
        return PROVIDERS[name]
    for point in entry_points(group=ENTRY_POINTS):
        if point.name == name:
            loaded: Provider = point.load()
            PROVIDERS[name] = loaded
            return loaded
    raise CaptionError(f"no caption provider {name!r}; built in: "
                       f"{', '.join(sorted(PROVIDERS))}")


SHORT = {"x", "threads"}                 # platforms where the copy is a line or two
TITLED = {"youtube", "pinterest"}


@register("template")
def template(request: CaptionRequest, options: dict[str, Any]) -> Caption:
    """Each platform's copy from the brief, the master's metadata and the
    transcript, in the platform's shape. Deterministic: same input, same copy."""
    meta = request.metadata
    title = request.brief_title or meta.get("title") or request.brand or ""
    about = request.brief_description or meta.get("description") or ""
    heard = _first_sentences(request.transcript or "", 2)
    keywords = [str(k) for k in meta.get("keywords", [])]
    tags = [*request.brief_hashtags, *(_tag(k) for k in keywords)]
    if request.platform in SHORT:
        body = " ".join(p for p in (_sentence(title), _first_sentences(about, 1)) if p)
    else:
        body = " ".join(p for p in (_sentence(title) if request.platform not in TITLED
                                    else "", about, heard) if p)
    if request.call_to_action:
        body = f"{body} {request.call_to_action}".strip()
    alt = None
    if request.media == "photo":
        alt = meta.get("description") or request.brief_title or None
    return Caption(text=body.strip(), hashtags=tuple(tags),
                   alt_text=alt, title=title or None if request.platform in TITLED else None)


@register("command")
def command(request: CaptionRequest, options: dict[str, Any]) -> Caption:
    """Runs options.argv (a list, never a shell string) with the request as JSON on
    stdin; reads {"text", "hashtags", "alt_text", "title"} from stdout."""
    argv = options.get("argv") or options.get("command")
    if not isinstance(argv, list) or not argv:
        raise CaptionError("captions.options.argv must be a list: a program and its arguments")
    try:
        done = subprocess.run([str(a) for a in argv], input=json.dumps(request.to_dict()),
                              capture_output=True, text=True,
                              timeout=float(options.get("timeout", 60)))
    except subprocess.TimeoutExpired as exc:
        raise CaptionError(f"{argv[0]} took longer than {exc.timeout:g} s") from exc
    except OSError as exc:
        raise CaptionError(f"{argv[0]} could not run: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CaptionError(f"{argv[0]} exited {done.returncode}: {tail}")
    try:
        data = json.loads(done.stdout)
        return Caption(text=str(data["text"]),
                       hashtags=tuple(str(t) for t in data.get("hashtags", [])),
                       alt_text=data.get("alt_text"), title=data.get("title"))
    except (ValueError, KeyError, TypeError) as exc:
        raise CaptionError(f"{argv[0]} printed no caption JSON: {exc}") from exc


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else f"{text}."


def _first_sentences(text: str, count: int) -> str:
    return " ".join(re.split(r"(?<=[.!?])\s+", text.strip())[:count]).strip()


def _tag(keyword: str) -> str:
    return "#" + "".join(part[:1].upper() + part[1:] for part in re.split(r"\W+", keyword))
