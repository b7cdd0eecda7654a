"""Camera paths for video crops: per shot, a window that stays still while the
subject stays inside it, and otherwise pans smoothly after it.

Pure functions over the analysis (subjects every `step_ms`, the analysis's
detect_ms, and shot changes).
A path is a list of keyframes (master milliseconds, left, top) in master
pixels, linear between keyframes; two keyframes at the same moment are a hard
cut, which only happens at a shot change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.analysis.subjects import Subject
from pipeline.model import Box
from pipeline.planning.reframe import EYE_LINE, UPPER_THIRD, needed, window_size

SMOOTH_S = 0.6            # Gaussian smoothing of the subject's track (sigma, seconds)
DEAD_ZONE = 0.08          # the subject drifts this far (window widths) before the camera moves
MAX_SPEED = 0.6           # largest pan, in window widths (or heights) per second
Keyframe = tuple[int, float, float]


@dataclass(frozen=True)
class Pin:
    """A point the shoot fixes for a time range (master milliseconds)."""

    start: int
    end: int
    point: tuple[float, float]      # fractions of the frame


@dataclass(frozen=True)
class CameraPath:
    size: tuple[float, float]       # window width and height, master pixels
    keyframes: tuple[Keyframe, ...]
    framing: str

    def at(self, ms: float) -> tuple[float, float]:
        """The window's left and top at `ms` (the later keyframe wins at a cut)."""
        frames = self.keyframes
        if ms <= frames[0][0]:
            return frames[0][1], frames[0][2]
        for (t0, x0, y0), (t1, x1, y1) in zip(frames, frames[1:], strict=False):
            if t0 <= ms < t1:
                share = (ms - t0) / (t1 - t0)
                return x0 + (x1 - x0) * share, y0 + (y1 - y0) * share
        return frames[-1][1], frames[-1][2]

    def box(self, ms: float) -> Box:
        left, top = self.at(ms)
        return Box(left, top, left + self.size[0], top + self.size[1])


def camera_path(width: int, height: int, target: float, span: tuple[int, int],
                samples: Sequence[Sequence[Subject]], step_ms: int, shots: Sequence[int],
                pins: Sequence[Pin] = (), even: bool = True) -> CameraPath | None:
    """The crop path over `span` (master ms), or None when no subject was seen
    (the caller then crops on the centre, as before)."""
    size = window_size(width, height, target, even)
    start, end = span
    cuts = [start, *(s for s in shots if start < s < end), end]
    keyframes: list[Keyframe] = []
    seen = False
    for a, b in zip(cuts, cuts[1:], strict=False):
        first, last = a // step_ms, max(a // step_ms + 1, -(-b // step_ms))
        shot = [samples[i] if i < len(samples) else () for i in range(first, last)]
        wanted = [_wanted(width, height, size, target, subjects) for subjects in shot]
        for pin in pins:
            for k in range(len(wanted)):
                if pin.start <= (first + k) * step_ms < pin.end:
                    x, y = pin.point
                    left, top = x * width - size[0] / 2, y * height - size[1] / 2
                    wanted[k] = Want(left, top, (left, left), (top, top))   # held exactly
        if any(w is not None for w in wanted):
            seen = True
        times = [min(max((first + k) * step_ms, a), b) for k in range(len(shot))]
        keyframes += _shot_path(width, height, size, times, wanted, a, b, step_ms, even)
    if not seen:
        return None
    faces = max((sum(1 for s in sample if s.kind == "face") for sample in samples), default=0)
    framing = (f"follows {faces} face{'s' if faces > 1 else ''}" if faces
               else "follows the most salient region")
    return CameraPath(size, tuple(keyframes), framing)


FREE = (-1e9, 1e9)


@dataclass(frozen=True)
class Want:
    """Where the window would like to be for one sample (left, top), and the
    ranges of left and top that keep the needed region inside it."""

    left: float
    top: float
    lefts: tuple[float, float] = FREE
    tops: tuple[float, float] = FREE

    def goal(self, axis: int) -> float:
        return self.left if axis == 0 else self.top

    def allowed(self, axis: int) -> tuple[float, float]:
        return self.lefts if axis == 0 else self.tops


Wanted = Want | None


def _wanted(width: int, height: int, size: tuple[float, float], target: float,
            subjects: Sequence[Subject]) -> Wanted:
    cw, ch = size
    faces = [s for s in subjects if s.kind == "face"]
    if faces:
        region = needed(faces, width, height)
        if region.width > cw or region.height > ch:          # keep the largest face
            biggest = max(faces, key=lambda f: f.width * f.height)
            faces = [biggest]
            region = needed(faces, width, height)
        x = (region.left + region.right) / 2 - cw / 2
        if target < 1:
            eyes = sum(f.top + EYE_LINE * f.height for f in faces) / len(faces) * height
            y = eyes - ch * UPPER_THIRD
        else:
            y = (region.top + region.bottom) / 2 - ch / 2
        return Want(x, y, (region.right - cw, region.left), (region.bottom - ch, region.top))
    if subjects:
        sx, sy = max(subjects, key=lambda s: s.score).centre
        return Want(sx * width - cw / 2, sy * height - ch / 2)
    return None


