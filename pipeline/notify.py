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

import http.client
import json
import logging
import queue
import sys
import threading
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
        """Print and post `summary`; True when the webhook took it (or there is none).
        Never raises: a hand-off that fails is a line on stderr, nothing more."""
        try:
            # ASCII JSON: a name that is no UTF-8 (a lone surrogate) stays an escape.
            text = json.dumps(summary, ensure_ascii=True, default=str)
            if self.events:
                self.echo(text)
            if not self.url:
                return True
            return post(self.url, text.encode("ascii"), self.timeout, self.attempts,
                        self.backoff, self.say)
        except Exception as exc:  # noqa: BLE001 - the render's outcome never depends on it
            self.say(printable(f"notify: not sent ({type(exc).__name__}: {exc})"))
            return False


class Sending:
    """Summaries posted one after another by a thread of their own, so a slow
    webhook never holds up the watcher's next file. `close` waits for what is
    queued (each post is bounded by its attempts and deadlines)."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self.thread.start()

    def send(self, summary: Mapping[str, Any]) -> None:
        self.queue.put(summary)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            self.notifier.send(item)


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def check_url(url: str) -> str:
    """A webhook URL: http or https, with a host. ValueError says what is wrong."""
    try:
        parts = urlsplit(url)
        parts.port      # noqa: B018 - raises for a port that is no number or out of range
    except ValueError as exc:
        raise ValueError(f"{shown(url)!r} is no usable URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{shown(url)!r} is no http(s) URL")
    return url


def shown(url: str) -> str:
    """A webhook as it may be printed: scheme, host and port only. Slack, Discord,
    Teams and Zapier hooks carry their secret in the path."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "<unparsable URL>"
    return f"{parts.scheme}://{host}/..."


def post(url: str, data: bytes, timeout: float, attempts: int, backoff: float,
         say: Callable[[str], None]) -> bool:
    """POST `data`, each attempt within `timeout` seconds all told (a server that
    trickles its answer is cut off too), up to `attempts` times."""
    where = shown(url)
    wait = backoff
    for attempt in range(1, attempts + 1):
        outcome = _attempt(url, data, timeout)
        if outcome is None:
            return True
        why, again = outcome
        if not again:
            say(printable(f"notify: {where} {why}; not tried again"))
            return False
        if attempt < attempts:
            say(printable(f"notify: {where} {why}; trying again in {wait:g} s"))
            time.sleep(wait)
            wait *= 2
        else:
            say(printable(f"notify: {where} {why}; gave up after {attempts} attempts"))
    return False


def _attempt(url: str, data: bytes, timeout: float) -> tuple[str, bool] | None:
    """One POST in a thread of its own, waited for `timeout` seconds at most: None
    when the webhook took it, else why not and whether to try again."""
    done: list[tuple[str, bool] | None] = []

    def go() -> None:
        done.append(_request(url, data, timeout))

    worker = threading.Thread(target=go, name="notify-post", daemon=True)
    worker.start()
    worker.join(timeout)
    if not done:        # the thread ends at its socket's own timeout, unseen
        return f"did not answer within {timeout:g} s", True
    return done[0]


def _request(url: str, data: bytes, timeout: float) -> tuple[str, bool] | None:
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"repurpose/{__version__}"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as reply:
            reply.read(65536)
            if 200 <= reply.status < 300:
                return None
            return f"answered {reply.status}", False
    except urllib.error.HTTPError as exc:
        return f"answered {exc.code}", exc.code >= 500 or exc.code in (408, 429)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        return f"did not answer ({getattr(exc, 'reason', exc)})", True
    except ValueError as exc:       # a URL urllib cannot use: trying again changes nothing
        return f"cannot be used ({exc})", False


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
