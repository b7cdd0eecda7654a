"""What photo and video planning share: errors, choices, output names, the
fit geometry (which part of the master lands where), and the plan key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline import __version__
from pipeline.analysis.subjects import Subject
from pipeline.errors import RenderError
from pipeline.model import Box
from pipeline.planning.camera import Pin
from pipeline.planning.reframe import place, subject_window, window_size
from pipeline.schema import Preset

EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "mp4": "mp4",
              "mov": "mov"}


class PlanError(RenderError):
    """The preset cannot be met from this master (e.g. it would need too much upscaling)."""


@dataclass(frozen=True)
class Choices:
    """What the shoot says about one master."""

    focus: tuple[float, float] | None = None
    ai: str = "none"
    trim: tuple[float, float] | None = None     # seconds, video masters only
    still_ms: int = 6000                        # video made from a photo master
    audio_bed: str | None = None                # absolute path of its sound, if any
    pins: tuple[Pin, ...] = ()                  # focus points pinned for time ranges (video)
    speech: Any = None                          # shoot.yaml speech options (SpeechOptions)
    copy: Any = None                            # (Brand, Brief, CaptionOptions) for captions
    subtitles: Any = None                       # how sidecars are read (SubtitleSource)
    languages: tuple[str, ...] = ()             # shoot.yaml `languages`: captions in each
    # Folders an effect's module is looked up in, before the Python path: operator
    # folders only (a shoot.yaml's folder only when that shoot is trusted).
    effect_folders: tuple[str, ...] = ()


def output_path(preset: Preset, stem: str, part: int | None = None) -> str:
    fmt = preset.video.container if preset.media == "video" and preset.video else (
        preset.output_format)
    suffix = f".part{part}" if part else ""
    return f"{preset.id}/{stem}{suffix}.{EXTENSIONS[fmt]}"


def crop_window(width: int, height: int, target: float,
                focus: tuple[float, float] | None, even: bool = False) -> Box:
    """The largest window of aspect `target` inside the frame, centred on the
    focus point (fractions) as far as the frame allows. `even` keeps every
    edge on even pixels (4:2:0 video)."""
    size = window_size(width, height, target, even)
    fx, fy = focus or (0.5, 0.5)
    return place(width, height, size, fx * width - size[0] / 2, fy * height - size[1] / 2, even)


@dataclass(frozen=True)
class Geometry:
    fit: str           # the preset's, or its reframe_fallback when the subjects cannot fit
    crop: Box          # region of the master used (display pixels)
    placement: Box     # where it lands in the output frame
    scale: float       # output pixels per master pixel
    framing: str       # what the crop was placed on
    warnings: tuple[str, ...]


def fit_geometry(width: int, height: int, preset: Preset, focus: tuple[float, float] | None,
                 source: str, even: bool = False,
                 subjects: Sequence[Subject] = ()) -> Geometry:
    """Crop, pad or blur-pad geometry for one preset; PlanError past max_upscale.
    A crop is placed on `focus` when the shoot gives one, else on the subjects;
    when the faces cannot all fit the preset's aspect, reframe_fallback applies."""
    out_w, out_h = preset.size
    fit, notes = preset.fit, []
    framing = "focus from shoot.yaml" if focus else "centre"
    window = None
    if fit == "crop" and focus is None and subjects:
        window = subject_window(width, height, out_w / out_h, subjects, even)
        if window is None:
            fit = preset.reframe_fallback
            faces = sum(1 for s in subjects if s.kind == "face")
            notes.append(f"{faces} faces cannot all fit {out_w}x{out_h}: {fit} instead of crop")
            if fit == "crop":        # the preset prefers a crop anyway: on the largest face
                largest = max(subjects, key=lambda s: s.width * s.height)
                window = subject_window(width, height, out_w / out_h, [largest], even)
    if fit == "crop":
        if window is not None:
            crop, framing = window.box, window.framing
        else:
            crop = crop_window(width, height, out_w / out_h, focus, even)
        scale = out_w / crop.width
        placement = Box(0, 0, out_w, out_h)
    else:
        crop = Box(0, 0, width, height)
        framing = "the whole frame"
        scale = min(out_w / width, out_h / height)
        inner_w = max(2 if even else 1, min(out_w, round(width * scale)))
        inner_h = max(2 if even else 1, min(out_h, round(height * scale)))
        if even:
            inner_w, inner_h = inner_w // 2 * 2, inner_h // 2 * 2
        left, top = (out_w - inner_w) // 2, (out_h - inner_h) // 2
        if even:
            left, top = left // 2 * 2, top // 2 * 2
        placement = Box(left, top, left + inner_w, top + inner_h)
    if scale > preset.max_upscale + 1e-9:
        raise PlanError(
            f"master is {width}x{height}; {out_w}x{out_h} would need {scale:.2f}x "
            f"enlargement, over max_upscale {preset.max_upscale:g}",
            path=source, preset=preset.id,
            hint="use a larger master, or raise max_upscale for this preset in shoot.yaml")
    if scale > 1.0 + 1e-9:
        notes.append(f"upscaled {scale:.2f}x: master {width}x{height} is smaller than "
                     f"{out_w}x{out_h} needs")
    return Geometry(fit, crop, placement, round(scale, 6), framing, tuple(notes))


def plan_key(body: dict[str, Any], preset: Preset, source_digest: str) -> str:
    """A digest of everything that decides a variant's bytes."""
    # What explains a decision (framing, cut notes) does not change the bytes.
    body = {k: v for k, v in body.items() if k not in ("key", "source", "framing", "cut_notes")}
    # How the variant is posted (`post`) is not how it is made; whether a video
    # shares its encode is in the video plan itself (`share`).
    payload = json.dumps({"plan": body, "preset": preset.model_dump(
                              mode="json", exclude={"post", "share_encode"}),
                          "source": source_digest, "version": __version__},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