def _shot_path(width: int, height: int, size: tuple[float, float], times: list[int],
               wanted: list[Wanted], start: int, end: int, step_ms: int,
               even: bool) -> list[Keyframe]:
    cw, ch = size
    limits = ((0.0, width - cw), (0.0, height - ch))
    known = [k for k, w in enumerate(wanted) if w is not None]
    room = (width - cw, height - ch)
    if not known:
        centre = ((width - cw) / 2, (height - ch) / 2)
        return _keys([start, end], [centre[0]] * 2, [centre[1]] * 2, room, even)
    axes = []
    for axis in (0, 1):
        low, high = limits[axis]
        goal = np.array([_fill(wanted, k, axis) for k in range(len(wanted))])
        lo = np.array([_range(wanted, k, axis)[0] for k in range(len(wanted))])
        hi = np.array([_range(wanted, k, axis)[1] for k in range(len(wanted))])
        lo, hi = np.clip(lo, low, high), np.clip(hi, low, high)
        if lo.max() <= hi.min():      # one position keeps the subject in for the whole shot
            axes.append(np.full(len(goal), float(np.clip(np.median(goal), lo.max(), hi.min()))))
            continue
        dead = DEAD_ZONE * (cw if axis == 0 else ch)
        path = _smooth(_hold(np.clip(goal, low, high), dead), SMOOTH_S * 1000 / step_ms)
        path = _limit_speed(path, MAX_SPEED * (cw if axis == 0 else ch) * step_ms / 1000)
        # The subject staying in frame beats a calm pan: clamp, then ease the clamp in.
        path = _smooth(np.clip(path, lo, hi), 1.0)
        axes.append(np.clip(np.clip(path, lo, hi), low, high))
    xs, ys = axes
    if np.ptp(xs) < 0.5 and np.ptp(ys) < 0.5:
        return _keys([start, end], [xs[0]] * 2, [ys[0]] * 2, room, even)
    stamps = [start, *times[1:-1], end] if len(times) > 2 else [start, end]
    xs = np.interp(stamps, times, xs) if len(times) > 1 else np.full(len(stamps), xs[0])
    ys = np.interp(stamps, times, ys) if len(times) > 1 else np.full(len(stamps), ys[0])
    return _keys(stamps, list(xs), list(ys), room, even)


def _keys(times: Sequence[int], xs: Sequence[float], ys: Sequence[float],
          room: tuple[float, float], even: bool) -> list[Keyframe]:
    out: list[Keyframe] = []
    for t, x, y in zip(times, xs, ys, strict=True):
        out.append((int(t), _inside(x, room[0], even), _inside(y, room[1], even)))
    # Drop the middle of straight runs: fewer keyframes, the same path.
    slim = out[:1]
    for prev, cur, nxt in zip(out, out[1:], out[2:], strict=False):
        if not (cur[1] == prev[1] == nxt[1] and cur[2] == prev[2] == nxt[2]):
            slim.append(cur)
    return slim + out[-1:] if len(out) > 1 else slim


def _inside(value: float, room: float, even: bool) -> float:
    """A window position rounded (to 0.1 px, or to even pixels for 4:2:0 video) and
    kept in [0, room]: rounding up must never carry the window past the frame's
    edge, where room is odd (an odd-sized frame) or under 2 px."""
    value = min(max(round(float(value), 1), 0.0), room)
    if even:
        value = float(round(value / 2) * 2)
        if value > room:
            value -= 2
    return max(value, 0.0)


def _fill(wanted: list[Wanted], k: int, axis: int) -> float:
    """The wanted position at sample k; a sample without subjects holds the nearest."""
    order = sorted(range(len(wanted)), key=lambda j: abs(j - k))
    for j in order:
        w = wanted[j]
        if w is not None:
            return w.goal(axis)
    return 0.0


def _range(wanted: list[Wanted], k: int, axis: int) -> tuple[float, float]:
    w = wanted[k]
    return FREE if w is None else w.allowed(axis)


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing that keeps the ends in place (edges padded by reflection)."""
    if sigma <= 0 or len(values) < 3:
        return values.astype(float)
    radius = max(1, int(2 * sigma))       # eases in at most 2 sigma before a move
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values.astype(float), radius, mode="edge")
    smoothed: np.ndarray = np.convolve(padded, kernel, mode="valid")
    return smoothed


def _hold(goal: np.ndarray, dead: float) -> np.ndarray:
    """The camera stays put while the goal stays within `dead` of it, then follows
    at that distance: small drifts and detector noise never move it."""
    out: np.ndarray = goal.astype(float).copy()
    for k in range(1, len(out)):
        gap = goal[k] - out[k - 1]
        out[k] = out[k - 1] if abs(gap) <= dead else goal[k] - np.sign(gap) * dead
    return out


def _limit_speed(values: np.ndarray, step: float) -> np.ndarray:
    """No move larger than `step` between samples, forward then backward."""
    out: np.ndarray = values.astype(float).copy()
    for k in range(1, len(out)):
        out[k] = min(max(out[k], out[k - 1] - step), out[k - 1] + step)
    for k in range(len(out) - 2, -1, -1):
        out[k] = min(max(out[k], out[k + 1] - step), out[k + 1] + step)
    return out
