"""Effects for this shoot: a preset names one as `effect: effects:fade`.

Each function receives the variant as a moviepy clip (already cropped,
scaled, cut and loudness-normalised) and returns the clip to encode.
"""

from moviepy import afx, vfx


def fade(clip):
    """Fade in from black and out to black over half a second, the sound too."""
    faded = clip.with_effects([vfx.FadeIn(0.5), vfx.FadeOut(0.5)])
    if clip.audio is not None:
        faded = faded.with_audio(
            clip.audio.with_effects([afx.AudioFadeIn(0.5), afx.AudioFadeOut(0.5)]))
    return faded
