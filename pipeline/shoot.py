"""A shoot: a folder of masters plus an optional shoot.yaml.

`load_shoot` validates shoot.yaml with the same error reporting as presets;
`ShootContext` joins it with the preset catalog (the shoot's own presets,
its per-preset overrides and its shoot-wide metadata/background choices) and
answers which presets each master targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.errors import ConfigError, Problem
from pipeline.model import Asset
from pipeline.presets import Catalog, Definition, load_catalog, validation_problems
from pipeline.schema import Preset, Shoot, SourceOptions
from pipeline.yamlsource import Lines, load_yaml, origin, rebase

SHOOT_FILE = "shoot.yaml"


@dataclass(frozen=True)
class ShootContext:
    """One shoot's settings and the presets as that shoot sees them."""

    shoot: Shoot
    catalog: Catalog
    folder: Path | None = None

    def options(self, asset: Asset) -> SourceOptions:
        return self.shoot.sources.get(asset.options_key) or self.shoot.sources.get(
            Path(asset.options_key).name) or SourceOptions()

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
        names = {a.options_key for a in mine} | {Path(a.options_key).name for a in mine}
        file = self.folder / SHOOT_FILE if self.folder else Path(SHOOT_FILE)
        return [f"{file}: sources.{key} matches no master in this shoot; check the file name"
                for key in self.shoot.sources if key not in names]

    def audio_bed(self) -> str | None:
        if not self.shoot.audio_bed:
            return None
        base = self.folder or Path(".")
        return str((base / self.shoot.audio_bed).absolute())

    def ai(self, asset: Asset) -> str:
        return self.options(asset).ai or self.shoot.ai


def load_shoot(folder: Path | None, presets_dirs: Sequence[Path] = ()) -> ShootContext:
    """Read `folder/shoot.yaml` if there is one and build the shoot's catalog."""
    file = folder / SHOOT_FILE if folder else None
    if file is None or not file.is_file():
        return ShootContext(Shoot(), load_catalog(presets_dirs), folder)
    data, lines = load_yaml(file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(str(file), 1, "", "shoot.yaml holds a mapping of settings")])
    try:
        shoot = Shoot.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, Shoot, lines, str(file))) from exc
    extra = [Definition(raw, rebase(lines, ("presets", i)), str(file))
             for i, raw in enumerate(shoot.presets) if isinstance(raw, dict)]
    catalog = load_catalog(presets_dirs, extra)
    catalog = catalog.with_overrides(_overrides(shoot, lines, catalog))
    _check_ids(shoot, lines, catalog, str(file))
    if shoot.audio_bed and not (file.parent / shoot.audio_bed).is_file():
        where = origin(lines, ("audio_bed",))
        raise ConfigError([Problem(str(file), where[1] if where else None, "audio_bed",
                                   f"{shoot.audio_bed!r} is not a file beside shoot.yaml")])
    return ShootContext(shoot, catalog, folder)


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
