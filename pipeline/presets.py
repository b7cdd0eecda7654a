"""Preset loading: built-ins, --presets-dir folders and a shoot's own presets,
with `extends:` inheritance and per-shoot overrides.

A preset file holds one preset (a mapping) or a list of them. Later layers add
presets or replace earlier ones by id; `extends: ID` deep-merges the named
preset under this one (a preset may extend the earlier definition of its own
id to change a few keys). Every problem in every file is collected and raised
together as one ConfigError, each with file, line, key path and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pipeline.errors import ConfigError, Problem
from pipeline.schema import Preset
from pipeline.yamlsource import Lines, dotted, load_yaml, merge, origin, rebase


def builtin_dir() -> Path:
    """Where the built-in presets are: inside the wheel, or the source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "presets", here.parent / "presets"):
        if candidate.is_dir():
            return candidate
    raise ConfigError([Problem(str(here / "presets"), None, "",
                               "built-in presets are missing; reinstall repurpose")])


@dataclass(frozen=True)
class Definition:
    """A preset as written: raw data, where each key came from, its file."""

    raw: dict[str, Any]
    lines: Lines
    file: str


@dataclass
class Catalog:
    """Every known preset by id, validated."""

    definitions: dict[str, Definition] = field(default_factory=dict)
    presets: dict[str, Preset] = field(default_factory=dict)

    def ids(self) -> list[str]:
        return sorted(self.presets)

    def get(self, preset_id: str) -> Preset:
        try:
            return self.presets[preset_id]
        except KeyError:
            raise ConfigError([Problem("presets", None, "", f"unknown preset {preset_id!r}; "
                                       f"known: {', '.join(self.ids())}")]) from None

    def file_of(self, preset_id: str) -> str:
        return self.definitions[preset_id].file

    def with_overrides(self, overrides: dict[str, tuple[dict[str, Any], Lines]]) -> Catalog:
        """A new catalog with partial changes merged onto presets by id."""
        problems: list[Problem] = []
        defs = dict(self.definitions)
        for preset_id, (change, lines) in overrides.items():
            if preset_id not in defs:
                file, line = origin(lines, ()) or ("shoot.yaml", None)
                problems.append(Problem(file, line, f"overrides.{preset_id}",
                                        f"unknown preset; known: {', '.join(self.ids())}"))
                continue
            if "id" in change and change["id"] != preset_id:
                file, line = origin(lines, ("id",)) or ("shoot.yaml", None)
                problems.append(Problem(file, line, f"overrides.{preset_id}.id",
                                        "an override cannot rename a preset"))
                continue
            base = defs[preset_id]
            raw, merged_lines = merge(base.raw, base.lines, change, lines)
            defs[preset_id] = Definition(raw, merged_lines, base.file)
        return _validate_all(defs, problems)


def read_definitions(path: Path) -> list[Definition]:
    """The presets written in one file (a mapping, or a list of mappings)."""
    data, lines = load_yaml(path)
    items: list[tuple[Any, Lines]]
    if isinstance(data, list):
        items = [(item, rebase(lines, (i,))) for i, item in enumerate(data)]
    elif isinstance(data, dict):
        items = [(data, lines)]
    else:
        raise ConfigError([Problem(str(path), 1, "", "a preset file holds a preset mapping "
                                   "or a list of presets")])
    out, problems = [], []
    for raw, sub in items:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            file, line = origin(sub, ()) or (str(path), None)
            problems.append(Problem(file, line, "",
                                    "each preset needs an id: (lowercase-with-dashes)"))
            continue
        out.append(Definition(raw, sub, str(path)))
    if problems:
        raise ConfigError(problems)
    return out


