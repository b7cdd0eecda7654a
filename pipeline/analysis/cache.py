"""The analysis cache: JSON files named by the master's content digest.

The folder is `REPURPOSE_CACHE`, else `$XDG_CACHE_HOME/repurpose`, else
`~/.cache/repurpose`. Everything in it can be deleted at any time; it is
rebuilt on the next render that needs it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline.outputs import temp_path


def cache_dir() -> Path:
    configured = os.environ.get("REPURPOSE_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "repurpose"


def load(name: str) -> dict[str, Any] | None:
    """A cached entry, or None when it is missing or unreadable (it is then rebuilt)."""
    try:
        data = json.loads((cache_dir() / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def store(name: str, data: dict[str, Any]) -> None:
    """Write an entry atomically; a cache that cannot be written is only slower."""
    target = cache_dir() / name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_path(target)
        temp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(temp, target)
    except OSError:
        return
