"""Subject-aware crop windows: pure functions of the frame, the target aspect
and the subjects found by analysis (boxes in fractions of the frame).

Faces are kept whole with room around them: above the head, beside it, and
under the chin; in portrait formats the eyes sit near the upper third. A crop
that cannot hold every face returns None, and the caller falls back to the
preset's `reframe_fallback`. Without faces the window centres on the most
salient region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.analysis.subjects import Subject
from pipeline.model import Box
from pipeline.schema import Preset

# Room kept around a detected face box, as shares of its width and height:
# a Haar box runs from the brows to the chin, so most of the head is above it.
SIDE_ROOM = 0.25
HEAD_ROOM = 0.45
CHIN_ROOM = 0.25
EYE_LINE = 0.4            # eyes sit this far down a face box
UPPER_THIRD = 1 / 3


@dataclass(frozen=True)
class Window:
    box: Box
    framing: str              # what the window was placed on, for the plan


def needs_subjects(width: int, height: int, presets: Sequence[Preset],
                   focus: tuple[float, float] | None) -> bool:
    """Whether any of these presets crops this frame where subjects would matter."""
    return focus is None and any(
        p.fit == "crop" and abs(p.size[0] / p.size[1] - width / height) > 0.01 * width / height
        for p in presets)


def window_size(width: int, height: int, target: float, even: bool = False
                ) -> tuple[float, float]:
    """The largest window of aspect `target` inside the frame; with `even`, of even
    sides (4:2:0 video) of at least 2 px where the frame has them."""
    if width / height > target:
        cw, ch = height * target, float(height)
    else:
        cw, ch = float(width), width / target
    if even:
        cw, ch = _even(cw, width), _even(ch, height)
    return cw, ch


def _even(length: float, limit: int) -> float:
    return float(min(limit, max(2, int(length) // 2 * 2)))


def place(width: int, height: int, size: tuple[float, float], left: float, top: float,
          even: bool = False) -> Box:
    """A window of `size` at (left, top), moved inside the frame."""
    cw, ch = size
    left = min(max(left, 0.0), width - cw)
    top = min(max(top, 0.0), height - ch)
    if even:
        left, top = float(int(left) // 2 * 2), float(int(top) // 2 * 2)
    return Box(*(round(v, 3) for v in (left, top, left + cw, top + ch)))


def needed(faces: Sequence[Subject], width: int, height: int, room: bool = True) -> Box:
    """The region (pixels) that must stay in frame to keep every face whole."""
    side, head, chin = (SIDE_ROOM, HEAD_ROOM, CHIN_ROOM) if room else (0.0, 0.0, 0.0)
    return Box(max(0.0, min((f.left - side * f.width) * width for f in faces)),
               max(0.0, min((f.top - head * f.height) * height for f in faces)),
               min(float(width), max((f.right + side * f.width) * width for f in faces)),
               min(float(height), max((f.bottom + chin * f.height) * height for f in faces)))


def subject_window(width: int, height: int, target: float, subjects: Sequence[Subject],
                   even: bool = False) -> Window | None:
    """The crop window for these subjects, or None when the faces cannot all fit."""
    size = window_size(width, height, target, even)
    cw, ch = size
    faces = [s for s in subjects if s.kind == "face"]
    if not faces:
        salient = max(subjects, key=lambda s: s.score)
        x, y = salient.centre
        return Window(place(width, height, size, x * width - cw / 2, y * height - ch / 2, even),
                      "the most salient region")
    region = needed(faces, width, height)
    if region.width > cw or region.height > ch:
        region = needed(faces, width, height, room=False)     # whole faces, tighter
        if region.width > cw + 1 or region.height > ch + 1:
            return None
    left = _within((region.left + region.right) / 2 - cw / 2, region.left, region.right, cw)
    if target < 1:      # portrait: the eyes near the upper third
        eyes = sum((f.top + EYE_LINE * f.height) for f in faces) / len(faces) * height
        wanted = eyes - ch * UPPER_THIRD
    else:
        wanted = (region.top + region.bottom) / 2 - ch / 2
    top = _within(wanted, region.top, region.bottom, ch)
    count = f"{len(faces)} face{'s' if len(faces) > 1 else ''}"
    return Window(place(width, height, size, left, top, even), count)


def _within(start: float, low: float, high: float, length: float) -> float:
    """`start` moved so that [low, high] lies inside [start, start + length]."""
    return min(max(start, high - length), low)
