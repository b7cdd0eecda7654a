"""Loudness: measure with ffmpeg's EBU R128 meter, normalise with a fixed gain.

A variant's audio is brought to its target integrated loudness by one
constant gain (measured on exactly the kept segment) and a look-ahead limiter
at the true-peak ceiling, with its delay compensated. This keeps the sound's
dynamics and, unlike ffmpeg's loudnorm filter, never shifts it against the
picture.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.ffmpeg import child_options, content_input, ffmpeg_exe

_INTEGRATED = re.compile(r"Integrated loudness:\s+I:\s+(-?[\d.]+|-inf) LUFS")
_PEAK = re.compile(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS")
SILENCE_LUFS = -70.0
LIMITER_MARGIN_DB = 0.5      # the limiter works on samples; true peaks run a little higher


@dataclass(frozen=True)
class Measured:
    integrated_lufs: float     # -inf for silence
    true_peak_dbtp: float


@dataclass(frozen=True)
class Gain:
    db: float
    limit: float               # the limiter's ceiling, linear (0.0625 to 1)


def measure(path: Path, start_ms: int | None = None, end_ms: int | None = None,
            stream: int = 0, through: Gain | None = None) -> Measured | None:
    """Integrated loudness and true peak of one audio stream (or a segment of it);
    `through`: as it sounds after that gain and limiter."""
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats"]
    if start_ms is not None and end_ms is not None:
        argv += ["-ss", f"{start_ms / 1000:.3f}", "-t", f"{(end_ms - start_ms) / 1000:.3f}"]
    argv += [*content_input(path), "-map", f"0:a:{stream}", "-vn",
             "-af", (_chain(through) + "," if through else "") + "ebur128=peak=true:framelog=quiet",
             "-f", "null", "-"]
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
                          **child_options())
    text = done.stderr.decode("utf-8", "replace")
    found_i, found_tp = _INTEGRATED.search(text), _PEAK.search(text)
    if done.returncode != 0 or not found_i or not found_tp:
        return None
    return Measured(float(found_i.group(1)), float(found_tp.group(1)))


def gain_for(measured: Measured | None, target_lufs: float, ceiling_dbtp: float) -> Gain:
    """The constant gain that reaches the target, and the limiter ceiling."""
    limit = min(1.0, max(0.0625, 10 ** ((ceiling_dbtp - LIMITER_MARGIN_DB) / 20)))
    if measured is None or not math.isfinite(measured.integrated_lufs) or (
            measured.integrated_lufs <= SILENCE_LUFS):
        return Gain(0.0, limit)
    return Gain(round(target_lufs - measured.integrated_lufs, 2), limit)


MAKEUP_ROUNDS = 3            # meter runs through the limiter, at most
MAX_MAKEUP_DB = 8.0          # loudness given back for what the limiter took, at most


def settled(path: Path, measured: Measured | None, target_lufs: float, ceiling_dbtp: float,
            start_ms: int | None = None, end_ms: int | None = None) -> Gain:
    """gain_for, and for sound the limiter will hold back (quiet speech with loud
    peaks: a phone clip, a synthetic voice), the loudness it costs, measured
    through the same gain and limiter and given back (a secant step per round),
    with the ceiling lowered where heavy limiting lets true peaks through.
    Without this a -22 LUFS voice peaking at -0.5 dBFS ends 2-3 LU short."""
    gain = gain_for(measured, target_lufs, ceiling_dbtp)
    if measured is None or gain.db == 0.0 or \
            measured.true_peak_dbtp + gain.db <= 20 * math.log10(gain.limit):
        return gain                      # silence, or the limiter never acts
    first, before = gain.db, None
    for _ in range(MAKEUP_ROUNDS):
        after = measure(path, start_ms, end_ms, through=gain)
        if after is None or not math.isfinite(after.integrated_lufs):
            break
        short, over = target_lufs - after.integrated_lufs, after.true_peak_dbtp - ceiling_dbtp
        if abs(short) < 0.3 and over <= 0:
            break
        slope = 1.0                      # loudness per dB of gain: 1 until limiting is seen
        if before is not None and gain.db != before[0]:
            slope = min(1.0, max(0.1, (after.integrated_lufs - before[1])
                                 / (gain.db - before[0])))
        before = (gain.db, after.integrated_lufs)
        limit = gain.limit * 10 ** (-(over + 0.1) / 20) if over > 0 else gain.limit
        gain = Gain(round(min(gain.db + short / slope, first + MAX_MAKEUP_DB), 2),
                    max(0.0625, limit))
    return gain


def _chain(gain: Gain) -> str:
    """The gain and limiter of a variant's sound, as the render applies them
    (pipeline/render/video.py)."""
    return f"volume={gain.db:.2f}dB,alimiter=limit={gain.limit:.4f}:level=0:latency=1"
