"""The master beside its variant: where the studio finds it, how large it is,
and what the plan cut from it (the crop window; for video the camera path's
keyframes and the kept ranges)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.model import Asset
from pipeline.probe import probe
from pipeline.review import files


@dataclass(frozen=True)
class Framing:
    """The plan drawn over the master, in the master's display pixels."""
    width: int
    height: int
    crop: tuple[float, float, float, float] | None        # left, top, right, bottom
    keys: tuple[tuple[float, float, float], ...]          # ms, window centre x, y
    kept: tuple[tuple[float, float], ...]                 # fractions of the master's length
    duration_ms: int


def bases(out: Path, given: tuple[Path, ...] = ()) -> list[Path]:
    """Where a manifest's `source` labels may be relative to: the folders given,
    the working folder, OUT's parent, and a watch folder's Source/ beside Output/."""
    found = [*given, Path.cwd(), out.parent]
    if out.name == "Output":
        found.append(out.parent / "Source")
    return found


def find(out: Path, entry: dict[str, Any], where: list[Path]) -> Path | None:
    """The entry's master, only inside one of the folders `where`: a planted
    manifest's `source` (absolute, or climbing out with `..`) shows no file of
    the host's, to the operator or to a reviewer with the token."""
    source = entry.get("source")
    found = files.master(out, source, where) if isinstance(source, str) else None
    return found if found is not None and _within(found, where) else None


def _within(path: Path, where: list[Path]) -> bool:
    return any(path.is_relative_to(base.resolve()) for base in where)


def base_of(out: Path, label: str, where: list[Path]) -> Path | None:
    """The folder of `where` that `label` (a manifest `source`) is relative to, where
    the master is found: a render from there gives it the same label."""
    if not label or Path(label).is_absolute():
        return None
    found = find(out, {"source": label}, where)
    for base in where:
        if found is not None and (base / label).resolve() == found:
            return base
    return None


def framing(entry: dict[str, Any], master: Path) -> Framing | None:
    """What the plan cut from `master`, or None when it cannot be read."""
    try:
        info = probe(Asset(master, master.name, master.stem, master.parent, master.name))
    except (PipelineError, OSError):
        return None
    plan = entry.get("plan") if isinstance(entry.get("plan"), dict) else {}
    assert isinstance(plan, dict)
    crop = plan.get("crop")
    box = None
    if isinstance(crop, dict) and all(isinstance(crop.get(k), (int, float))
                                      for k in ("left", "top", "right", "bottom")):
        box = (float(crop["left"]), float(crop["top"]), float(crop["right"]),
               float(crop["bottom"]))
    duration = int(getattr(info, "duration_ms", 0) or 0)
    keys: list[tuple[float, float, float]] = []
    if box is not None:
        half_w, half_h = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
        for key in plan.get("path") or []:
            if isinstance(key, list) and len(key) == 3:
                keys.append((float(key[0]), float(key[1]) + half_w, float(key[2]) + half_h))
    kept: list[tuple[float, float]] = []
    if duration > 0:
        for segment in plan.get("segments") or []:
            if isinstance(segment, list) and len(segment) == 2:
                start, end = (max(0.0, min(1.0, float(t) / duration)) for t in segment)
                kept.append((start, end))
    return Framing(info.width, info.height, box, tuple(keys), tuple(kept), duration)
