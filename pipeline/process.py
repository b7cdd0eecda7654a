"""Running a program (a caption or speech command): its input on stdin, at most `cap` bytes
of its stdout kept, the last lines of its stderr, one deadline for all of it.

subprocess.run(capture_output=True) would hold everything a program prints in
memory (a runaway program prints gigabytes), and its timeout does not stop a
grandchild that keeps the pipes open. Here each pipe has its own thread, the
program runs in its own process group (POSIX), and the whole group is killed
when it prints too much, overruns the deadline, or the caller is interrupted.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO

from pipeline.ffmpeg import die_with_parent

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
TAIL = 4 * 1024            # bytes of stderr kept: its last lines say why it failed
GRACE = 1.0                # seconds to collect the pipes once the program has ended


@dataclass(frozen=True)
class Finished:
    returncode: int | None     # None when we killed it: see timed_out and overflow
    stdout: bytes
    stderr_tail: str
    timed_out: bool = False
    overflow: bool = False


class _Collector(threading.Thread):
    """Reads one pipe to its end, keeping its first `keep` bytes (or its last,
    for a tail); `over` is set as soon as more than `keep` arrived."""

    def __init__(self, fd: int, keep: int, tail: bool) -> None:
        super().__init__(daemon=True)
        self.fd, self.keep, self.tail = fd, keep, tail
        self.data = bytearray()
        self.over = threading.Event()

    def run(self) -> None:
        try:
            while chunk := os.read(self.fd, CHUNK):
                self.data += chunk
                if len(self.data) > self.keep:
                    if not self.tail:
                        self.over.set()
                        return              # the caller kills the program
                    del self.data[:-self.keep]
        except OSError:
            pass


def run_capped(argv: list[str], stdin: bytes, timeout: float, cap: int) -> Finished:
    """Run `argv` (a list, never a shell) with `stdin`; kill it past `timeout`
    seconds or `cap` bytes of stdout. OSError when the program cannot start."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0,
                            start_new_session=os.name == "posix",
                            preexec_fn=die_with_parent if os.name == "posix" else None)
    assert proc.stdin and proc.stdout and proc.stderr
    out = _Collector(proc.stdout.fileno(), cap, tail=False)
    err = _Collector(proc.stderr.fileno(), TAIL, tail=True)
    feed = threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True)
    threads = (out, err, feed)
    for thread in threads:
        thread.start()
    ended = False
    try:
        ended = _wait(proc, out, time.monotonic() + timeout)
    finally:
        if proc.poll() is None:         # not reaped yet: its pid still names its group
            _kill(proc)
        proc.wait()
        _collect(proc, threads)
    overflow = out.over.is_set()
    return Finished(None if overflow or not ended else proc.returncode, bytes(out.data[:cap]),
                    err.data.decode("utf-8", "replace"), not ended, overflow)


def _wait(proc: subprocess.Popen[bytes], out: _Collector, deadline: float) -> bool:
    """Whether the program ended, or printed too much, before the deadline."""
    while True:
        left = deadline - time.monotonic()
        if out.over.is_set() or proc.poll() is not None:
            return True
        if left <= 0:
            return False
        try:
            proc.wait(min(0.05, left))      # short steps: an overflow is seen within 50 ms
        except subprocess.TimeoutExpired:
            pass


def _collect(proc: subprocess.Popen[bytes], threads: tuple[threading.Thread, ...]) -> None:
    """Wait for the pipe threads; a grandchild that keeps a pipe open is killed
    with its group (which it keeps alive, so the group id is still ours)."""
    for thread in threads:
        thread.join(GRACE)
    if any(thread.is_alive() for thread in threads):
        _kill(proc)
        for thread in threads:
            thread.join(GRACE)
    if any(thread.is_alive() for thread in threads):
        # A descendant left the group and holds a pipe: closing the pipe under a
        # blocked read could hand its descriptor number to another file.
        log.debug("caption program %s left a process holding its pipes", proc.args)
        return
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Write the request and close stdin, so the program sees its end."""
    view = memoryview(data)
    try:
        while view:
            written = pipe.write(view[:CHUNK])
            if not written:
                break
            view = view[written:]
        pipe.close()
    except (OSError, ValueError):
        pass                        # the program does not read its stdin, or is gone


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)     # its own group: its children too
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass                        # the group has ended already
