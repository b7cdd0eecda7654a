"""`repurpose review OUT`: the review studio over an output folder (the
pages are in pipeline.review, installed by the `review` extra)."""

from __future__ import annotations

import os
import secrets
import threading
import webbrowser
from pathlib import Path

import click


@click.command()
@click.argument("out_dir", metavar="OUT",
                type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on; any other than loopback needs the printed token.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--open", "open_browser", is_flag=True, help="Open the studio in a browser.")
@click.option("--by", "who", default=None, help="Who decides [default: $USER].")
@click.option("--presets-dir", "presets_dirs", multiple=True,
              type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Presets the render used besides the built-ins, for their safe areas.")
@click.option("--masters", "master_dirs", multiple=True,
              type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="The folder the render ran from, when the masters' paths in the manifest "
                   "are relative to it [default: here, OUT's parent, a watch folder's Source/].")
@click.option("--trust-shoots", is_flag=True,
              help="Render again as `repurpose render` does, honouring privileged settings "
                   "(programs, effects) in the shoots' shoot.yaml; default: --untrusted.")
@click.option("--static", "sheet", default=None, metavar="FILE.html",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Write one self-contained page (thumbnails, captions, checks, decisions) "
                   "to send to someone with no install, instead of serving.")
def review(out_dir: Path, host: str, port: int, open_browser: bool, who: str | None,
           presets_dirs: tuple[Path, ...], master_dirs: tuple[Path, ...],
           trust_shoots: bool, sheet: Path | None) -> None:
    """See every variant of OUT, approve or reject it and its caption."""
    try:
        import uvicorn

        from pipeline.review.app import Studio, address, create_app
        from pipeline.review.masters import bases
    except ImportError as exc:
        raise click.UsageError(f"the review studio needs its extra ({exc.name} is missing): "
                               "pip install 'repurpose[review]'") from exc
    from pipeline.errors import PipelineError, printable
    from pipeline.review.decisions import read_manifest

    out = out_dir.resolve()
    try:
        read_manifest(out)
    except PipelineError as exc:
        raise click.UsageError(printable(str(exc))) from exc
    if sheet is not None:
        from pipeline.review.sheet import write_sheet

        try:
            count = write_sheet(out, sheet)
        except PipelineError as exc:
            raise click.ClickException(printable(str(exc))) from exc
        click.echo(f"{count} variant{'s' if count != 1 else ''} on {sheet}")
        return
    port = _listening_port(host, port)
    studio = Studio(out=out, by=who or os.environ.get("USER") or "unknown",
                    token=secrets.token_urlsafe(24), host=host, port=port,
                    safe_areas=_safe_areas(presets_dirs), presets_dirs=presets_dirs,
                    trust_shoots=trust_shoots,
                    masters=bases(out, tuple(d.resolve() for d in master_dirs)))
    if studio.local:
        studio.hosts = {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")}
    threading.Thread(target=_warm, args=(out,), daemon=True).start()
    link = address(studio)
    click.echo(f"review: {link}", err=False)
    if not studio.local:
        click.echo("  anyone with this address (its token) can approve and reject: share it "
                   "only with the reviewers", err=True)
    if open_browser:
        webbrowser.open(link)
    uvicorn.run(create_app(studio), host=host, port=port, log_level="warning",
                server_header=False)


def _safe_areas(presets_dirs: tuple[Path, ...]) -> dict[str, tuple[float, float, float, float]]:
    """Every known preset's safe area, where it has one (a preset error is a usage error:
    the studio would draw wrong zones)."""
    from pipeline.errors import ConfigError
    from pipeline.presets import load_catalog

    try:
        catalog = load_catalog(presets_dirs)
    except ConfigError as exc:
        raise click.UsageError("; ".join(str(p) for p in exc.problems)) from exc
    found = {}
    for preset_id, preset in catalog.presets.items():
        area = preset.safe_area
        if area and (area.top or area.right or area.bottom or area.left):
            found[preset_id] = (area.top, area.right, area.bottom, area.left)
    return found


def _warm(out: Path) -> None:
    """Thumbnails for every variant, made while the first page loads."""
    from pipeline.errors import PipelineError
    from pipeline.review import files, thumbs
    from pipeline.review.decisions import read_manifest

    try:
        variants = read_manifest(out)["variants"]
    except PipelineError:
        return                      # the overview says why
    found = [files.inside(out, str(v.get("path") or "")) for v in variants if isinstance(v, dict)]
    thumbs.thumbnails(out, [f for f in found if f is not None], jobs=os.cpu_count() or 1)


def _listening_port(host: str, port: int) -> int:
    """`port` (a free one for 0) once it is known that `host` can listen on it; else
    a usage error naming both, before anything starts."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            return int(probe.getsockname()[1])
    except OSError as exc:
        raise click.UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                               "give another --host or --port") from exc
