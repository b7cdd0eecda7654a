"""Subject detectors: where the people (or else the eye-catching things) are
in one greyscale picture.

Detectors share one interface and register by name, so a better one (an
optional extra) can be added later without touching planning. Built in:
`faces` (OpenCV's bundled Haar cascades: frontal alt2, and a profile pass in
both directions when no frontal face is found) and `saliency` (spectral
residual, the fallback when no face is found). Boxes are fractions of the
picture, so they do not depend on the analysis resolution.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from pipeline.model import Box
from pipeline.registry import registrar

MIN_FACE = 0.06           # smallest face, as a share of the picture's shorter side
MERGE_OVERLAP = 0.3        # boxes overlapping more than this (IoU) are one subject
MAX_SUBJECTS = 32          # a crowd is framed by its largest faces; more cost memory only


@dataclass(frozen=True)
class Subject(Box):
    """One detection: a box in fractions of the picture (0-1), its kind and score."""

    kind: str                  # "face" or "salient"
    score: float = 1.0

    @property
    def centre(self) -> tuple[float, float]:
        return (self.left + self.right) / 2, (self.top + self.bottom) / 2

    def to_list(self) -> list[float | str]:
        return [self.left, self.top, self.right, self.bottom, self.kind, self.score]

    @classmethod
    def from_list(cls, item: list[float | str]) -> Subject:
        left, top, right, bottom, kind, score = item
        return cls.of(float(left), float(top), float(right), float(bottom), str(kind),
                      float(score))

    @classmethod
    def of(cls, left: float, top: float, right: float, bottom: float, kind: str,
           score: float = 1.0) -> Subject:
        """Rounded as the cache stores it, so a cached analysis plans the same crop."""
        return cls(round(float(left), 4), round(float(top), 4), round(float(right), 4),
                   round(float(bottom), 4), kind, round(float(score), 3))


class Detector(Protocol):
    def __call__(self, grey: np.ndarray) -> list[Subject]:
        """Subjects in one 8-bit greyscale picture."""


DETECTORS: dict[str, Callable[[], Detector]] = {}


register = registrar(DETECTORS)


_threads: int | None = None


def share_cores() -> None:
    """Called in worker processes that run one master per core: OpenCV's own
    threads would only contend with the other workers."""
    global _threads
    _threads = 1


_mine = threading.local()      # OpenCV's classifiers keep scratch state: one per thread


def detector(name: str) -> Detector:
    """The detector `name`, made once per thread (a watcher renders masters in
    several threads at once)."""
    made: dict[str, Detector] = _mine.__dict__.setdefault("detectors", {})
    if name not in made:
        if _threads is not None:
            import cv2

            cv2.setNumThreads(_threads)
        made[name] = DETECTORS[name]()
    return made[name]


def find_subjects(grey: np.ndarray) -> list[Subject]:
    """Faces when there are any, else the most salient region; at most MAX_SUBJECTS
    (the largest), in the order the detector gave them."""
    return largest(detector("faces")(grey) or detector("saliency")(grey))


def largest(found: list[Subject]) -> list[Subject]:
    """At most MAX_SUBJECTS of them, the largest, in their order."""
    if len(found) <= MAX_SUBJECTS:
        return found
    order = sorted(range(len(found)), key=lambda i: -found[i].width * found[i].height)
    keep = set(order[:MAX_SUBJECTS])
    return [s for i, s in enumerate(found) if i in keep]


def cascades() -> tuple[Any, Any, Any]:
    """OpenCV's frontal (alt2) and profile cascades and the local contrast
    equaliser the face detector and the tracker (pipeline.analysis.track) share,
    made once per thread."""
    if not hasattr(_mine, "cascades"):
        _mine.cascades = _cascades()
    return _mine.cascades  # type: ignore[no-any-return]


def _cascades() -> tuple[Any, Any, Any]:
    import cv2

    folder = cv2.data.haarcascades  # type: ignore[attr-defined]
    frontal = cv2.CascadeClassifier(folder + "haarcascade_frontalface_alt2.xml")
    profile = cv2.CascadeClassifier(folder + "haarcascade_profileface.xml")
    if frontal.empty() or profile.empty():
        raise RuntimeError(f"OpenCV's face cascades are missing from {folder}; install "
                           "opencv-contrib-python-headless>=4.10,<5")
    # Local contrast only: a global histogram stretch lets the background decide
    # how a small face looks, and loses faces on bright or dark backdrops.
    return frontal, profile, cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))


Box5 = tuple[float, float, float, float, float]     # left, top, right, bottom (px), score
FRONTAL = (1.1, 4)          # detectMultiScale's scale step and neighbours, frontal cascade
PROFILE = (1.2, 5)          # the same for the profile cascade
PROFILE_SCORE = 0.8


def frontal_faces(equalised: np.ndarray, smallest: int, largest: int = 0) -> list[Box5]:
    frontal, _, _ = cascades()
    return [(x, y, x + w, y + h, 1.0) for x, y, w, h in frontal.detectMultiScale(
        equalised, *FRONTAL, minSize=(smallest,) * 2, maxSize=(largest,) * 2)]


def profile_faces(equalised: np.ndarray, smallest: int, largest: int = 0) -> list[Box5]:
    """Turned heads: the profile cascade sees faces turned one way, so the mirror
    image is searched too."""
    _, profile, _ = cascades()
    width = equalised.shape[1]
    found: list[Box5] = []
    for mirrored in (False, True):
        picture = np.ascontiguousarray(equalised[:, ::-1]) if mirrored else equalised
        for x, y, w, h in profile.detectMultiScale(picture, *PROFILE,
                                                   minSize=(smallest,) * 2,
                                                   maxSize=(largest,) * 2):
            left = width - x - w if mirrored else x
            found.append((left, y, left + w, y + h, PROFILE_SCORE))
    return found


def smallest_face(grey: np.ndarray) -> int:
    """The smallest face looked for in this picture, px."""
    return max(12, round(MIN_FACE * int(min(grey.shape))))


def equalise(grey: np.ndarray) -> np.ndarray:
    equalised: np.ndarray = cascades()[2].apply(grey)
    return equalised


def as_subjects(boxes: list[Box5], width: int, height: int) -> list[Subject]:
    return [Subject.of(a / width, b / height, c / width, d / height, "face", s)
            for a, b, c, d, s in merge(boxes)]


PROFILE_SHRINK = 2         # turned heads are looked for on a picture this much smaller


@register("faces")
def _faces() -> Detector:
    def detect(grey: np.ndarray) -> list[Subject]:
        height, width = grey.shape
        smallest = smallest_face(grey)
        equalised = equalise(grey)
        found = frontal_faces(equalised, smallest)
        if not found:       # only then: the profile cascade is the slow part
            found = _turned(equalised, smallest)
        return as_subjects(found, width, height)

    return detect


def _turned(equalised: np.ndarray, smallest: int) -> list[Box5]:
    """Profile faces from PROFILE_SHRINK times the smallest frontal one (12 % of the
    short side): a turned head that decides a crop fills more of the picture than a
    face in a crowd, and the pass costs a quarter (40 against 220 ms on a 512x341
    bench photo). Small pictures are searched as they are."""
    import cv2

    height, width = equalised.shape
    if min(height, width) // PROFILE_SHRINK < 2 * smallest:
        return profile_faces(equalised, smallest)
    size = (width // PROFILE_SHRINK, height // PROFILE_SHRINK)
    small = cv2.resize(equalised, size, interpolation=cv2.INTER_AREA)
    fx, fy = width / size[0], height / size[1]
    return [(a * fx, b * fy, c * fx, d * fy, score)
            for a, b, c, d, score in profile_faces(small, smallest)]


@register("saliency")
def _saliency() -> Detector:
    import cv2

    spectral = cv2.saliency.StaticSaliencySpectralResidual_create()  # type: ignore[attr-defined]

    def detect(grey: np.ndarray) -> list[Subject]:
        height, width = grey.shape
        ok, heat = spectral.computeSaliency(grey)
        if not ok or heat.max() <= 0:
            return []
        heat = cv2.GaussianBlur(heat.astype(np.float32), (0, 0), max(1.0, width / 100))
        mask = (heat >= heat.mean() + 2 * heat.std()).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
        if count <= 1:
            return []
        # The region holding the most saliency, not merely the largest one.
        weight = np.bincount(labels.ravel(), weights=heat.ravel(), minlength=count)
        best = 1 + int(np.argmax(weight[1:]))
        x, y, w, h = (int(v) for v in stats[best, :4])
        score = float(weight[best] / max(weight[1:].sum(), 1e-9))
        return [Subject.of(x / width, y / height, (x + w) / width, (y + h) / height, "salient",
                           score)]

    return detect


def merge(boxes: list[Box5]) -> list[Box5]:
    """One box per face: overlapping detections (frontal and profile) become the
    higher-scored, larger one."""
    kept: list[Box5] = []
    for box in sorted(boxes, key=lambda b: (-b[4], -(b[2] - b[0]) * (b[3] - b[1]))):
        if all(_overlap(box, other) <= MERGE_OVERLAP for other in kept):
            kept.append(box)
    return sorted(kept)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
