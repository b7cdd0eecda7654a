"""`repurpose export OUT --to FORMAT`: OUT's approved posts as a scheduler's
bulk-import file, our own post plan, or the platforms' API request bodies
(pipeline.export). Skipped variants are listed on stderr with their reasons."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline.errors import PipelineError, printable


@click.command()
@click.argument("out_dir", metavar="OUT",
                type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--to", "fmt", required=True, metavar="FORMAT",
              help="metricool, hootsuite, vistasocial, csv, json or api (or a plug-in's).")
@click.option("--out", "target", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (a format writing several adds -<platform> to its name) "
                   "[default: stdout].")
@click.option("--base-url", default=None, metavar="URL",
              help="Where OUT is published (a CDN, a synced bucket, a shared-link root): "
                   "each file's URL is this plus its path in OUT.")
@click.option("--start", default=None, metavar="DATETIME",
              help="When the first master's posts go out, e.g. 2026-12-01T09:00 (in --tz).")
@click.option("--every", default=None, metavar="DURATION",
              help="Time between one master's posts and the next's: 1d, 4h, 90m, PT2H.")
@click.option("--tz", default=None, metavar="ZONE",
              help="Time zone of the times, e.g. Europe/Budapest [default: this machine's]; "
                   "set the scheduler's account to the same zone.")
@click.option("--include-drafts", is_flag=True,
              help="Also export variants nobody approved yet, marked as drafts.")
@click.option("--presets-dir", "presets_dirs", multiple=True,
              type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Presets the render used besides the built-ins (older manifests).")
def export(out_dir: Path, fmt: str, target: Path | None, base_url: str | None,
           start: str | None, every: str | None, tz: str | None, include_drafts: bool,
           presets_dirs: tuple[Path, ...]) -> None:
    """Write OUT's approved variants for a scheduler or a publishing API."""
    from pipeline.export import export as make
    from pipeline.export.schedule import ScheduleError, asked

    try:
        first, spacing, where = asked(start, every, tz)
        result = make(out_dir.resolve(), fmt, base_url=base_url, start=first,
                      every=spacing, tz=where,
                      include_drafts=include_drafts, presets_dirs=list(presets_dirs))
    except (PipelineError, ScheduleError) as exc:
        raise click.UsageError(printable(str(exc))) from exc
    for skip in result.skipped:
        click.echo(printable(f"skipped: {skip.path}: {skip.reason}"), err=True)
    for note in result.notes:
        click.echo(printable(f"note: {note}"), err=True)
    written = _write(result.files, target, result.exporter.extension)
    drafts = sum(p.status == "draft" for p in result.posts)
    click.echo(f"{len(result.posts)} post(s){f' ({drafts} draft)' if drafts else ''}, "
               f"{len(result.skipped)} skipped; {', '.join(written) or 'nothing written'}"
               f"{f'; times in {where}' if first else ''}", err=True)


def _write(files: list[tuple[str, bytes]], target: Path | None, extension: str) -> list[str]:
    from pipeline.export import file_name
    from pipeline.outputs import atomic_write

    if not files:
        return []
    if target is None:
        if len(files) > 1:
            raise click.UsageError(f"this export is {len(files)} files "
                                   f"({', '.join(tag for tag, _ in files)}); give --out FILE")
        sys.stdout.buffer.write(files[0][1])
        sys.stdout.flush()
        return ["stdout"]
    names = []
    for tag, data in files:
        path = target if not tag else target.with_name(file_name(
            target.stem or "export", tag, target.suffix.lstrip(".") or extension))
        try:
            atomic_write(path, data)
        except OSError as exc:
            raise click.ClickException(f"cannot write {path}: {exc.strerror}") from exc
        names.append(str(path))
    return names

