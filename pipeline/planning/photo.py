"""Photo planning: a pure function from (PhotoInfo, Preset, Choices) to a PhotoPlan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pipeline.analysis.subjects import Subject
from pipeline.model import PhotoInfo, PhotoPlan
from pipeline.planning.common import Choices, fit_geometry, output_path, plan_key
from pipeline.schema import Preset


def plan_photo(info: PhotoInfo, preset: Preset, choices: Choices, *, source: str,
               stem: str, source_digest: str, subjects: Sequence[Subject] = ()) -> PhotoPlan:
    """Plan one photo variant; raises PlanError when the preset cannot be met."""
    geometry = fit_geometry(info.width, info.height, preset, choices.focus, source,
                            subjects=subjects)
    warnings = list(geometry.warnings)
    if info.frames > 1:
        warnings.append(f"animated master ({info.frames} frames): the first frame is used")
    plan = PhotoPlan(
        preset=preset.id, source=source, output=output_path(preset, stem),
        size=preset.size, fit=geometry.fit, crop=geometry.crop, placement=geometry.placement,
        scale=geometry.scale, format=preset.output_format, quality=preset.quality,
        min_quality=preset.min_quality, max_bytes=preset.max_file_size,
        background=preset.background, metadata=preset.metadata, ai=choices.ai, key="",
        framing=geometry.framing, warnings=tuple(warnings))
    return replace(plan, key=plan_key(plan.to_dict(), preset, source_digest))
