"""Cues: plain timed text (milliseconds of a timeline), with word times when
speech-to-text gave them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Cue:
    start: int
    end: int
    text: str                          # lines joined by "\n"
    words: tuple[Word, ...] = ()

    @property
    def duration(self) -> int:
        return self.end - self.start

    def to_list(self) -> list[object]:
        return [self.start, self.end, self.text, [[w.start, w.end, w.text] for w in self.words]]
