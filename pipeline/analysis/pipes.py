"""One ffmpeg run whose outputs are pipes, each read as it is written.

The analysis pass gets its frames, sound and scene log this way: nothing of the
decode touches the disk, and what is held in memory is a chunk of each pipe, not
the master, however long the master is. ffmpeg blocks while a pipe is full, so
a slow reader slows it down instead of making it buffer. The child dies with us
(pipeline.ffmpeg.child_options) and is killed on any error or interruption.
"""

from __future__ import annotations

import fcntl
import os
import selectors
import subprocess
from collections.abc import Callable, Sequence
from typing import Protocol

from pipeline.ffmpeg import (
    DISK_WORDS,
    STDERR_TAIL_LINES,
    FfmpegDied,
    FfmpegError,
    FfmpegWriteError,
    child_options,
    diagnose,
)

CHUNK = 1 << 20            # most bytes taken from one pipe at a time
PIPE_BYTES = 1 << 20       # roomier pipes let ffmpeg decode ahead while a frame is analysed
STDERR_KEEP = 1 << 13      # only the end of what ffmpeg says is kept: a damaged master
                           # can make it say a line for every frame


class Sink(Protocol):
    """Takes one pipe's bytes as they come."""

    def feed(self, data: bytes) -> None:
        """More bytes, in order."""

    def close(self) -> None:
        """The pipe ended (ffmpeg closed it, or exited)."""


def run_piped(build: Callable[[Sequence[str]], list[str]], sinks: Sequence[Sink],
              label: str) -> None:
    """Run the ffmpeg command that `build` makes from one `pipe:N` output URL per
    sink, feeding each sink its pipe; FfmpegError when ffmpeg fails."""
    pairs = [os.pipe() for _ in sinks]
    reads = [r for r, _ in pairs]
    try:
        writes = [w for _, w in pairs]
        for fd in reads:
            _widen(fd)
        argv = build([f"pipe:{fd}" for fd in writes])
        try:
            child = _start(argv, writes, label)
        finally:
            for fd in writes:       # only ffmpeg's copies stay open: its exit ends every pipe
                os.close(fd)
        said = _pump(child, dict(zip(reads, sinks, strict=True)))
    finally:
        for fd in reads:
            os.close(fd)
    if child.returncode != 0:
        raise _failure(argv, child.returncode, said, label)


def _widen(fd: int) -> None:
    """Ask for a larger pipe buffer where Linux allows it; the default works too."""
    resize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if resize is None:
        return
    try:
        fcntl.fcntl(fd, resize, PIPE_BYTES)
    except OSError:
        pass


def _start(argv: list[str], writes: list[int], label: str) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                pass_fds=writes, **child_options())
    except OSError as exc:
        raise FfmpegError(f"cannot start ffmpeg: {exc}", argv=argv, path=label,
                          hint="set REPURPOSE_FFMPEG to an ffmpeg binary, or reinstall "
                               "imageio-ffmpeg") from exc


def _pump(child: subprocess.Popen[bytes], sinks: dict[int, Sink]) -> bytes:
    """Feed every sink until ffmpeg closes every pipe; returns the end of its stderr."""
    assert child.stderr is not None
    err = child.stderr.fileno()
    said = b""
    try:
        with selectors.DefaultSelector() as selector:
            for fd in (*sinks, err):
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                for key, _ in selector.select():
                    data = os.read(key.fd, CHUNK)
                    if key.fd == err:
                        said = (said + data)[-STDERR_KEEP:]
                    elif data:
                        sinks[key.fd].feed(data)
                    if not data:
                        selector.unregister(key.fd)
                        if key.fd in sinks:
                            sinks[key.fd].close()
        child.wait()
    except BaseException:
        child.kill()
        child.wait()
        raise
    finally:
        child.stderr.close()
    return said


def _failure(argv: list[str], code: int, said: bytes, label: str) -> FfmpegError:
    """The error run_ffmpeg would raise for the same exit and stderr."""
    lines = said.decode("utf-8", "replace").strip().splitlines()
    tail = "\n".join(lines[-STDERR_TAIL_LINES:])
    kind = (FfmpegDied if code < 0 else FfmpegWriteError
            if any(words in tail for words in DISK_WORDS) else FfmpegError)
    last = next((line for line in reversed(lines) if line.strip()), "no output")
    return kind(f"ffmpeg failed (exit {code}): {last}", argv=argv, stderr_tail=tail,
                path=label, hint=diagnose(tail))
