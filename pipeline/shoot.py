"""A shoot: a folder of masters plus an optional shoot.yaml.

`load_shoot` validates shoot.yaml with the same error reporting as presets,
on top of the operator's config file when one is given (pipeline.trust); a
shoot.yaml that is content (a watch inbox, --untrusted) may not set
privileged keys. `ShootContext` joins the settings with the preset catalog
(the shoot's own presets, its per-preset overrides and its shoot-wide
metadata/background choices) and answers which presets each master targets.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.errors import ConfigError, Problem, Refused
from pipeline.model import Asset
from pipeline.presets import Catalog, Definition, load_catalog, validation_problems
from pipeline.schema import Preset, Shoot, SourceOptions
from pipeline.trust import Operator, content_problems, privileged_uses
from pipeline.yamlsource import Lines, load_mapping, merge, origin, rebase

SHOOT_FILE = "shoot.yaml"


@dataclass(frozen=True)
class ShootContext:
    """One shoot's settings and the presets as that shoot sees them."""

    shoot: Shoot
    catalog: Catalog
    folder: Path | None = None
    lines: Lines = field(default_factory=dict)
    operator: Operator = field(default_factory=Operator)
    trusted: bool = True
    presets_dirs: tuple[Path, ...] = ()

    def options(self, asset: Asset) -> SourceOptions:
        """The `sources:` entry of this master. Keys and names are compared in NFC:
        a name typed on macOS (NFD) matches the same name typed elsewhere."""
        by_name = {_nfc(key): value for key, value in self.shoot.sources.items()}
        return by_name.get(_nfc(asset.options_key)) or by_name.get(
            _nfc(Path(asset.options_key).name)) or SourceOptions()

    def targets(self, asset: Asset, only: Sequence[str] = ()) -> tuple[list[Preset], bool]:
        """Presets to render for this master, and whether they were named: -p
        wins, then the source's and the shoot's targets, else every preset that
        is not opt-in. Named presets may cross media (a still becomes a clip, a
        video gives a cover); the defaults keep to the master's own media,
        which only its content tells, in the job."""
        opts = self.options(asset)
        ids = list(only) or opts.targets or self.shoot.targets
        if ids:
            return [self.catalog.get(i) for i in ids], True
        return [self.catalog.get(i) for i in self.catalog.ids()
                if not self.catalog.get(i).opt_in], False

    def unused_sources(self, assets: Sequence[Asset]) -> list[str]:
        """Notes for `sources:` entries of this shoot that match none of its masters."""
        mine = [a for a in assets if a.shoot_dir == self.folder]
        names = {_nfc(a.options_key) for a in mine} | {_nfc(Path(a.options_key).name)
                                                       for a in mine}
        file = self.folder / SHOOT_FILE if self.folder else Path(SHOOT_FILE)
        return [f"{file}: sources.{key} matches no master in this shoot; check the file name"
                for key in self.shoot.sources if _nfc(key) not in names
                and not self.operator.wrote(self.lines, ("sources", key))]

    def audio_bed(self) -> str | None:
        """The sound under clips made from photos, as an absolute path: relative to the
        operator config's folder when it set it, else to the shoot folder."""
        if not self.shoot.audio_bed:
            return None
        base = (self.operator.folder if self.operator.wrote(self.lines, ("audio_bed",))
                else self.folder) or Path(".")
        return str((base / self.shoot.audio_bed).resolve())

    def ai(self, asset: Asset) -> str:
        return self.options(asset).ai or self.shoot.ai

    def effect_folders(self) -> tuple[str, ...]:
        """Where an effect's module is looked up before the Python path: the shoot's
        folder only when the shoot is trusted (content must never supply code), then
        the operator config's folder and the presets dirs."""
        folders = [self.folder] if self.trusted and self.folder else []
        folders += [f for f in (self.operator.folder, *self.presets_dirs) if f]
        return tuple(str(Path(f).absolute()) for f in folders)

    def privileged(self, presets: Sequence[Preset]) -> list[str]:
        """One line per privileged setting this shoot will use (program, URL,
        environment variable, file, Python effect)."""
        file = str(self.folder / SHOOT_FILE) if self.folder else "settings"
        effects = {p.id: p.effect for p in presets if p.effect}
        return privileged_uses(self.shoot, self.lines, file, effects, self.audio_bed())


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def load_shoot(folder: Path | None, presets_dirs: Sequence[Path] = (),
               operator: Operator | None = None, trusted: bool = True) -> ShootContext:
    """Read `folder/shoot.yaml` if there is one, over the operator's config, and build
    the shoot's catalog. An untrusted shoot.yaml asking for a privileged setting, or
    naming a file outside its folder, raises ConfigError naming each key."""
    operator = operator or Operator()
    file = folder / SHOOT_FILE if folder else None
    data, lines = dict(operator.data), dict(operator.lines)
    if file is not None and file.is_file():
        if not trusted and folder is not None and file.is_symlink():
            raise Refused([Problem(str(file), None, "", "is a link; a shoot.yaml that came "
                                   "with the files must be the file itself")])
        own, own_lines = load_mapping(file, "shoot.yaml")
        if not trusted and folder is not None:
            problems = content_problems(own, own_lines, file, folder)
            if problems:
                raise Refused(problems)
        data, lines = _layer(data, lines, own, own_lines)
    source = str(file) if file is not None and file.is_file() else str(operator.file or "")
    try:
        shoot = Shoot.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, Shoot, lines, source)) from exc
    extra = [Definition(raw, rebase(lines, ("presets", i)),
                        (origin(lines, ("presets", i)) or (source, 0))[0])
             for i, raw in enumerate(shoot.presets) if isinstance(raw, dict)]
    catalog = load_catalog(presets_dirs, extra)
    catalog = catalog.with_overrides(_overrides(shoot, lines, catalog))
    _check_ids(shoot, lines, catalog, source)
    ctx = ShootContext(shoot, catalog, folder, lines, operator, trusted, tuple(presets_dirs))
    bed = ctx.audio_bed()
    if bed and not Path(bed).is_file():
        where = origin(lines, ("audio_bed",))
        raise ConfigError([Problem(where[0] if where else source, where[1] if where else None,
                                   "audio_bed", f"{shoot.audio_bed!r} is not a file (looked "
                                   f"for {bed})")])
    return ctx


