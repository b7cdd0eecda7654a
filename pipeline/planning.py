"""Planning: a pure function from (PhotoInfo, Preset, choices) to a plan.

No I/O and no imaging library here: a plan is plain data that says which part
of the master is used, where it lands in the output frame, at what scale and
in which format, so every decision can be printed (`repurpose plan`) and
tested before any pixel is rendered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pipeline import __version__
from pipeline.errors import RenderError
from pipeline.model import Box, PhotoInfo, PhotoPlan
from pipeline.schema import Preset

EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif"}


class PlanError(RenderError):
    """The preset cannot be met from this master (e.g. it would need too much upscaling)."""


@dataclass(frozen=True)
class Choices:
    """What the shoot says about one master."""

    focus: tuple[float, float] | None = None
    ai: str = "none"


def output_path(preset: Preset, stem: str) -> str:
    return f"{preset.id}/{stem}.{EXTENSIONS[preset.output_format]}"


def crop_window(width: int, height: int, target: float,
                focus: tuple[float, float] | None) -> Box:
    """The largest window of aspect `target` inside the frame, centred on the
    focus point (fractions) as far as the frame allows."""
    if width / height > target:
        cw, ch = height * target, float(height)
    else:
        cw, ch = float(width), width / target
    fx, fy = focus or (0.5, 0.5)
    left = min(max(fx * width - cw / 2, 0.0), width - cw)
    top = min(max(fy * height - ch / 2, 0.0), height - ch)
    return _rounded(Box(left, top, left + cw, top + ch))


def _rounded(box: Box) -> Box:
    return Box(*(round(v, 3) for v in box.as_tuple()))


def plan_photo(info: PhotoInfo, preset: Preset, choices: Choices, *, source: str,
               stem: str, source_digest: str) -> PhotoPlan:
    """Plan one photo variant; raises PlanError when the preset cannot be met."""
    out_w, out_h = preset.size
    width, height = info.width, info.height
    warnings: list[str] = []
    if preset.fit == "crop":
        crop = crop_window(width, height, out_w / out_h, choices.focus)
        scale = out_w / crop.width
        placement = Box(0, 0, out_w, out_h)
    else:
        crop = Box(0, 0, width, height)
        scale = min(out_w / width, out_h / height)
        inner_w = max(1, min(out_w, round(width * scale)))
        inner_h = max(1, min(out_h, round(height * scale)))
        left, top = (out_w - inner_w) // 2, (out_h - inner_h) // 2
        placement = Box(left, top, left + inner_w, top + inner_h)
    if scale > preset.max_upscale + 1e-9:
        raise PlanError(
            f"master is {width}x{height}; {out_w}x{out_h} would need {scale:.2f}x "
            f"enlargement, over max_upscale {preset.max_upscale:g}",
            path=source, preset=preset.id,
            hint="use a larger master, or raise max_upscale for this preset in shoot.yaml")
    if scale > 1.0 + 1e-9:
        warnings.append(f"upscaled {scale:.2f}x: master {width}x{height} is smaller than "
                        f"{out_w}x{out_h} needs")
    if info.frames > 1:
        warnings.append(f"animated master ({info.frames} frames): the first frame is used")
    plan = PhotoPlan(
        preset=preset.id, source=source, output=output_path(preset, stem),
        size=(out_w, out_h), fit=preset.fit, crop=crop, placement=placement,
        scale=round(scale, 6), format=preset.output_format, quality=preset.quality,
        min_quality=preset.min_quality, max_bytes=preset.max_file_size,
        background=preset.background, metadata=preset.metadata, ai=choices.ai, key="",
        warnings=tuple(warnings))
    return _with_key(plan, preset, source_digest)


def _with_key(plan: PhotoPlan, preset: Preset, source_digest: str) -> PhotoPlan:
    """Stamp the plan with a digest of everything that decides the output bytes."""
    body = plan.to_dict()
    body.pop("key")
    body.pop("source")
    payload = json.dumps({"plan": body, "preset": preset.model_dump(mode="json"),
                          "source": source_digest, "version": __version__},
                         sort_keys=True, default=str)
    key = hashlib.sha256(payload.encode()).hexdigest()
    return PhotoPlan(**{**plan.__dict__, "key": key})
