"""The `repurpose` command line.

Library errors become one user-facing line here, and only here; results go
to stdout, progress and diagnostics to stderr. Exit codes: 0 everything
rendered, 1 some inputs failed (the others rendered), 2 usage or preset error.
REPURPOSE_DEBUG=1 shows tracebacks. `repurpose captions` is in clicaptions.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from pipeline import __version__
from pipeline.clicaptions import captions
from pipeline.cliexport import export
from pipeline.clireview import review
from pipeline.errors import ConfigError, PipelineError, SetupError, printable

F = TypeVar("F", bound=Callable[..., Any])
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _errors_to_exit(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(f"error: {printable(str(problem))}", err=True)
            if exc.hint:
                click.echo(f"  {exc.hint}", err=True)
            _debug()
            sys.exit(EXIT_USAGE)
        except SetupError as exc:
            click.echo(f"error: {printable(str(exc))}", err=True)
            _debug()
            sys.exit(EXIT_USAGE)
        except PipelineError as exc:
            click.echo(f"error: {printable(str(exc))}", err=True)
            _debug()
            sys.exit(EXIT_SOME_FAILED)
    return wrapper  # type: ignore[return-value]


def _debug() -> None:
    if os.environ.get("REPURPOSE_DEBUG"):
        import traceback

        traceback.print_exc()


_paths = click.Path(exists=True, path_type=Path)
_presets_dir = click.option("--presets-dir", "presets_dirs", multiple=True,
                            type=click.Path(file_okay=False, path_type=Path),
                            help="Folder of extra or overriding preset YAML files (repeatable).")


_config = click.option("--config", "config", default=None,
                       type=click.Path(dir_okay=False, exists=True, path_type=Path),
                       help="Operator config file (shoot.yaml's shape) under every shoot: the "
                            "place for privileged settings (programs, URLs, keys).")
_untrusted = click.option("--untrusted", is_flag=True,
                          help="Take shoot.yaml files among the sources as content (a "
                               "downloaded folder or ZIP): they may not run programs, call "
                               "hosts, read variables or files outside their folder.")


_notify = click.option("--notify", "notify_url", default=None, metavar="URL",
                       help="POST a JSON summary of each finished render to this webhook "
                            "(or `notify: {url}` in --config); never fails the render.")
_events = click.option("--events", is_flag=True,
                       help="Print each finished render's summary as a JSON line on stdout.")


def _notifier(url: str | None, events: bool, operator: Any) -> Any:
    """The operator's hand-off: --notify over the --config file's `notify:`."""
    from pipeline.notify import Notifier, check_url

    settings = operator.notify
    chosen = url or (settings.url if settings else None)
    if chosen:
        try:
            check_url(chosen)
        except ValueError as exc:
            raise click.UsageError(f"--notify: {exc}") from exc
    limits = {"timeout": settings.timeout, "attempts": settings.attempts} if settings else {}
    return Notifier(chosen, events, say=lambda line: click.echo(line, err=True), **limits)


_broker = click.option("--broker", default=None, envvar="REPURPOSE_BROKER", metavar="URL",
                       help="Send each master to queue workers at this Redis URL "
                            "(redis://host:6379/0; or REPURPOSE_BROKER) instead of "
                            "rendering here; needs the queue extra and `repurpose worker`.")


def _announce(line: str) -> None:
    click.echo(f"privileged: {printable(line)}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="repurpose")
def cli() -> None:
    """Turn master photos into every platform's variant, ready to upload."""


@cli.command()
@click.argument("sources", nargs=-1, required=True, type=_paths)
@click.option("-p", "--preset", "only", multiple=True, metavar="ID",
              help="Render only this preset (repeatable); default: the shoot's targets.")