def _layer(base: dict[str, Any], base_lines: Lines, over: dict[str, Any], over_lines: Lines
           ) -> tuple[dict[str, Any], Lines]:
    """A shoot.yaml over the operator's config: mappings merge key by key, `presets`
    lists add up (the shoot's after the operator's), anything else replaces."""
    theirs = base.get("presets")
    mine = over.get("presets")
    data, lines = merge(base, base_lines, over, over_lines)
    if isinstance(theirs, list) and isinstance(mine, list):
        shift = len(theirs)
        data["presets"] = [*theirs, *mine]
        lines = {p: o for p, o in lines.items() if p[:1] != ("presets",)}
        lines.update({p: o for p, o in base_lines.items() if p[:1] == ("presets",)})
        lines.update({("presets", p[1] + shift, *p[2:]) if len(p) > 1 else p: o
                      for p, o in over_lines.items() if p[:1] == ("presets",)})
    return data, lines


Changes = dict[str, tuple[dict[str, Any], Lines]]


def _overrides(shoot: Shoot, lines: Lines, catalog: Catalog) -> Changes:
    """Per-preset changes: shoot-wide choices first, then `overrides:` by id."""
    out: Changes = {}
    wide: dict[str, Any] = {}
    wide_lines: Lines = {}
    for key in ("metadata", "background"):
        value = getattr(shoot, key)
        if value is not None:
            wide[key] = value
            where = origin(lines, (key,))
            if where:
                wide_lines[(key,)] = where
    if wide:
        for pid in catalog.ids():
            if catalog.get(pid).media == "photo":
                out[pid] = (dict(wide), dict(wide_lines))
    for pid, change in shoot.overrides.items():
        sub = rebase(lines, ("overrides", pid))
        base, base_lines = out.get(pid, ({}, {}))
        out[pid] = ({**base, **change}, {**base_lines, **sub})
    return out


def _check_ids(shoot: Shoot, lines: Lines, catalog: Catalog, file: str) -> None:
    problems = []
    known = set(catalog.ids())
    refs: list[tuple[tuple[Any, ...], str]] = [
        (("targets", i), pid) for i, pid in enumerate(shoot.targets or [])]
    for name, opts in shoot.sources.items():
        refs += [(("sources", name, "targets", i), pid) for i, pid in enumerate(opts.targets or [])]
    for path, pid in refs:
        if pid not in known:
            where = origin(lines, path)
            problems.append(Problem(file, where[1] if where else None, ".".join(map(str, path)),
                                    f"unknown preset {pid!r}; known: {', '.join(sorted(known))}"))
    if problems:
        raise ConfigError(problems)
