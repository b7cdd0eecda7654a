"""The analysis of a photo master: subjects found on an upright greyscale copy
(LONG_SIDE on its long side, or more so that its short side reaches
SHORT_SIDE, at most MAX_SIDE), cached by the master's content."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipeline.analysis import cache
from pipeline.analysis.subjects import Subject, find_subjects
from pipeline.errors import InputError
from pipeline.model import Asset, PhotoInfo
from pipeline.probe.photo import open_photo, upright

VERSION = 1
LONG_SIDE = 512
SHORT_SIDE = 400     # the smallest face looked for (6 %) is then 24 px, over Haar's 20 px window
MAX_SIDE = 1024


@dataclass(frozen=True)
class PhotoAnalysis:
    subjects: tuple[Subject, ...]       # faces, or else the most salient region

    @property
    def faces(self) -> tuple[Subject, ...]:
        return tuple(s for s in self.subjects if s.kind == "face")


def analyze_photo(asset: Asset, info: PhotoInfo, digest: str) -> PhotoAnalysis:
    name = f"{digest}.photo-v{VERSION}.json"
    cached = cache.load(name)
    if cached is not None:
        try:
            return PhotoAnalysis(tuple(Subject.from_list(s) for s in cached["subjects"]))
        except (KeyError, TypeError, ValueError):
            pass
    result = PhotoAnalysis(tuple(find_subjects(_grey(asset, info))))
    cache.store(name, {"subjects": [s.to_list() for s in result.subjects]})
    return result


def _grey(asset: Asset, info: PhotoInfo) -> np.ndarray:
    """The master upright, in 8-bit grey, at the analysis size."""
    with open_photo(asset) as image:
        if image.format in ("JPEG", "MPO"):             # decodes at 1/2-1/8 scale: cheap
            image.draft("L", analysis_size(*image.size))
        try:
            image.seek(0)
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise InputError(f"cannot decode: {exc}", path=asset.label,
                             hint="the file is truncated or damaged; export or copy it again"
                             ) from exc
        pixels = _eight_bit_grey(image)
    size = analysis_size(*pixels.size)
    if size[0] < pixels.width:
        pixels = pixels.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(upright(pixels, info.orientation))


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