@click.option("--out", "out_dir", default="out", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@_presets_dir
@click.option("--force", is_flag=True, help="Render again even when nothing changed.")
@click.option("--dry-run", is_flag=True, help="Plan and list variants; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON on stdout.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Masters rendered in parallel [default: number of cores].")
@click.option("--force-captions", is_flag=True,
              help="Draft captions again, even those a person approved or edited.")
@_config
@_untrusted
@_notify
@_events
@_broker
@_errors_to_exit
def render(sources: tuple[Path, ...], only: tuple[str, ...], out_dir: Path,
           presets_dirs: tuple[Path, ...], force: bool, dry_run: bool, as_json: bool,
           jobs: int | None, force_captions: bool, config: Path | None,
           untrusted: bool, notify_url: str | None, events: bool,
           broker: str | None) -> None:
    """Render SOURCE files, folders or ZIPs into OUT/<preset>/<name>.<ext>.

    The shoot.yaml of a folder you render is trusted like a Makefile: every
    setting of it that runs a program, calls a host, reads a variable or a file
    is named on stderr before rendering. --untrusted refuses such settings."""
    from pipeline.ffmpeg import FfmpegError
    from pipeline.progress import ProgressBar
    from pipeline.runner import run
    from pipeline.trust import load_operator

    operator = load_operator(config)
    notifier = _notifier(notify_url, events, operator)
    bar = ProgressBar()
    try:
        report = run(list(sources), out_dir, list(presets_dirs), only, force, dry_run, jobs,
                     on_start=bar.start, on_fraction=bar.moved, force_captions=force_captions,
                     trusted=not untrusted, operator=operator, announce=_announce,
                     broker=broker)
    finally:
        bar.finish()
    for note in report.notes:
        click.echo(f"warning: {printable(note)}", err=True)
    for err in report.errors:
        click.echo(f"error: {printable(str(err))}", err=True)
        if os.environ.get("REPURPOSE_DEBUG") and isinstance(err, FfmpegError):
            click.echo("  command: " + " ".join(shlex.quote(a) for a in err.argv), err=True)
            click.echo("  it said:\n" + err.stderr_tail, err=True)
    if as_json:
        click.echo(json.dumps(report.manifest, indent=2, ensure_ascii=False, default=str))
    else:
        _summary(report, out_dir, dry_run)
    if notifier and not dry_run:
        from pipeline.notify import summary

        try:
            notifier.send(summary("render.finished", [str(s) for s in sources],
                                  out_dir.absolute(), report))
        except Exception as exc:  # noqa: BLE001 - the render's outcome never depends on it
            click.echo(printable(f"notify: not sent ({type(exc).__name__}: {exc})"), err=True)
    sys.exit(EXIT_SOME_FAILED if report.failed else EXIT_OK)


def _summary(report: Any, out_dir: Path, dry_run: bool) -> None:
    counts: dict[str, int] = {}
    for result in report.results:
        counts[result.status] = counts.get(result.status, 0) + 1
        if dry_run:
            click.echo(f"{result.path}\t{result.source}")
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    failed_sources = {e.path for e in report.errors if e.preset is None}
    if failed_sources:
        parts.append(f"{len(failed_sources)} input(s) failed")
    where = "" if dry_run else f" in {out_dir} (manifest.json)"
    click.echo(f"{', '.join(parts) or 'nothing to do'}{where}")


@cli.command()
@click.argument("file", type=_paths)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_errors_to_exit
def probe(file: Path, as_json: bool) -> None:
    """Show what FILE is: format, size after rotation, mode, bit depth, profile."""
    from pipeline.model import Asset
    from pipeline.probe import probe as probe_file

    info = probe_file(Asset(file, str(file), file.stem, file.parent, file.name))
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2))
        return
    for key, value in info.to_dict().items():
        click.echo(f"{key:14} {value}")


@cli.command()
@click.argument("source", type=_paths)
@click.option("-p", "--preset", "only", multiple=True, metavar="ID",
              help="Preset to plan (repeatable); default: the shoot's targets.")
