"""`repurpose captions`: approve, reject, reset or edit the draft captions of a
rendered OUT folder, in its manifest and each variant's `.caption.txt`. The
decisions go through pipeline.review.decisions, as the review studio's do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from pipeline.errors import PipelineError, printable, write_error

_out = click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
_by = click.option("--by", "who", default=None, help="Who decides [default: $USER].")


@click.group()
def captions() -> None:
    """Approve, reject, reset or edit the draft captions of a rendered OUT folder."""


@contextmanager
def _user_errors(out_dir: Path) -> Iterator[None]:
    """A decision refused (no manifest, no such variant, no reason) is a usage error,
    as it always was here; a failed write says which file and what to do."""
    from pipeline.review.decisions import ReviewError

    try:
        yield
    except ReviewError as exc:
        raise click.UsageError(printable(str(exc))) from exc
    except PipelineError as exc:
        raise click.ClickException(printable(str(exc))) from exc
    except OSError as exc:
        error = write_error(exc, exc.filename or out_dir)
        raise click.ClickException(printable(str(error))) from exc


def _captioned(out_dir: Path, variants: tuple[str, ...]) -> list[dict[str, Any]]:
    """The captioned variants' entries chosen (all of them when none is named)."""
    from pipeline.outputs import MANIFEST
    from pipeline.review.decisions import read_manifest

    with _user_errors(out_dir):
        body = read_manifest(out_dir)
    chosen = [v for v in body["variants"] if isinstance(v, dict) and v.get("caption")
              and (not variants or v.get("path") in variants)]
    missing = set(variants) - {v.get("path") for v in chosen}
    if missing:
        raise click.UsageError(printable(f"no captioned variant {', '.join(sorted(missing))} "
                                         f"in {out_dir / MANIFEST}; paths are relative to OUT"))
    return chosen


def _decide(out_dir: Path, variants: tuple[str, ...], action: str, who: str | None,
            reason: str | None = None) -> tuple[int, str]:
    from pipeline.review.decisions import decide, default_by

    chosen = [v["path"] for v in _captioned(out_dir, variants)]
    with _user_errors(out_dir):
        decided = decide(out_dir, chosen, action, who, reason) if chosen else []
    return len(decided), (who or default_by()).strip()


def _captions(n: int) -> str:
    return f"{n} caption{'s' if n != 1 else ''}"


@captions.command("approve")
@_out
@click.option("--variant", "variants", multiple=True, metavar="PATH",
              help="Approve only this variant (its path in OUT; repeatable). Default: all.")
@_by
def captions_approve(out_dir: Path, variants: tuple[str, ...], who: str | None) -> None:
    """Mark draft captions approved, recording who and when."""
    n, who = _decide(out_dir, variants, "approve", who)
    click.echo(f"{_captions(n)} approved by {printable(who)}")


@captions.command("reject")
@_out
@click.option("--variant", "variants", multiple=True, required=True, metavar="PATH",
              help="The variant to reject (its path in OUT; repeatable).")
@click.option("--reason", required=True, help="What should change (required).")
@_by
def captions_reject(out_dir: Path, variants: tuple[str, ...], reason: str,
                    who: str | None) -> None:
    """Reject variants and their captions, saying why; the next render drafts afresh."""
    n, who = _decide(out_dir, variants, "reject", who, reason)
    click.echo(f"{_captions(n)} rejected by {printable(who)}")


@captions.command("reset")
@_out
@click.option("--variant", "variants", multiple=True, required=True, metavar="PATH",
              help="The variant to reset (its path in OUT; repeatable).")
def captions_reset(out_dir: Path, variants: tuple[str, ...]) -> None:
    """Take variants back to pending: their decision goes, their captions are drafts
    again (or stay edited, when a person wrote them)."""
    n, _ = _decide(out_dir, variants, "reset", None)
    click.echo(f"{_captions(n)} reset")


@captions.command("edit")
@_out
@click.argument("variant")
@click.option("--text", default=None, help="The new caption; default: open $EDITOR.")
@_by
@click.option("--presets-dir", "presets_dirs", multiple=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="The render's presets dirs, for its platform's caption limit (repeatable).")
def captions_edit(out_dir: Path, variant: str, text: str | None, who: str | None,
                  presets_dirs: tuple[Path, ...]) -> None:
    """Change one variant's caption; re-renders keep it."""
    from pipeline.review.decisions import edit_caption, version

    (entry,) = _captioned(out_dir, (variant,))
    seen = None
    if text is None:
        text = click.edit(entry["caption"]["text"])
        if text is None:
            click.echo("unchanged")
            return
        seen = {variant: version(entry)}    # edited meanwhile (the studio): a conflict
    with _user_errors(out_dir):
        edit_caption(out_dir, variant, text, who, seen, presets_dirs)
    click.echo(f"{printable(variant)}: caption edited")
