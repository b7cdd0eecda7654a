"""The studio's Export action: `repurpose export` (pipeline.export) run with the
form's fields, its files handed back as text for the page to offer as
downloads. Nothing is written into OUT."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.export import EXPORTERS, Result, export, file_name, names
from pipeline.export.schedule import asked as schedule

# The form's text fields and the longest each may be.
FIELDS = {"format": 64, "base_url": 2048, "start": 64, "every": 32, "tz": 64}


def formats() -> list[tuple[str, str]]:
    """Each format's name and description; a plug-in's is not loaded until chosen."""
    return [(name, EXPORTERS[name].description if name in EXPORTERS else "")
            for name in names()]


def asked(data: dict[str, Any]) -> dict[str, Any] | str:
    """The request's fields: strings (missing or null is empty) no longer than
    FIELDS allows, and include_drafts true or false; else what is wrong."""
    out: dict[str, Any] = {}
    for key, most in FIELDS.items():
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            return f"{key}: give text"
        if value and len(value) > most:
            return f"{key}: at most {most} characters"
        out[key] = (value or "").strip()
    drafts = data.get("include_drafts", False)
    if not isinstance(drafts, bool):
        return "include_drafts: give true or false"
    return {**out, "include_drafts": drafts}


def run(out_dir: Path, presets_dirs: Sequence[Path], fields: dict[str, Any]) -> Result:
    """The export as the CLI makes it, with the form's fields for its options (an
    unknown format is refused by pipeline.export.find)."""
    start, every, where = schedule(fields["start"], fields["every"], fields["tz"])
    return export(out_dir, fields["format"], base_url=fields["base_url"] or None,
                  start=start, every=every, tz=where, include_drafts=fields["include_drafts"],
                  presets_dirs=presets_dirs)


def reply(result: Result) -> dict[str, Any]:
    """The page's view of an export: each file as `<format>[-tag].<ext>` and its
    text, the counts, and what was left out with its reason."""
    chosen = result.exporter
    return {"files": [{"name": file_name(chosen.name, tag, chosen.extension),
                       "text": data.decode("utf-8", "replace")}
                      for tag, data in result.files],
            "posts": len(result.posts),
            "drafts": sum(post.status == "draft" for post in result.posts),
            "skipped": [{"path": skip.path, "reason": skip.reason} for skip in result.skipped],
            "notes": list(result.notes)}