@_presets_dir
@click.option("--json", "as_json", is_flag=True, help="Print the plans as JSON.")
@_config
@_untrusted
@_errors_to_exit
def plan(source: Path, only: tuple[str, ...], presets_dirs: tuple[Path, ...],
         as_json: bool, config: Path | None, untrusted: bool) -> None:
    """Show the crop, scale and encoding decisions for SOURCE, without rendering."""
    from pipeline.runner import run
    from pipeline.trust import load_operator

    report = run([source], Path("out"), list(presets_dirs), only, dry_run=True, jobs=1,
                 trusted=not untrusted, operator=load_operator(config), announce=_announce)
    for err in report.errors:
        click.echo(f"error: {printable(str(err))}", err=True)
    plans = [r.plan for r in report.results if r.plan]
    if as_json:
        click.echo(json.dumps(plans, indent=2, ensure_ascii=False))
    else:
        for p in plans:
            crop = p["crop"]
            click.echo(f"{p['preset']:26} {p['fit']:8} {p['size'][0]}x{p['size'][1]}  "
                       f"crop ({crop['left']:.0f},{crop['top']:.0f})-({crop['right']:.0f},"
                       f"{crop['bottom']:.0f})  scale {p['scale']:.3f}  -> {p['output']}")
            for start, end in p.get("segments", ()):
                click.echo(f"{'':26} keeps {start / 1000:.2f}-{end / 1000:.2f} s")
            for note in p.get("cut_notes", ()):
                click.echo(f"{'':26} cut: {note}")
            if p.get("framing"):
                click.echo(f"{'':26} framing: {p['framing']}")
            keys = [f"{t / 1000:.1f}s ({x:g},{y:g})" for t, x, y in p.get("path", ())]
            for row in range(0, len(keys), 5):
                lead = f"camera path, {len(keys)} keyframes:" if row == 0 else ""
                click.echo(f"{'':26} {lead:32} {'  '.join(keys[row:row + 5])}")
            for w in p["warnings"]:
                click.echo(f"{'':26} warning: {w}")
    sys.exit(EXIT_SOME_FAILED if report.failed else EXIT_OK)


