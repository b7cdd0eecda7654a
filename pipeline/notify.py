"""Automation hand-off: a JSON summary of each finished render (a `repurpose
render` run, or one watched file) for a webhook (`--notify URL`) and as JSON
lines on stdout (`--events`). Only the operator sets either: the command line,
or `notify:` in the --config file; never a shoot.yaml (it has no such key).

A summary (schema_version 1):
    {"schema_version": 1, "event": "render.finished" | "watch.finished",
     "at": ISO-8601 UTC, "shoot": the sources rendered (a watched file's path in
     the inbox), "ok": no input failed, "out": OUT, "manifest": OUT/manifest.json,
     "counts": {"rendered": n, "unchanged": n, "failed": n, ...},
     "errors": [{"source", "preset", "error"}],
     "review": [variant paths waiting for a person's decision]}

The webhook gets it as an HTTP POST with a deadline per attempt and a bounded
number of attempts (a 5xx or no answer is tried again after 1, 2, 4 s); what
becomes of it is logged, and it never changes the render's outcome.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline import __version__
from pipeline.errors import printable
from pipeline.trust import redact_url

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
TIMEOUT = 10.0          # seconds an attempt may take
ATTEMPTS = 4            # the first and three retries
MAX_REVIEW = 1000       # variant paths listed; a summary stays small


@dataclass(frozen=True)
class Notifier:
    url: str | None = None
    events: bool = False
    timeout: float = TIMEOUT
    attempts: int = ATTEMPTS
    backoff: float = 1.0        # seconds before the first retry; doubles
    echo: Callable[[str], None] = field(default=lambda line: _print(line))
    say: Callable[[str], None] = field(default=lambda line: log.warning("%s", line))

    def __bool__(self) -> bool:
        return bool(self.url or self.events)

    def send(self, summary: Mapping[str, Any]) -> bool:
        """Print and post `summary`; True when the webhook took it (or there is none)."""
        text = json.dumps(summary, ensure_ascii=False, default=str)
        if self.events:
            self.echo(text)
        if not self.url:
            return True
        return post(self.url, text.encode("utf-8"), self.timeout, self.attempts, self.backoff,
                    self.say)


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def check_url(url: str) -> str:
    """A webhook URL: http or https, with a host. ValueError says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{redact_url(url)!r} is no http(s) URL")
    return url


def post(url: str, data: bytes, timeout: float, attempts: int, backoff: float,
         say: Callable[[str], None]) -> bool:
    shown = redact_url(url)
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"repurpose/{__version__}"})
    opener = urllib.request.build_opener(_NoRedirect)
    wait = backoff
    for attempt in range(1, attempts + 1):
        try:
            with opener.open(request, timeout=timeout) as reply:
                reply.read(65536)
                if 200 <= reply.status < 300:
                    return True
                why = f"answered {reply.status}"
        except urllib.error.HTTPError as exc:
            why = f"answered {exc.code}"
            if exc.code < 500 and exc.code not in (408, 429):
                say(printable(f"notify: {shown} {why}; not tried again"))
                return False
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            why = f"did not answer ({reason})"
        if attempt < attempts:
            say(printable(f"notify: {shown} {why}; trying again in {wait:g} s"))
            time.sleep(wait)
            wait *= 2
        else:
            say(printable(f"notify: {shown} {why}; gave up after {attempts} attempts"))
    return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: the summary goes where the operator said."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def summary(event: str, shoot: Sequence[str], out_dir: Path, report: Any) -> dict[str, Any]:
    """The summary of a finished render (a runner Report): this run's variants as the
    manifest now has them (decisions merged), its errors, what waits for review."""
    mine = {r.path for r in report.results}
    variants = [v for v in report.manifest.get("variants") or []
                if isinstance(v, dict) and v.get("path") in mine]
    counts: dict[str, int] = {}
    for result in report.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return {
        "schema_version": SCHEMA_VERSION, "event": event,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "shoot": list(shoot), "ok": not report.failed, "out": str(out_dir),
        "manifest": str(out_dir / "manifest.json"), "counts": counts,
        "errors": [{"source": e.path, "preset": e.preset, "error": e.message}
                   for e in report.errors],
        "review": waiting(variants)[:MAX_REVIEW],
    }


def failed_summary(event: str, shoot: Sequence[str], out_dir: Path,
                   errors: list[dict[str, Any]], moved_to: str | None) -> dict[str, Any]:
    """The summary of a file that failed before anything was rendered of it."""
    return {"schema_version": SCHEMA_VERSION, "event": event,
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "shoot": list(shoot), "ok": False, "out": str(out_dir),
            "manifest": str(out_dir / "manifest.json"), "counts": {}, "errors": errors,
            "review": [], "moved_to": moved_to}


def waiting(variants: Iterable[Mapping[str, Any]]) -> list[str]:
    """Paths of written variants nobody has decided on since they were written."""
    from pipeline.review.decisions import review_state

    return [str(v.get("path")) for v in variants
            if v.get("status") in ("rendered", "unchanged")
            and review_state(v) in ("pending", "changed")]