def load_catalog(presets_dirs: Sequence[Path] = (), extra: Iterable[Definition] = ()) -> Catalog:
    """Built-ins, then each presets dir in order, then `extra` (a shoot's presets)."""
    problems: list[Problem] = []
    layers: list[list[Definition]] = []
    for folder in [builtin_dir(), *presets_dirs]:
        files = sorted(p for p in Path(folder).glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
        if folder != builtin_dir() and not Path(folder).is_dir():
            problems.append(Problem(str(folder), None, "", "presets dir does not exist"))
        layer: list[Definition] = []
        for file in files:
            try:
                layer.extend(read_definitions(file))
            except ConfigError as exc:
                problems.extend(exc.problems)
        layers.append(layer)
    layers.append(list(extra))
    defs: dict[str, Definition] = {}
    for layer in layers:
        seen: dict[str, Definition] = {}
        for d in layer:
            pid = d.raw["id"]
            if pid in seen:
                line = origin(d.lines, ("id",))
                problems.append(Problem(d.file, line[1] if line else None, f"{pid}.id",
                                        f"duplicate id; also defined in {seen[pid].file}"))
                continue
            seen[pid] = d
        # Extends is resolved per layer so a preset can extend the earlier
        # definition of its own id.
        pending = dict(seen)
        for pid in list(pending):
            resolved = _resolve_extends(pid, pending, defs, problems, ())
            if resolved:
                defs[pid] = resolved
    return _validate_all(defs, problems)


def _resolve_extends(pid: str, layer: dict[str, Definition], below: dict[str, Definition],
                     problems: list[Problem], chain: tuple[str, ...]) -> Definition | None:
    d = layer[pid]
    parent_id = d.raw.get("extends")
    if parent_id is None:
        return d
    where = origin(d.lines, ("extends",))
    line = where[1] if where else None
    if not isinstance(parent_id, str):
        problems.append(Problem(d.file, line, f"{pid}.extends", "extends takes one preset id"))
        return None
    if parent_id in chain:
        problems.append(Problem(d.file, line, f"{pid}.extends",
                                f"circular extends: {' -> '.join(chain + (pid, parent_id))}"))
        return None
    if parent_id != pid and parent_id in layer:
        parent = _resolve_extends(parent_id, layer, below, problems, chain + (pid,))
    else:
        parent = below.get(parent_id)
    if parent is None:
        known = ", ".join(sorted(set(layer) | set(below)))
        problems.append(Problem(d.file, line, f"{pid}.extends",
                                f"unknown preset {parent_id!r}; known: {known}"))
        return None
    child = {k: v for k, v in d.raw.items() if k != "extends"}
    child_lines = {p: o for p, o in d.lines.items() if p[:1] != ("extends",)}
    raw, lines = merge(parent.raw, parent.lines, child, child_lines)
    return Definition(raw, lines, d.file)


def _validate_all(defs: dict[str, Definition], problems: list[Problem]) -> Catalog:
    presets: dict[str, Preset] = {}
    for pid, d in defs.items():
        try:
            presets[pid] = Preset.model_validate(d.raw)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, Preset, d.lines, d.file, prefix=pid))
    if problems:
        raise ConfigError(problems)
    return Catalog(defs, presets)


def validation_problems(exc: ValidationError, model: type[BaseModel], lines: Lines,
                        file: str, prefix: str = "") -> list[Problem]:
    """Turn pydantic's errors into Problems with file, line, key path and what is allowed."""
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = origin(lines, loc)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = allowed_keys(model, loc[:-1])
            message = f"unknown key; allowed here: {', '.join(allowed)}"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif message.startswith("Value error, "):
            message = message[len("Value error, "):]
        path = dotted(loc)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        out.append(Problem(where[0] if where else file, where[1] if where else None, path, message))
    return out


def allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model at `loc`, for 'unknown key' messages."""
    current: Any = model
    for part in loc:
        is_model = isinstance(current, type) and issubclass(current, BaseModel)
        if isinstance(part, int) or not is_model:
            continue
        info = current.model_fields.get(part)
        if info is None:
            return []
        current = _model_in(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