@cli.command()
@click.argument("inbox", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where variants go [default: INBOX/Output].")
@_presets_dir
@click.option("--settle", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds a file's size and date must stay unchanged before it is taken.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Masters rendered at once [default: 1]; each keeps its ledger entry, "
                   "and a kill -9 leaves every one of them to be taken again.")
@click.option("--once", is_flag=True, help="Process what is there, then exit: 0 when all of "
                                           "it is done, 1 when anything failed or is left.")
@click.option("--status", is_flag=True, help="Print the ledger's summary and exit.")
@click.option("--retry-failed", is_flag=True, help="Put failed files back in the inbox, exit.")
@_config
@click.option("--trust-inbox", is_flag=True,
              help="Take shoot.yaml files in INBOX as operator configuration: they may run "
                   "programs, call hosts and read files. Only for a folder nobody else can "
                   "write to.")
@click.option("--retry-wait", default=30.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds before a transient failure (a full or read-only disk, a render "
                   "process that died) is tried again; doubles each time, up to 15 minutes.")
@_notify
@_events
@_broker
@_errors_to_exit
def watch(inbox: Path, out_dir: Path | None, presets_dirs: tuple[Path, ...], settle: float,
          jobs: int | None, once: bool, status: bool, retry_failed: bool,
          config: Path | None, trust_inbox: bool, retry_wait: float,
          notify_url: str | None, events: bool, broker: str | None) -> None:
    """Watch INBOX: render what lands there, like a Media Encoder watch folder.

    One watcher per inbox: another one (also --once or --retry-failed) exits
    with status 2. Links in INBOX are never followed, and it does not start
    when Output/, Source/, Failed/ or .repurpose/ is a link."""
    from pipeline import watch as folder
    from pipeline.shoot import load_shoot
    from pipeline.trust import load_operator

    inbox = inbox.resolve()
    try:
        folder.check_layout(inbox, own_output=out_dir is None)
        if status:
            _watch_status(folder.Ledger(inbox))
            return
        folder.lock_inbox(inbox)            # held until this process ends
        if retry_failed:
            count = folder.retry_failed(inbox)
            click.echo(f"{count} failed file{'s' if count != 1 else ''} back in the inbox")
            return
        operator = load_operator(config)
        load_shoot(None, list(presets_dirs), operator)      # the operator's layers hold
        if broker:
            from pipeline.queue.remote import connect

            connect(broker)                 # one clear line now, rather than at each file
        if jobs:                        # masters at once: each pass its part of the memory
            from pipeline.render.memory import run_alongside

            run_alongside(jobs)
        watcher = folder.Watcher(inbox, out_dir, list(presets_dirs), settle, jobs,
                                 operator=operator, trust_inbox=trust_inbox,
                                 retry_wait=retry_wait,
                                 notifier=_notifier(notify_url, events, operator),
                                 broker=broker)
    except folder.InboxError as exc:
        click.echo(f"error: {printable(str(exc))}", err=True)
        sys.exit(EXIT_USAGE)
    folder.install_stop(watcher)
    if once:
        sys.exit(EXIT_OK if watcher.once() else EXIT_SOME_FAILED)
    watcher.forever()


def _watch_status(ledger: Any) -> None:
    counts = ledger.summary()
    click.echo(", ".join(f"{state}: {n}" for state, n in sorted(counts.items()))
               or "no files yet")
    for row in ledger.failed():
        where = f" (in Failed/{row['moved_to']})" if row["moved_to"] != row["path"] else ""
        click.echo(printable(f"failed: {row['path']}: {row['error']}{where}"))


@cli.command()
@click.option("--broker", required=True, envvar="REPURPOSE_BROKER", metavar="URL",
              help="The Redis URL the submitting machines use (or REPURPOSE_BROKER).")
@click.option("--queues", default="render,speech", show_default=True,
              help="Queues to take tasks from, comma-separated: render, speech "
                   "(speech-to-text, e.g. on machines of its own).")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Masters rendered at once [default: number of cores].")
@click.option("--path-map", "path_maps", multiple=True, metavar="FROM=TO",
              help="A path under FROM on the submitting machine is under TO here "
                   "(repeatable; where the shared folder is mounted elsewhere).")
@_presets_dir
@_config
@click.option("--trust-shoots", is_flag=True,
              help="Honour the privileged settings (programs, hosts, effects) of a "
                   "shoot.yaml the submitter trusts (render of its own folder, watch "
                   "--trust-inbox). Only when whoever can write to the broker may run "
                   "programs on this machine.")
@_errors_to_exit
def worker(broker: str, queues: str, concurrency: int | None, path_maps: tuple[str, ...],
           presets_dirs: tuple[Path, ...], config: Path | None, trust_shoots: bool) -> None:
    """Render masters sent by `render --broker` or `watch --broker` on other machines.

    Runs until SIGTERM, which lets the renders in progress finish (Celery's warm
    shutdown); SIGQUIT stops at once, and their masters are then delivered to
    another worker. The masters, shoot.yaml files and output folders must be
    on a shared mount; presets (--presets-dir) and --config are this machine's own,
    and a shoot.yaml's privileged settings are refused unless --trust-shoots."""
    from pipeline.queue.app import QUEUES
    from pipeline.queue.remote import connect
    from pipeline.queue.tasks import (
        CONFIG_ENV,
        PATH_MAP_ENV,
        PRESETS_ENV,
        TRUST_ENV,
        worker_app,
    )
    from pipeline.queue.wire import PathMap
    from pipeline.render.memory import run_alongside
    from pipeline.shoot import load_shoot
    from pipeline.trust import load_operator

    try:
        PathMap(path_maps)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    load_shoot(None, list(presets_dirs), load_operator(config))   # bad ones: exit 2 now
    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(names) - set(QUEUES))
    if unknown or not names:
        raise click.UsageError(f"--queues: unknown {', '.join(unknown) or 'empty list'}; "
                               f"use {', '.join(QUEUES)}")
    connect(broker)
    os.environ[PATH_MAP_ENV] = json.dumps(list(path_maps))
    os.environ[PRESETS_ENV] = json.dumps([str(p.absolute()) for p in presets_dirs])
    os.environ[TRUST_ENV] = "1" if trust_shoots else "0"
    if config:
        os.environ[CONFIG_ENV] = str(config.absolute())
    at_once = concurrency or os.cpu_count() or 1
    run_alongside(at_once)          # each task's passes take their part of the memory
    argv = ["worker", "--queues", ",".join(names), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--concurrency", str(at_once)]
    worker_app(broker).worker_main(argv)


cli.add_command(captions)
cli.add_command(review)
cli.add_command(export)


@cli.group()
def presets() -> None:
    """List, show, validate presets, or print their JSON Schema."""


@presets.command("list")
@_presets_dir
@_errors_to_exit
def presets_list(presets_dirs: tuple[Path, ...]) -> None:
    """One line per preset: id, media, size, fit."""
    from pipeline.presets import load_catalog

    catalog = load_catalog(list(presets_dirs))
    for pid in catalog.ids():
        p = catalog.get(pid)
        flag = "  (opt-in)" if p.opt_in else ""
        click.echo(f"{pid:26} {p.media:5} {p.size[0]:>5}x{p.size[1]:<5} {p.fit}{flag}")


@presets.command("show")
@click.argument("preset_id")
@_presets_dir
@_errors_to_exit
def presets_show(preset_id: str, presets_dirs: tuple[Path, ...]) -> None:
    """Print one resolved preset (inheritance applied) as YAML."""
    import yaml

    from pipeline.presets import load_catalog

    catalog = load_catalog(list(presets_dirs))
    preset = catalog.get(preset_id)
    click.echo(f"# from {catalog.file_of(preset_id)}")
    click.echo(yaml.safe_dump(preset.model_dump(mode="json"), sort_keys=False).rstrip())


@presets.command("validate")
@click.argument("files", nargs=-1, required=True, type=_paths)
@_presets_dir
@_errors_to_exit
def presets_validate(files: tuple[Path, ...], presets_dirs: tuple[Path, ...]) -> None:
    """Check preset files (and shoot.yaml files): every problem, with its line."""
    from pipeline.errors import Problem
    from pipeline.presets import load_catalog, read_definitions
    from pipeline.shoot import SHOOT_FILE, load_shoot

    problems: list[Problem] = []
    for file in files:
        try:
            if file.name == SHOOT_FILE:
                load_shoot(file.parent, list(presets_dirs))
            else:
                load_catalog(list(presets_dirs), read_definitions(file))
        except ConfigError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        raise ConfigError(problems)
    click.echo(f"{len(files)} file(s) valid")


@presets.command("schema")
@click.argument("kind", type=click.Choice(["preset", "shoot"]), default="preset")
def presets_schema(kind: str) -> None:
    """Print the JSON Schema of a preset file or of shoot.yaml, for editors."""
    from pipeline.schema import Preset, Shoot

    if kind == "shoot":
        schema = Shoot.model_json_schema()
        schema["$defs"]["Preset"] = Preset.model_json_schema()
    else:
        one = Preset.model_json_schema()
        schema = {"title": "repurpose preset file", "anyOf": [
            {"$ref": "#/$defs/Preset"}, {"type": "array", "items": {"$ref": "#/$defs/Preset"}}],
            "$defs": {**one.pop("$defs", {}), "Preset": one}}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    click.echo(json.dumps(schema, indent=2))


def _terminate(signum: int, _frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C: temporary files are removed, children reaped.
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    debug = bool(os.environ.get("REPURPOSE_DEBUG"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="repurpose: %(levelname)s %(name)s: %(message)s")
    logging.getLogger("PIL").setLevel(logging.WARNING)
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
