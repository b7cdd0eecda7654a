"""Cues mapped from the master's timeline onto a variant's: through its kept
segments, in order, each starting where the previous one ended. A cue that
crosses a cut is clipped to the kept part; what is left shorter than
MIN_KEPT_MS is dropped. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.subtitles.cues import Cue, Word

MIN_KEPT_MS = 300


def retime(cues: Sequence[Cue], segments: Sequence[tuple[int, int]]) -> list[Cue]:
    out: list[Cue] = []
    offset = 0
    for start, end in segments:
        for cue in cues:
            a, b = max(cue.start, start), min(cue.end, end)
            if b - a < MIN_KEPT_MS:
                continue
            words = tuple(Word(max(w.start, a) - start + offset, min(w.end, b) - start + offset,
                               w.text) for w in cue.words if w.end > a and w.start < b)
            out.append(Cue(a - start + offset, b - start + offset, cue.text, words))
        offset += end - start
    return out
