"""The analysis of a photo master: subjects found on an upright greyscale copy
(LONG_SIDE on its long side, or more so that its short side reaches
SHORT_SIDE, at most MAX_SIDE), cached by the master's content.

The render decodes a master once: the analysis takes its greyscale copy from
that decode (pipeline.render.jobs), never from a decode of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipeline.analysis import cache
from pipeline.analysis.subjects import Subject, find_subjects
from pipeline.model import Asset, PhotoInfo

VERSION = 2
LONG_SIDE = 512
# The smallest face looked for (6 % of the short side) is then 20 px, Haar's window.
# Measured on 60 pictures with a 6-7.5 % face: found in 51 at 334 px, 48 at 400 px,
# 22 at 300 px; 334 px costs 30 % less than 400 px.
SHORT_SIDE = 334
MAX_SIDE = 1024


@dataclass(frozen=True)
class PhotoAnalysis:
    subjects: tuple[Subject, ...]       # faces, or else the most salient region

    @property
    def faces(self) -> tuple[Subject, ...]:
        return tuple(s for s in self.subjects if s.kind == "face")


def _name(digest: str) -> str:
    return f"{digest}.photo-v{VERSION}.json"


def cached_subjects(digest: str) -> tuple[Subject, ...] | None:
    """The subjects of this content when it was analysed before, else None."""
    cached = cache.load(_name(digest))
    if cached is None:
        return None
    try:
        return tuple(Subject.from_list(s) for s in cached["subjects"])
    except (KeyError, TypeError, ValueError):
        return None


def analyze_decoded(pixels: Image.Image, digest: str) -> tuple[Subject, ...]:
    """The subjects of a master from its decoded, upright sRGB pixels; cached."""
    subjects = tuple(find_subjects(grey_copy(pixels)))
    cache.store(_name(digest), {"subjects": [s.to_list() for s in subjects]})
    return subjects


def analyze_photo(asset: Asset, info: PhotoInfo, digest: str) -> PhotoAnalysis:
    """A master's analysis on its own (the render's comes from its one decode)."""
    from pipeline.probe.photo import open_photo
    from pipeline.render.photo import decode

    known = cached_subjects(digest)
    if known is not None:
        return PhotoAnalysis(known)
    with open_photo(asset) as image:
        width, height = analysis_size(info.stored_width, info.stored_height)
        master = decode(image, info, [width / max(info.stored_width, 1)], asset.label)
    return PhotoAnalysis(analyze_decoded(master.pixels, digest))


def grey_copy(pixels: Image.Image) -> np.ndarray:
    """8-bit grey at the analysis size; transparency over white."""
    grey = _eight_bit_grey(pixels)
    size = analysis_size(*grey.size)
    if size[0] < grey.width:
        grey = grey.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(grey)


def analysis_size(width: int, height: int) -> tuple[int, int]:
    long, short = max(width, height), min(width, height)
    factor = min(1.0, MAX_SIDE / long, max(LONG_SIDE / long, SHORT_SIDE / short))
    return max(1, round(width * factor)), max(1, round(height * factor))


def _eight_bit_grey(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = values.max() or 1.0
        return Image.fromarray(np.clip(values / top * 255, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        flat = Image.new("RGBA", image.size, (255, 255, 255, 255))
        flat.alpha_composite(image.convert("RGBA"))
        return flat.convert("L")
    return image.convert("L")
