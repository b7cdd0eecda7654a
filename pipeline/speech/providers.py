"""The speech-to-text providers and the transcript cache."""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.analysis import cache
from pipeline.errors import RenderError
from pipeline.ffmpeg import GLOBAL_ARGS, content_input, ffmpeg_exe, run_ffmpeg
from pipeline.languages import primary
from pipeline.process import run_capped
from pipeline.registry import registrar
from pipeline.schema import SpeechOptions
from pipeline.scratch import scratch
from pipeline.speech.models import (
    SpeechUnavailable,
    choose,
    english_installed,
    folder_of,
    spoken,
)
from pipeline.subtitles.cues import Cue, Word
from pipeline.trust import secret_args

MAX_REPLY = 16 * 2**20      # the segments of hours of speech are a few MB of JSON
VERSION = 2                 # 2: the language heard, and Whisper's probability for it
DETECT_WINDOWS = 2          # 30 s windows of speech the language is detected on


@dataclass(frozen=True)
class Heard:
    """A master's speech: cues, and the language they are in (detected or as told)."""

    cues: list[Cue]
    language: str | None = None
    probability: float | None = None     # Whisper's, when it detected the language

    def to_dict(self) -> dict[str, Any]:
        return {"cues": [c.to_list() for c in self.cues], "language": self.language,
                "probability": self.probability}


Provider = Callable[[Path, SpeechOptions], Heard]
PROVIDERS: dict[str, Provider] = {}

register = registrar(PROVIDERS)


def default_provider() -> str:
    """`whisper` when the speech extra is installed, else none."""
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        return "none"
    return "whisper"


