"""One HTTP POST for a caption provider, bounded in time and in size.

One deadline covers the whole call: connecting, the reply's headers, a body
trickled a byte at a time, every retry and the backoff between them.
urllib's own timeout is per socket operation, so a server that sends a byte a
second never trips it. The approach is socket-level: when a connection's
socket is made it is dup()ed, and a timer shuts the duplicate down at the
deadline; shutdown acts on the connection, not on one descriptor, so it wakes
any read blocked on it, TLS handshake and headers included. Each body read is
one recv (read1, never "loop until N bytes"), and the deadline is also
checked between reads. Only name resolution is outside it (getaddrinfo cannot
be interrupted); the per-operation timeout still bounds each connect and read.

Redirects are refused: urllib would carry the Authorization header to the
new host. Proxies from the environment are honoured, as urllib does.
Failures come back as CaptionError values rather than raised from inside an
except block, so no chained exception (an HTTPError knows the full URL,
query and all) ever travels with them.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import Message
from typing import Any

from pipeline.captions.model import CaptionError

CHUNK = 64 * 1024


class Deadline:
    """A point in time; `left` is what remains of it, in seconds."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


class Failed(CaptionError):
    """One attempt failed; `retry` says whether another may succeed and
    `wait` what the server asked for (Retry-After), if anything."""

    def __init__(self, message: str, retry: bool = False, wait: float | None = None) -> None:
        super().__init__(message)
        self.retry, self.wait = retry, wait


class _Watch:
    """Shuts every socket of one call down when its deadline passes."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.fired = False
        self._armed: list[tuple[threading.Timer, socket.socket]] = []

    def arm(self, sock: socket.socket) -> socket.socket:
        twin = sock.dup()           # ours to shut and close, whatever http.client does
        timer = threading.Timer(max(0.0, self.deadline.left()), self._cut, (twin,))
        timer.daemon = True
        self._armed.append((timer, twin))
        timer.start()
        return sock

    def _cut(self, twin: socket.socket) -> None:
        self.fired = True
        try:
            twin.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass                    # already closed: nothing left to wake

    def close(self) -> None:
        for timer, twin in self._armed:
            timer.cancel()
            timer.join()
            twin.close()


def post(url: str, body: bytes, headers: Mapping[str, str], deadline: Deadline, cap: int,
         shown: str) -> bytes | Failed:
    """The reply body (at most `cap` bytes) of one POST, or why there is none.
    `shown` is how the URL may appear in a message (redacted by the caller)."""
    if deadline.left() <= 0:
        return _late(shown, deadline)
    watch = _Watch(deadline)
    opener = urllib.request.build_opener(*_handlers(watch), _NoRedirect())
    call = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    outcome: bytes | Failed
    try:
        with opener.open(call, timeout=deadline.left()) as response:
            outcome = _read(response, cap, deadline, watch, shown)
    except urllib.error.HTTPError as exc:
        outcome = Failed(f"{shown} answered HTTP {exc.code}", exc.code in RETRY_STATUS,
                         _retry_after(exc.headers))
        exc.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        outcome = (_late(shown, deadline) if watch.fired or deadline.left() <= 0 else
                   Failed(f"{shown} could not be reached: {_reason(exc)}", retry=True))
    finally:
        watch.close()
    return outcome


RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def _read(response: Any, cap: int, deadline: Deadline, watch: _Watch,
          shown: str) -> bytes | Failed:
    declared = str(response.headers.get("Content-Length") or "")
    if declared.isdigit() and int(declared) > cap:
        return _too_large(shown, cap)
    chunks, size = [], 0
    while True:
        if deadline.left() <= 0:
            return _late(shown, deadline)
        chunk = response.read1(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > cap:
            return _too_large(shown, cap)
        chunks.append(chunk)
    if watch.fired:                 # that end of file was the deadline's doing
        return _late(shown, deadline)
    return b"".join(chunks)


def _late(shown: str, deadline: Deadline) -> Failed:
    return Failed(f"{shown} did not answer within {deadline.seconds:g} s")


def _too_large(shown: str, cap: int) -> Failed:
    return Failed(f"{shown} answered more than {cap // 1024} KB")


def _reason(exc: BaseException) -> str:
    reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    text = (reason.strerror if isinstance(reason, OSError) and reason.strerror else
            str(reason)) or type(reason).__name__
    return text[:200]


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None                 # an HTTP date: the usual backoff will do


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect becomes an HTTP 3xx failure instead of a second request."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _handlers(watch: _Watch) -> tuple[urllib.request.BaseHandler, ...]:
    """urllib's HTTP and HTTPS handlers, whose connections arm `watch` on
    their socket before anything (TLS included) is read from it."""

    def create(address: tuple[str, int], timeout: Any = None,
               source_address: Any = None) -> socket.socket:
        return watch.arm(socket.create_connection(address, timeout, source_address))

    class Plain(http.client.HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = create     # http.client's seam for making the socket

    class Secure(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = create

    class PlainHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Plain, req)

    class SecureHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Secure, req)

    return PlainHandler(), SecureHandler()
