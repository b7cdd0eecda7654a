"""`repurpose captions`: approve or edit the draft captions of a rendered OUT
folder, in its manifest and each variant's `.caption.txt`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click


@click.group()
def captions() -> None:
    """Approve or edit the draft captions of a rendered OUT folder."""


def _captioned(out_dir: Path, variants: tuple[str, ...]) -> tuple[dict[str, Any], list[Any]]:
    from pipeline.outputs import MANIFEST

    try:
        body = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"{out_dir / MANIFEST}: cannot read it ({exc}); render into "
                               f"{out_dir} first") from exc
    chosen = [v for v in body.get("variants", []) if v.get("caption")
              and (not variants or v["path"] in variants)]
    missing = set(variants) - {v["path"] for v in chosen}
    if missing:
        raise click.UsageError(f"no captioned variant {', '.join(sorted(missing))} in "
                               f"{out_dir / MANIFEST}; paths are relative to OUT")
    return body, chosen


@captions.command("approve")
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--variant", "variants", multiple=True, metavar="PATH",
              help="Approve only this variant (its path in OUT; repeatable). Default: all.")
@click.option("--by", "who", default=None, help="Who approves [default: $USER].")
def captions_approve(out_dir: Path, variants: tuple[str, ...], who: str | None) -> None:
    """Mark draft captions approved, recording who and when."""
    from datetime import datetime, timezone

    from pipeline.outputs import write_manifest

    body, chosen = _captioned(out_dir, variants)
    who = who or os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for variant in chosen:
        variant["caption"].update(status="approved", approved_by=who, approved_at=when)
    write_manifest(out_dir, body)
    click.echo(f"{len(chosen)} caption{'s' if len(chosen) != 1 else ''} approved by {who}")


@captions.command("edit")
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("variant")
@click.option("--text", default=None, help="The new caption; default: open $EDITOR.")
def captions_edit(out_dir: Path, variant: str, text: str | None) -> None:
    """Change one variant's caption; re-renders keep it."""
    from pipeline.outputs import atomic_write, write_manifest

    body, (entry,) = _captioned(out_dir, (variant,))
    if text is None:
        text = click.edit(entry["caption"]["text"])
        if text is None:
            click.echo("unchanged")
            return
    text = text.rstrip("\n")
    atomic_write((out_dir / variant).with_suffix(".caption.txt"), (text + "\n").encode())
    entry["caption"].update(text=text, status="edited")
    write_manifest(out_dir, body)
    click.echo(f"{variant}: caption edited")
