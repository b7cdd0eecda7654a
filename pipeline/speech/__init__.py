"""Speech-to-text behind a provider interface and registry.

Plain data in (a 16 kHz mono WAV, a language), cues with word times and the
language heard out. Built in: `whisper` (faster-whisper, from the
`repurpose[speech]` extra, with Whisper tiny.en for English; with
`repurpose[speech-multilingual]`, Whisper base for every other language and
for detecting it: pipeline/speech/models.py; both ship as wheels and work
offline, never fetched from a model hub) and `command` (any program that takes
the audio path and prints segments as JSON). Transcripts are cached by the
master's content.
"""

from pipeline.speech.models import SpeechUnavailable, multilingual_installed
from pipeline.speech.providers import (
    PROVIDERS,
    Heard,
    default_provider,
    heard,
    transcribe,
)

__all__ = ["PROVIDERS", "Heard", "SpeechUnavailable", "default_provider", "heard",
           "multilingual_installed", "transcribe"]
