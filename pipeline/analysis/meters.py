"""What the analysis pass measures, one chunk of a pipe at a time.

Each meter is a pipes.Sink: it takes bytes as ffmpeg writes them, keeps only
what is left of an unfinished frame or step, and holds at most `limit` results,
so a master that runs longer than it said costs no more than one that does not.
The arithmetic is exact (integer sums of 8- and 16-bit samples), so a value
does not depend on how the bytes were chunked.
"""

from __future__ import annotations

import math
import re
import wave
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pipeline.analysis.subjects import Subject
from pipeline.analysis.track import Tracker

_SCENE = re.compile(rb"lavfi\.scd\.time=([\d.]+)")
AHEAD = 8                  # frames handed to the detector thread and not yet searched
MAX_LINE = 1024            # a scene log line is about 30 bytes: anything longer is not one


class Records:
    """Whole records of `size` bytes from a byte stream: a partial record at the end
    is dropped (ffmpeg writes one only when it is cut short)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rest = b""

    def split(self, data: bytes) -> bytes:
        """The whole records that `data` completes; the remainder waits."""
        data = self._rest + data
        whole = len(data) - len(data) % self.size
        self._rest = data[whole:]
        return data[:whole]


class Motion:
    """Mean absolute change (0-1) between consecutive greyscale frames; 0 for the first."""

    def __init__(self, size: tuple[int, int], limit: int) -> None:
        self.width, self.height = size
        self.limit = limit
        self.values: list[float] = []
        self._records = Records(self.width * self.height)
        self._last: np.ndarray | None = None

    def feed(self, data: bytes) -> None:
        block = self._records.split(data)
        room = self.limit - len(self.values)
        if not block or room <= 0:
            return
        frames = np.frombuffer(block, dtype=np.uint8).reshape(-1, self.height, self.width)
        frames = frames[:room]
        if self._last is None:
            self.values.append(0.0)
        else:
            frames = np.concatenate((self._last[None], frames))
        if len(frames) > 1:
            # Integer sums are exact, so each value is the sum over the count, rounded
            # once: the same number whether frames come one by one or all together.
            change = np.abs(np.diff(frames.astype(np.int16), axis=0)).sum(axis=(1, 2),
                                                                         dtype=np.int64)
            count = self.width * self.height
            self.values.extend(round(float(v) / count / 255, 5) for v in change)
        self._last = frames[-1].copy()

    def close(self) -> None:
        self._last = None


class Looks:
    """Subjects in each greyscale frame, in order, by one Tracker (full searches
    now and then, faces followed in between). It runs in a thread of its own
    (OpenCV lets go of the GIL), at most AHEAD frames behind the pipe, so ffmpeg
    goes on decoding while a frame is searched; use it as a context manager."""

    def __init__(self, size: tuple[int, int], limit: int) -> None:
        self.width, self.height = size
        self.limit = limit
        self.samples: list[tuple[Subject, ...]] = []
        self._records = Records(self.width * self.height)
        self.tracker = Tracker()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="repurpose-detect")
        self._pending: deque[Future[list[Subject]]] = deque()

    def feed(self, data: bytes) -> None:
        block = self._records.split(data)
        frame = self.width * self.height
        for at in range(0, len(block), frame):
            if len(self.samples) + len(self._pending) >= self.limit:
                return
            picture = np.frombuffer(block, dtype=np.uint8, count=frame, offset=at)
            self._pending.append(self._pool.submit(
                self.tracker, picture.reshape(self.height, self.width)))
            while len(self._pending) > AHEAD:
                self._collect()

    def close(self) -> None:
        while self._pending:
            self._collect()

    def _collect(self) -> None:
        self.samples.append(tuple(self._pending.popleft().result()))

    def __enter__(self) -> Looks:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class Loudness:
    """RMS (0-1) of 16-bit mono samples over each `per_step` of them; the last step
    counts as if padded with silence."""

    def __init__(self, per_step: int, limit: int) -> None:
        self.per_step = per_step
        self.limit = limit
        self.values: list[float] = []
        self._records = Records(2)
        self._sum = 0                  # squares of the unfinished step, exactly
        self._filled = 0

    def feed(self, data: bytes) -> None:
        squares = np.frombuffer(self._records.split(data), dtype="<i2").astype(np.int64) ** 2
        if self._filled:
            head = squares[: self.per_step - self._filled]
            self._add(int(head.sum()), head.size)
            squares = squares[head.size:]
        whole = squares.size - squares.size % self.per_step
        for total in squares[:whole].reshape(-1, self.per_step).sum(axis=1):
            self._add(int(total), self.per_step)
        tail = squares[whole:]
        self._add(int(tail.sum()), tail.size)

    def close(self) -> None:
        if self._filled:
            self._emit()

    def _add(self, total: int, count: int) -> None:
        self._sum += total
        self._filled += count
        if self._filled == self.per_step:
            self._emit()

    def _emit(self) -> None:
        if len(self.values) < self.limit:
            # The mean of (s / 32768)^2, exact until the one division: the sum of
            # squares scaled by a power of two loses nothing.
            mean = float(self._sum) * 2.0**-30 / self.per_step
            self.values.append(round(math.sqrt(mean), 5))
        self._sum = self._filled = 0


class SceneLog:
    """Shot changes from ffmpeg's metadata log (`lavfi.scd.time=...` lines), in
    milliseconds after the start: the first of each `quantum` ms, at most `limit`."""

    def __init__(self, quantum: int, limit: int) -> None:
        self.quantum = quantum
        self.limit = limit
        self._first: dict[int, int] = {}
        self._line = b""

    def feed(self, data: bytes) -> None:
        *lines, rest = (self._line + data).split(b"\n")
        self._line = rest if len(rest) <= MAX_LINE else b""
        for line in lines:
            self._take(line)

    def close(self) -> None:
        self._take(self._line)
        self._line = b""

    def shots(self) -> tuple[int, ...]:
        return tuple(sorted(self._first.values()))

    def _take(self, line: bytes) -> None:
        found = _SCENE.search(line)
        if found is None:
            return
        try:
            at = round(float(found[1]) * 1000)
        except ValueError:
            return
        bucket = at // self.quantum
        if at > 0 and (bucket in self._first or len(self._first) < self.limit):
            self._first[bucket] = min(at, self._first.get(bucket, at))


class Recording:
    """Passes 16-bit mono samples on to `inner` and keeps them as a WAV file at
    `rate`, for speech-to-text: the analysis pass's decode serves both."""

    def __init__(self, inner: Loudness, target: Path, rate: int) -> None:
        self.inner = inner
        self._records = Records(2)
        self._file = wave.open(str(target), "wb")  # noqa: SIM115 - closed by close()
        self._file.setnchannels(1)
        self._file.setsampwidth(2)
        self._file.setframerate(rate)

    def feed(self, data: bytes) -> None:
        self._file.writeframesraw(self._records.split(data))
        self.inner.feed(data)

    def close(self) -> None:
        self._file.close()          # writes the header's lengths
        self.inner.close()
