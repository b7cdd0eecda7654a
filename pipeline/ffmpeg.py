"""The ffmpeg binary, and running it so that no child outlives its job.

The binary comes from the imageio-ffmpeg wheel unless REPURPOSE_FFMPEG names
another. Failures raise FfmpegError with the argv, the tail of stderr and a
diagnosis of the likely cause. On Linux every child started here dies with the
process that started it, even when that process is killed with SIGKILL
(die_with_parent): a killed render never leaves an ffmpeg writing behind it.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from pipeline.errors import ProcessDied, RenderError, WriteError
from pipeline.progress import report, reporting

STDERR_TAIL_LINES = 15
# Containers a master or a sound may come in, and the one protocol it is read by. Any
# other demuxer (HLS or DASH playlists, concat lists, image sequences) could make FFmpeg
# read other files of this machine; a file named "http:..." is never a URL.
DEMUXERS = "mov,matroska,avi,mpegts,mpeg,flv,mxf,asf,ogg,mp3,wav,w64,flac,aac,aiff,caf,dv"
CONTENT_INPUT = {"format_whitelist": DEMUXERS, "protocol_whitelist": "file"}


def content_input(path: object) -> list[str]:
    """The ffmpeg arguments that open a file that came with the masters: `-i` last."""
    return [arg for key, value in CONTENT_INPUT.items() for arg in (f"-{key}", value)] + [
        "-i", str(Path(str(path)).absolute())]
PR_SET_PDEATHSIG = 1        # <linux/prctl.h>
_COMPONENT = re.compile(r"^(\[[^\]]* @ 0x[0-9a-f]+\] ?)+")
GLOBAL_ARGS = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
_DIAGNOSES = (
    ("No space left on device", "the output disk is full; free space and render again"),
    ("Permission denied", "the output folder is not writable; check --out"),
    ("Invalid data found", "the master is damaged; export or copy it again"),
    ("Error while opening encoder", "the preset's encoder settings are not possible "
                                    "for this size or frame rate; check h264_level"),
    ("Cannot allocate memory", "out of memory; render with --jobs 1"),
)


class FfmpegError(RenderError):
    """ffmpeg failed; carries the command and the end of what it said."""

    def __init__(self, message: str, *, argv: Sequence[str] = (), stderr_tail: str = "",
                 path: str | None = None, preset: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, path=path, preset=preset, hint=hint)
        self.argv = list(argv)
        self.stderr_tail = stderr_tail

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild, (type(self), self.message, self.argv, self.stderr_tail, self.path,
                           self.preset, self.hint))


class FfmpegWriteError(FfmpegError, WriteError):
    """ffmpeg could not write its output: the disk is full or read-only."""


class FfmpegDied(FfmpegError, ProcessDied):
    """ffmpeg was killed by a signal (out of memory, or by someone)."""


DISK_WORDS = ("No space left on device", "Read-only file system", "Disk quota exceeded")


def _rebuild(cls: type[FfmpegError], message: str, argv: list[str], tail: str,
             path: str | None, preset: str | None, hint: str | None) -> FfmpegError:
    return cls(message, argv=argv, stderr_tail=tail, path=path, preset=preset, hint=hint)


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    override = os.environ.get("REPURPOSE_FFMPEG")
    if override:
        return override
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@lru_cache(maxsize=1)
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, or None where there is none (not Linux, no libc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent goes away (Linux's
    PR_SET_PDEATHSIG); a no-op elsewhere. Use it as `preexec_fn` of a child, or
    call it at the start of a worker process.

    The signal comes when the parent *thread* that started the child exits, so
    children must be started from a thread that lives as long as they should
    (every ffmpeg here is started from its job's main thread)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def child_options() -> dict[str, Any]:
    """What every ffmpeg child is started with: no stdin, and it dies with us.
    libc is looked up here, in the parent: the child, between fork and exec,
    then only makes the one system call."""
    _prctl()
    return {"stdin": subprocess.DEVNULL, "preexec_fn": die_with_parent}


def compile_argv(node: Any, exe: str) -> list[str]:
    """The argv of an ffmpeg-python graph, with the quiet, non-interactive options."""
    argv: list[str] = node.compile(cmd=exe)
    return [argv[0], *GLOBAL_ARGS, *argv[1:]]


def run_ffmpeg(argv: Sequence[str], label: str, seconds: float | None = None) -> None:
    """Run one ffmpeg command to the end; on any interruption the child is killed.
    With `seconds` (the length of media it will write) it reports its progress."""
    argv = list(argv)
    watch = bool(seconds) and reporting()
    if watch:
        argv[1:1] = ["-progress", "pipe:1", "-stats_period", "0.25", "-nostats"]
    with tempfile.TemporaryFile() as said:
        try:
            child = subprocess.Popen(argv, stdout=subprocess.PIPE if watch else subprocess.DEVNULL,
                                     stderr=said, **child_options())
        except OSError as exc:
            raise FfmpegError(f"cannot start ffmpeg: {exc}", argv=argv, path=label,
                              hint="set REPURPOSE_FFMPEG to an ffmpeg binary, or reinstall "
                                   "imageio-ffmpeg") from exc
        try:
            if watch and child.stdout is not None and seconds:
                _follow(child.stdout, seconds)
            code = child.wait()
        except BaseException:
            child.kill()
            child.wait()
            raise
        finally:
            if child.stdout is not None:
                child.stdout.close()
        said.seek(0)
        stderr = said.read()
    if code != 0:
        tail = "\n".join(stderr.decode("utf-8", "replace").strip().splitlines()[
            -STDERR_TAIL_LINES:])
        kind = (FfmpegDied if code < 0 else FfmpegWriteError
                if any(words in tail for words in DISK_WORDS) else FfmpegError)
        raise kind(f"ffmpeg failed (exit {code}): {_last_error(tail)}",
                   argv=argv, stderr_tail=tail, path=label, hint=diagnose(tail))


def _follow(lines: IO[bytes], seconds: float) -> None:
    """Report ffmpeg's `-progress` output (out_time_us=...) as a share of `seconds`."""
    for line in lines:
        key, _, value = line.partition(b"=")
        if key == b"out_time_us" and value.strip().isdigit():
            report(int(value) / 1e6 / seconds)


def diagnose(stderr: str) -> str:
    for needle, advice in _DIAGNOSES:
        if needle in stderr:
            return advice
    return "run with REPURPOSE_DEBUG=1 to see ffmpeg's full command and output"


def first_error(tail: str) -> str:
    """The first line ffmpeg said, without its "[component @ 0x...]" prefix: where a
    filter or an encoder refuses its settings, the cause (what follows is ffmpeg
    giving up because of it)."""
    for line in tail.splitlines():
        text = _COMPONENT.sub("", line).strip()
        if text:
            return text
    return "no output"


def _last_error(tail: str) -> str:
    lines = [line for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
