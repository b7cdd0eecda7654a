"""A variant's subtitles: the master's cues retimed through its kept segments
and laid out for its frame and safe area, with a note for every character
the font cannot draw."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.model import SubtitlePlan, VideoPlan
from pipeline.schema import Preset
from pipeline.subtitles.cues import Cue
from pipeline.subtitles.files import missing_glyphs
from pipeline.subtitles.layout import Frame, frame_of, layout, styles
from pipeline.subtitles.retime import retime

SIDECAR_FORMATS = ("srt", "vtt")


def outputs(preset: Preset) -> tuple[bool, tuple[str, ...]]:
    """Whether a preset burns subtitles in, and which caption files it writes."""
    spec = preset.subtitles
    sidecars = tuple(f for f in (spec.formats if spec else []) if f in SIDECAR_FORMATS)
    if spec and spec.sidecar and not sidecars:
        sidecars = ("srt",)
    if not (spec and spec.sidecar):
        sidecars = ()
    burn = spec.burn if spec and spec.burn is not None else not sidecars
    return burn, sidecars


def subtitle_plan(plan: VideoPlan, preset: Preset, cues: Sequence[Cue], source: str,
                  frame: Frame | None = None) -> tuple[SubtitlePlan | None, tuple[str, ...]]:
    """The plan's subtitles (None when it gets none), and warnings. `frame`: where
    the text may stand, when not the preset's safe area."""
    spec = preset.subtitles
    burn, sidecars = outputs(preset)
    if not cues or not (burn or sidecars):
        return None, ()
    name = spec.style if spec else "lower-third"
    style = styles()[name]              # the schema accepts known names only
    safe = preset.safe_area
    if frame is None:
        frame = frame_of(plan.size, (safe.top, safe.bottom, safe.left, safe.right) if safe
                         else (0.0, 0.0, 0.0, 0.0))
    timed = layout(retime(cues, plan.segments), style, frame, plan.duration_ms)
    if not timed:
        return None, ()
    warnings = tuple(f"subtitles: the font cannot draw {g}; it would show as a box"
                     for g in missing_glyphs(timed, style.font_path))
    return SubtitlePlan(
        cues=tuple((c.start, c.end, c.text, tuple((w.start, w.end, w.text) for w in c.words))
                   for c in timed),
        style=name, burn=burn, sidecars=sidecars,
        frame=(round(frame.left, 1), round(frame.top, 1), round(frame.right, 1),
               round(frame.bottom, 1)), source=source), warnings


def cues_of(plan: SubtitlePlan) -> list[Cue]:
    from pipeline.subtitles.cues import Word

    return [Cue(a, b, text, tuple(Word(*w) for w in words)) for a, b, text, words in plan.cues]
