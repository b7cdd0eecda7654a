"""Where cuts fall, from a master's analysis: the liveliest window for `best`,
and every cut moved, within a small tolerance, to a shot change or else to
the quietest moment nearby, so that no cut lands mid-sound when it need not.

Pure functions over the analysis signals; times are integer milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.analysis import Analysis

SNAP_MS = 2000             # a cut moves at most this far (and at most a tenth of its part)
DISTANCE_WEIGHT = 0.15     # how much a quiet moment farther away must beat a nearer one


@dataclass(frozen=True)
class Cut:
    at: int                # milliseconds of the master
    reason: str            # "shot change", "quiet moment" or "" when it stayed where planned


class Signals:
    """The analysis as normalised arrays: activity (motion plus sound) and
    loudness, each 0-1 relative to the master's own busy moments, one value per
    `step` ms (the analysis's own: longer masters are sampled more sparsely)."""

    def __init__(self, analysis: Analysis) -> None:
        self.shots = analysis.shots
        self.step = analysis.step_ms
        motion = _normalise(np.asarray(analysis.motion, dtype=np.float64))
        sound = (_normalise(np.asarray(analysis.audio_rms, dtype=np.float64))
                 if analysis.audio_rms else None)
        steps = max(len(motion), len(sound) if sound is not None else 0, 1)
        self.sound = _fit(sound, steps) if sound is not None else None
        self.activity = _fit(motion, steps) + (self.sound if self.sound is not None else 0)

    def best_start(self, start: int, end: int, length: int) -> int:
        """The start of the `length` ms window in [start, end] with the most going on
        (the earliest of equals)."""
        step = self.step
        first, last = start // step, (end - length) // step
        span = max(1, length // step)
        if last <= first:
            return start
        totals = np.concatenate(([0.0], np.cumsum(_fit(self.activity, last + span))))
        scores = totals[first + span: last + span + 1] - totals[first: last + 1]
        return max(start, min(end - length, (first + int(np.argmax(scores))) * step))

    def snap(self, nominal: int, low: int, high: int) -> Cut:
        """The best place for a cut planned at `nominal`, within [low, high]: the
        nearest shot change, else the quietest moment (nearer wins a close call)."""
        if low >= high:
            return Cut(nominal, "")
        shots = [t for t in self.shots if low <= t <= high]
        if shots:
            return Cut(min(shots, key=lambda t: (abs(t - nominal), t)), "shot change")
        if self.sound is None:
            return Cut(nominal, "")
        reach = max(high - nominal, nominal - low, 1)
        candidates = range(-(-low // self.step) * self.step, high + 1, self.step)
        best = min(candidates, default=nominal,
                   key=lambda t: self._level(t) + DISTANCE_WEIGHT * abs(t - nominal) / reach)
        if self._level(best) >= self._level(nominal):
            return Cut(nominal, "")
        return Cut(best, "quiet moment")

    def _level(self, at: int) -> float:
        """Sound around a cut: the steps just before and just after it."""
        assert self.sound is not None
        index = at // self.step
        around = self.sound[max(0, index - 1): index + 1]
        return float(around.mean()) if around.size else 0.0


def tolerance(part_ms: int) -> int:
    return min(SNAP_MS, part_ms // 10)


def _normalise(values: np.ndarray) -> np.ndarray:
    """0-1 relative to the 95th percentile, so one loud bang does not flatten the rest."""
    if values.size == 0:
        return values
    top = float(np.percentile(values, 95))
    if top <= 1e-6:
        top = float(values.max())
    return np.clip(values / top, 0, 1) if top > 1e-6 else np.zeros_like(values)


def _fit(values: np.ndarray, steps: int) -> np.ndarray:
    if values.size >= steps:
        return values[:steps]
    return np.concatenate((values, np.zeros(steps - values.size)))
