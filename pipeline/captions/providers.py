"""Caption providers: a registry of functions from a CaptionRequest (and the
provider's options) to a Caption. Built in: `template` (offline and
deterministic) and `command` (a program: request JSON on stdin, caption JSON
on stdout). Third-party providers register through the `repurpose.captions`
entry-point group. A provider raises CaptionError to say why it has no
caption; whatever else it does, `caption_for` falls back to the template."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from pipeline.captions.bounds import clean
from pipeline.captions.model import Caption, CaptionError, CaptionRequest
from pipeline.captions.reply import REPLY_CAP, caption_of, load_json
from pipeline.languages import wording
from pipeline.process import run_capped
from pipeline.registry import registrar

__all__ = ["PROVIDERS", "CaptionError", "Provider", "provider", "register"]

Provider = Callable[[CaptionRequest, dict[str, Any]], Caption]
PROVIDERS: dict[str, Provider] = {}
ENTRY_POINTS = "repurpose.captions"

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
    transcript, in the platform's shape and the request's language (its few
    words of its own come from pipeline/languages/captions/<tag>.yaml).
    Deterministic: same input, same copy."""
    words = wording(request.language)
    meta = request.metadata
    title = request.brief_title or _str(meta.get("title")) or request.brand or ""
    about = request.brief_description or _str(meta.get("description"))
    heard = _first_sentences(request.transcript or "", 2)
    if heard:
        heard = words.heard.format(quote=f"{words.quotes[0]}{heard}{words.quotes[1]}")
    found = meta.get("keywords")
    keywords = [str(k) for k in found] if isinstance(found, (list, tuple)) else []
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
        alt = _str(meta.get("description")) or (
            words.photo_alt.format(title=request.brief_title) if request.brief_title else None)
    return Caption(text=body.strip(), hashtags=tuple(tags),
                   alt_text=alt, title=title or None if request.platform in TITLED else None)


@register("command")
def command(request: CaptionRequest, options: dict[str, Any]) -> Caption:
    """Runs options.argv (a list, never a shell string) with the request as JSON on
    stdin; reads {"text", "hashtags", "alt_text", "title"} from stdout (at most
    REPLY_CAP bytes, within options.timeout seconds, default 60)."""
    argv = options.get("argv") or options.get("command")
    if not isinstance(argv, list) or not argv:
        raise CaptionError("captions.options.argv must be a list: a program and its arguments")
    name = clean(str(argv[0]))[:200]
    timeout = number_option(options, "timeout", 60.0, 3600.0, positive=True)
    stdin = json.dumps(request.to_dict(), default=str).encode()
    try:
        done = run_capped([str(a) for a in argv], stdin, timeout, REPLY_CAP)
    except OSError as exc:
        raise CaptionError(f"{name} could not run: {exc.strerror or type(exc).__name__}") \
            from None
    if done.overflow:
        raise CaptionError(f"{name} printed more than {REPLY_CAP // 1024} KB")
    if done.timed_out:
        raise CaptionError(f"{name} took longer than {timeout:g} s")
    if done.returncode != 0:
        raise CaptionError(f"{name} {_exit(done.returncode)}: {_last_line(done.stderr_tail)}")
    what = f"{name} printed no caption JSON"
    return caption_of(load_json(done.stdout, what), what)


def number_option(options: dict[str, Any], key: str, default: float, high: float,
                  positive: bool = False) -> float:
    """options[key] as a number from 0 (exclusive when `positive`) to `high`, or a
    CaptionError naming the setting."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not (0 < value if positive else 0 <= value) or value > high:
        raise CaptionError(f"captions.options.{key} must be a {'positive ' if positive else ''}"
                           f"number of at most {high:g}")
    return float(value)


def _exit(code: int | None) -> str:
    return f"was killed by signal {-code}" if code is not None and code < 0 else f"exited {code}"


def _last_line(stderr: str) -> str:
    lines = clean(stderr).strip().splitlines()
    return lines[-1][:200] if lines else "no output"


def _str(value: Any) -> str:
    """A metadata value as text: metadata comes with the master and may hold anything."""
    return value if isinstance(value, str) else ""


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else f"{text}."


def _first_sentences(text: str, count: int) -> str:
    return " ".join(re.split(r"(?<=[.!?])\s+", text.strip())[:count]).strip()


def _tag(keyword: str) -> str:
    return "#" + "".join(part[:1].upper() + part[1:] for part in re.split(r"\W+", keyword))