def transcribe(master: Path, options: SpeechOptions, digest: str, label: str,
               audio: Path | None = None) -> Heard:
    """The master's speech, from the cache when it was heard before. `audio`: its
    first audio stream as 16 kHz mono WAV when already decoded (the analysis pass
    writes it), else it is decoded here."""
    name = _provider(options, label)
    found = heard(options, digest)
    if found is not None:
        return found
    with scratch("speech") as folder:
        if audio is None or not audio.is_file():
            audio = folder / "speech.wav"
            run_ffmpeg([ffmpeg_exe(), *GLOBAL_ARGS, *content_input(master), "-map", "0:a:0",
                        "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(audio)], label)
        try:
            result = PROVIDERS[name](audio, options)
        except SpeechUnavailable as exc:
            raise SpeechUnavailable(exc.message, path=label, hint=exc.hint) from exc
        except Exception as exc:  # noqa: BLE001 - any provider failure is reported, once
            raise RenderError(f"speech-to-text ({name}) failed: {exc}", path=label,
                              hint="check speech in shoot.yaml, or put a .srt beside the "
                                   "master") from exc
    cache.store(transcript_entry(options, digest), result.to_dict())
    return result


def heard(options: SpeechOptions, digest: str) -> Heard | None:
    """The cached transcript of this master with these settings, if there is one."""
    return parse(cache.load(transcript_entry(options, digest)))


def parse(data: Any) -> Heard | None:
    """A transcript as cached (or as a speech worker sent it), or None when it is
    not one: it may have come through Redis."""
    if not isinstance(data, dict) or not isinstance(data.get("cues"), list):
        return None
    language, probability = data.get("language"), data.get("probability")
    if language is not None and (not isinstance(language, str) or primary(language) is None):
        return None
    if probability is not None and (isinstance(probability, bool) or not isinstance(
            probability, (int, float)) or not 0 <= probability <= 1):
        return None
    try:
        cues = []
        for a, b, text, words in data["cues"]:
            if not (type(a) is int and type(b) is int and isinstance(text, str)
                    and isinstance(words, list)):
                return None
            cues.append(Cue(a, b, text, tuple(_word(w) for w in words)))
    except (TypeError, ValueError):
        return None
    return Heard(cues, primary(language), None if probability is None else float(probability))


def _word(item: Any) -> Word:
    start, end, text = item
    if not (type(start) is int and type(end) is int and isinstance(text, str)):
        raise ValueError("not a word")
    return Word(start, end, text)


def _provider(options: SpeechOptions, label: str = "") -> str:
    name = options.provider if options.provider != "auto" else default_provider()
    if name == "none":
        raise SpeechUnavailable(
            "no speech-to-text provider is installed", path=label,
            hint="install the extra (pip install 'repurpose[speech]'), set speech.provider: "
                 "command in shoot.yaml, or put a .srt beside the master")
    return name


def transcript_entry(options: SpeechOptions, digest: str) -> str:
    """The cache entry of this master's transcript: by its content, the provider,
    the settings, and the model and language they come to on this machine."""
    settings = options.model_dump(mode="json")
    name = _provider(options)
    chosen = choose(options.language, options.model) if name == "whisper" else None
    # Detected English is heard by tiny.en where it is installed, else by base.
    told = [chosen.name, chosen.language, chosen.language is None and english_installed()] \
        if chosen else spoken(options.language)
    key = hashlib.sha256(json.dumps([name, settings, told], sort_keys=True).encode()
                         ).hexdigest()[:16]
    return f"{digest}.speech-v{VERSION}-{key}.json"


@register("whisper")
def _whisper(audio: Path, options: SpeechOptions) -> Heard:
    """Whisper, offline. A language to detect is detected by the multilingual model
    on the first speech (up to DETECT_WINDOWS windows of 30 s); English is then
    transcribed by the light tiny.en when it is installed, any other language by
    the multilingual model."""
    try:
        from faster_whisper import WhisperModel, decode_audio
    except ImportError as exc:
        raise SpeechUnavailable("faster-whisper is not installed",
                                hint="pip install 'repurpose[speech]'") from exc
    os.environ.setdefault("HF_HUB_OFFLINE", "1")      # a local folder only, never a hub
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    chosen = choose(options.language, options.model)
    samples = decode_audio(str(audio), sampling_rate=16000)
    if not get_speech_timestamps(samples, VadOptions()):
        return Heard([], chosen.language)    # music, noise, silence: no model to load
    model = WhisperModel(str(folder_of(chosen)), device="cpu", compute_type="int8")
    language, probability = chosen.language, None
    if language is None and not model.model.is_multilingual:
        language = "en"                  # a folder holding an English-only model
    if language is None:
        found, likelihood, _ = model.detect_language(
            samples, vad_filter=True, language_detection_segments=DETECT_WINDOWS)
        language, probability = primary(found) or found, round(float(likelihood), 3)
        if language == "en" and options.model is None and english_installed():
            model = WhisperModel(str(folder_of(choose("en", None))), device="cpu",
                                 compute_type="int8")
    segments, _ = model.transcribe(samples, language=language, word_timestamps=True,
                                   condition_on_previous_text=False,
                                   vad_filter=True)   # music and noise give no words
    cues = []
    for segment in segments:
        words = tuple(Word(round(w.start * 1000), round(w.end * 1000), w.word.strip())
                      for w in (segment.words or []) if w.word.strip())
        text = unicodedata.normalize("NFC", segment.text.strip())
        if text:
            cues.append(Cue(round(segment.start * 1000), round(segment.end * 1000), text, words))
    return Heard(cues, language, probability)


@register("command")
def _command(audio: Path, options: SpeechOptions) -> Heard:
    """Runs speech.command with the audio path added; reads {"segments": [{start, end,
    text, words: [{start, end, word}]}], "language": "hu"} (seconds; the language is
    optional) from its standard output."""
    if not options.command:
        raise SpeechUnavailable("speech.provider is command but speech.command is empty",
                                hint="set speech.command to a program and its arguments")
    argv = [*options.command, str(audio)]
    # Messages name the program only, and never repeat an argument that looks like a
    # secret (--api-key X): they reach the manifest, which others may read.
    name, hidden = Path(argv[0]).name, secret_args(argv)
    try:
        done = run_capped(argv, b"", options.timeout, MAX_REPLY)
    except OSError as exc:
        raise RenderError(f"speech command {name} could not run: "
                          f"{exc.strerror or type(exc).__name__}") from None
    if done.timed_out or done.overflow:
        raise RenderError(f"speech command {name} took longer than {options.timeout:g} s"
                          if done.timed_out else
                          f"speech command {name} printed more than {MAX_REPLY // 2**20} MB")
    if done.returncode != 0:
        tail = (done.stderr_tail.strip().splitlines() or ["no output"])[-1]
        for secret in hidden:
            tail = tail.replace(secret, "***")
        raise RenderError(f"speech command {name} exited {done.returncode}: {tail}")
    try:
        data: Any = json.loads(done.stdout)
        cues = [Cue(round(float(s["start"]) * 1000), round(float(s["end"]) * 1000),
                    unicodedata.normalize("NFC", str(s["text"]).strip()),
                    tuple(Word(round(float(w["start"]) * 1000), round(float(w["end"]) * 1000),
                               str(w["word"]).strip()) for w in s.get("words", [])))
                for s in data["segments"] if str(s["text"]).strip()]
        said = data.get("language")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RenderError(f"speech command printed no valid segments JSON: {exc}") from exc
    told = spoken(options.language)
    language = primary(said) if isinstance(said, str) else None
    return Heard(cues, language or (None if told == "auto" else primary(told)))
