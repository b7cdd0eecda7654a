"""`repurpose review OUT --static FILE.html`: one self-contained page to send to
a client with no install: every variant's thumbnail embedded, its caption,
checks and decision. Nothing on it loads from anywhere else."""

from __future__ import annotations

import base64
import os
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from pipeline.errors import PipelineError
from pipeline.outputs import atomic_write
from pipeline.review import files, thumbs
from pipeline.review.cards import FILTERS, card, group_cards
from pipeline.review.decisions import read_manifest

HERE = Path(__file__).resolve().parent


def write_sheet(out: Path, target: Path, jobs: int | None = None) -> int:
    """Write the contact sheet of `out` to `target` (atomically); returns how many
    variants it shows."""
    body = read_manifest(out)
    entries = [e for e in body.get("variants", []) if isinstance(e, dict)]
    found = {str(e.get("path")): files.inside(out, str(e.get("path") or "")) for e in entries}
    made = thumbs.thumbnails(out, [f for f in found.values() if f is not None],
                             jobs=jobs or os.cpu_count() or 1)
    pictures: dict[str, str] = {}
    for path, file in found.items():
        thumb = made.get(file) if file is not None else None
        if thumb is not None and not isinstance(thumb, PipelineError):
            data = base64.b64encode(thumb.read_bytes()).decode("ascii")
            pictures[path] = f"data:image/jpeg;base64,{data}"
    cards = [card(e, i) for i, e in enumerate(entries)]
    env = Environment(loader=PackageLoader("pipeline.review", "templates"),
                      autoescape=select_autoescape(["html"]))
    html = env.get_template("sheet.html").render(
        groups=group_cards(cards), entries={str(e.get("path")): e for e in entries},
        pictures=pictures, filters=FILTERS, out=out.name,
        made=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        style=(HERE / "static" / "studio.css").read_text(encoding="utf-8"),
        counts={key: sum(key in c.filters for c in cards) for key in FILTERS})
    atomic_write(target, html.encode("utf-8"))
    return len(cards)
