"""Subtitles: where cues come from (sidecars, embedded text streams), how they
follow each variant's cuts, how they are laid out for its frame, and the ASS
and sidecar files written from them."""

from pipeline.subtitles.cues import Cue, Word

__all__ = ["Cue", "Word"]
