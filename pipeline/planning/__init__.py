"""Planning: pure functions from (media info, Preset, Choices) to plans.

No I/O and no imaging or ffmpeg library here: a plan is plain data that
says which part of the master is used, where it lands in the output frame,
at what scale, cut where, and encoded how, so every decision can be printed
(`repurpose plan`) and tested before any pixel is rendered.
"""

from pipeline.planning.common import (
    Choices,
    PlanError,
    crop_window,
    fit_geometry,
    output_path,
)
from pipeline.planning.photo import plan_photo
from pipeline.planning.video import plan_video

__all__ = ["Choices", "PlanError", "crop_window", "fit_geometry", "output_path", "plan_photo",
           "plan_video"]
