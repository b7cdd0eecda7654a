"""Subjects of a video's detection frames, searched in full only now and then.

A full search (pipeline.analysis.subjects.find_subjects: faces over the whole
picture at every size, profile faces when no frontal one is found, saliency
when no face is) costs 30-150 ms on a 480 px frame; at 5 frames a second
that was most of a master's analysis. Between full searches the frames are
alike, so the tracker looks only where the faces were:

- a full search on the first frame, then at least every FULL_EVERY frames,
  and whenever the picture changed more than CHANGED since the last full
  search (a cut, a big camera move, someone walking in);
- in between, each face is looked for in a window around where it was, at
  sizes near its own (frontal, then profile); when a face is lost there, the
  frame gets a full search instead, so a lost face costs one full search;
- in between full searches that found no face, the picture's most salient
  region is found again (a few ms), so a moving object is still followed; a
  face that appears is found at the next full search, at most
  FULL_EVERY - 1 frames later, well inside the camera's smoothing
  (pipeline.planning.camera.SMOOTH_S).

The frames must come in order (one tracker per master).
"""

from __future__ import annotations

import numpy as np

from pipeline.analysis.subjects import (
    Box5,
    Subject,
    as_subjects,
    detector,
    equalise,
    find_subjects,
    frontal_faces,
    largest,
    profile_faces,
    smallest_face,
)

FULL_EVERY = 5             # frames: one full search a second at the 200 ms detection step
CHANGED = 10.0             # mean absolute grey change (0-255) of the THUMB-scaled picture
THUMB = 8                  # the change is measured on a picture this many times smaller
MARGIN = 0.6               # a face is looked for this many of its widths around it
SIZES = (0.7, 1.45)        # ... at this share of its size, smallest to largest


class Tracker:
    """Subjects frame after frame; `full` counts the full searches made."""

    def __init__(self) -> None:
        self.full = 0
        self.frames = 0
        self._since = FULL_EVERY
        self._faces: list[Box5] = []
        self._thumb: np.ndarray | None = None

    def __call__(self, grey: np.ndarray) -> list[Subject]:
        self.frames += 1
        thumb = _thumb(grey)
        if self._since < FULL_EVERY - 1 and not self._changed(thumb):
            found = self._follow(grey) if self._faces else detector("saliency")(grey)
            if found is not None:
                self._since += 1
                return found
        return self._search(grey, thumb)

    def _search(self, grey: np.ndarray, thumb: np.ndarray) -> list[Subject]:
        found = find_subjects(grey)
        height, width = grey.shape
        self._faces = _pixels([s for s in found if s.kind == "face"], width, height)
        self._since, self._thumb = 0, thumb
        self.full += 1
        return found

    def _changed(self, thumb: np.ndarray) -> bool:
        if self._thumb is None or self._thumb.shape != thumb.shape:
            return True
        change = np.abs(thumb.astype(np.int16) - self._thumb.astype(np.int16)).mean()
        return bool(change > CHANGED)

    def _follow(self, grey: np.ndarray) -> list[Subject] | None:
        """Each known face found again near where it was, or None when one is lost."""
        height, width = grey.shape
        equalised = equalise(grey)
        smallest = smallest_face(grey)
        found: list[Box5] = []
        for left, top, right, bottom, _ in self._faces:
            size = max(right - left, bottom - top)
            x0, y0 = max(0, int(left - MARGIN * size)), max(0, int(top - MARGIN * size))
            x1 = min(width, int(right + MARGIN * size) + 1)
            y1 = min(height, int(bottom + MARGIN * size) + 1)
            window = np.ascontiguousarray(equalised[y0:y1, x0:x1])
            low = max(smallest, int(size * SIZES[0]))
            high = max(low + 1, int(size * SIZES[1]) + 1)
            if min(window.shape) < low:
                return None
            seen = frontal_faces(window, low, high) or profile_faces(window, low, high)
            if not seen:
                return None
            found += [(a + x0, b + y0, c + x0, d + y0, s) for a, b, c, d, s in seen]
        subjects = largest(as_subjects(found, width, height))
        self._faces = _pixels(subjects, width, height)
        return subjects


def _thumb(grey: np.ndarray) -> np.ndarray:
    import cv2

    height, width = grey.shape
    size = (max(1, width // THUMB), max(1, height // THUMB))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def _pixels(faces: list[Subject], width: int, height: int) -> list[Box5]:
    """Faces as boxes in the picture's pixels, with their scores."""
    return [(f.left * width, f.top * height, f.right * width, f.bottom * height, f.score)
            for f in faces]
