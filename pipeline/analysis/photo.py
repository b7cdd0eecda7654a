"""The analysis of a photo master: subjects found on an upright greyscale copy
of at most LONG_SIDE pixels, cached by the master's content."""

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
    """The master upright, in 8-bit grey, at most LONG_SIDE pixels on its long side."""
    with open_photo(asset) as image:
        if image.format in ("JPEG", "MPO"):             # decodes at 1/2-1/8 scale: cheap
            width, height = image.size
            image.draft("L", (LONG_SIDE * width // max(width, height),
                              LONG_SIDE * height // max(width, height)))
        try:
            image.seek(0)
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise InputError(f"cannot decode: {exc}", path=asset.label,
                             hint="the file is truncated or damaged; export or copy it again"
                             ) from exc
        pixels = _eight_bit_grey(image)
    pixels.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(upright(pixels, info.orientation))


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
