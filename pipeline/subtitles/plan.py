"""A variant's subtitles: the master's cues retimed through its kept segments
and laid out for its frame and safe area, with a note for every character
the font cannot draw."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.model import SubtitlePlan, VideoPlan
from pipeline.schema import Preset
from pipeline.subtitles.cues import Cue, Word
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


@dataclass(frozen=True)
class Source:
    """A master's subtitles before any variant's layout."""

    cues: list[Cue] = field(default_factory=list)
    origin: str = ""                    # "clip.srt (cp1250)", "embedded stream", "speech"
    language: str | None = None
    probability: float | None = None    # Whisper's, when it detected the language
    notes: tuple[str, ...] = ()
    tag: str | None = None              # for sidecar names, when the shoot has languages
    translations: tuple[Source, ...] = ()   # the same in the shoot's other languages


def subtitle_plan(plan: VideoPlan, preset: Preset, source: Source,
                  frame: Frame | None = None) -> tuple[SubtitlePlan | None, tuple[str, ...]]:
    """The plan's subtitles (None when it gets none), and warnings. `frame`: where
    the text may stand, when not the preset's safe area."""
    spec = preset.subtitles
    burn, sidecars = outputs(preset)
    if not source.cues or not (burn or sidecars):
        return None, ()
    name = spec.style if spec else "lower-third"
    style = styles()[name]              # the schema accepts known names only
    safe = preset.safe_area
    if frame is None:
        frame = frame_of(plan.size, (safe.top, safe.bottom, safe.left, safe.right) if safe
                         else (0.0, 0.0, 0.0, 0.0))
    timed = layout(retime(source.cues, plan.segments), style, frame, plan.duration_ms,
                   source.language)
    if not timed:
        return None, ()
    warnings = tuple(f"subtitles: the font cannot draw {g}; it would show as a box"
                     for g in missing_glyphs(timed, style.font_path))
    translated = []
    for other in source.translations if sidecars else ():
        cues = layout(retime(other.cues, plan.segments), style, frame, plan.duration_ms,
                      other.language)
        if cues and other.tag:
            translated.append((other.tag, _tuples(cues), other.origin))
    return SubtitlePlan(
        cues=_tuples(timed), style=name, burn=burn, sidecars=sidecars,
        frame=(round(frame.left, 1), round(frame.top, 1), round(frame.right, 1),
               round(frame.bottom, 1)), source=source.origin, language=source.language,
        language_probability=source.probability, tag=source.tag,
        translations=tuple(translated)), warnings


def _tuples(cues: Sequence[Cue]) -> tuple[tuple[int, int, str, tuple[tuple[int, int, str], ...]],
                                          ...]:
    return tuple((c.start, c.end, c.text, tuple((w.start, w.end, w.text) for w in c.words))
                 for c in cues)


def cues_of(plan: SubtitlePlan) -> list[Cue]:
    return as_cues(plan.cues)


def as_cues(cues: Sequence[tuple[int, int, str, Sequence[tuple[int, int, str]]]]) -> list[Cue]:
    return [Cue(a, b, text, tuple(Word(*w) for w in words)) for a, b, text, words in cues]


def sidecar_files(plan: SubtitlePlan) -> list[tuple[str, str, list[Cue]]]:
    """(language tag or "", format, cues) of every caption file beside the video."""
    files = [(plan.tag or "", fmt, cues_of(plan)) for fmt in plan.sidecars]
    files += [(tag, fmt, as_cues(cues)) for tag, cues, _ in plan.translations
              for fmt in plan.sidecars]
    return files
