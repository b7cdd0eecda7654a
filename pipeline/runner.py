"""The run: ingest sources, resolve each master's targets, render in parallel
(one master per job, see pipeline.render.jobs), and write the manifest.

The main process never imports the imaging stack: workers load it on their
first job, in parallel, so start-up stays short.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pipeline.errors import (
    ConfigError,
    PipelineError,
    ProcessDied,
    Refused,
    ShootError,
    write_error,
)
from pipeline.ingest import Found, ingest
from pipeline.model import Asset, Job, JobResult, VariantResult
from pipeline.outputs import (
    MANIFEST,
    assign_stems,
    carousels,
    load_previous,
    manifest,
    manifest_lock,
    remove_stale_temps,
    still_present,
    write_manifest,
)
from pipeline.planning import Choices, output_path
from pipeline.planning.camera import Pin
from pipeline.progress import set_sink
from pipeline.review.decisions import keep_decisions
from pipeline.schema import FocusPin
from pipeline.shoot import ShootContext, load_shoot
from pipeline.trust import CONTENT_HINT, Operator


@dataclass
class Planned:
    """What planning found: one job per master, inputs that failed already,
    and notes for the user (a shoot.yaml entry that matches no master)."""

    jobs: list[Job]
    errors: list[PipelineError]
    notes: list[str]
    found: Found
    shoots: dict[Path | None, ShootContext] = field(default_factory=dict)


@dataclass
class Report:
    results: list[VariantResult]
    errors: list[PipelineError]
    notes: list[str]
    manifest: dict[str, Any]

    @property
    def failed(self) -> bool:
        return bool(self.errors)


Progress = Callable[[JobResult], None]
Fraction = Callable[[int, float], None]


def plan_jobs(sources: Sequence[Path], out_dir: Path, presets_dirs: Sequence[Path] = (),
              only: Sequence[str] = (), force: bool = False, dry_run: bool = False,
              previous: dict[str, dict[str, Any]] | None = None,
              force_captions: bool = False, shoot_root: Path | None = None,
              trusted: bool = True, operator: Operator | None = None, *,
              aliases: Mapping[Path, Path] | None = None) -> Planned:
    """Ingest and resolve targets; raises ConfigError for bad presets, a bad operator
    config, or (when trusted) a bad shoot.yaml. An untrusted shoot.yaml's problems
    fail only the masters it governs. `aliases`: see ingest (a private copy read in
    place of the file it stands for)."""
    operator = operator or Operator()
    if not trusted:         # the operator's own layers must hold before content is judged
        load_shoot(None, presets_dirs, operator)
    found = ingest(sources, exclude=[out_dir], shoot_root=shoot_root, trusted=trusted,
                   aliases=aliases)
    try:
        planned = _jobs(found, out_dir, presets_dirs, only, force, dry_run, previous or {},
                        force_captions, trusted, operator)
    except BaseException:
        found.cleanup()
        raise
    # Only a shoot whose whole folder was given can tell that a `sources:` entry is stale.
    walked = [Path(s).resolve() for s in sources if Path(s).is_dir()]
    for folder, ctx in planned.shoots.items():
        if folder and any(d == folder.resolve() or d in folder.resolve().parents for d in walked):
            planned.notes.extend(ctx.unused_sources(planned.found.assets))
    return planned


def _jobs(found: Found, out_dir: Path, presets_dirs: Sequence[Path], only: Sequence[str],
          force: bool, dry_run: bool, previous: dict[str, dict[str, Any]],
          force_captions: bool = False, trusted: bool = True,
          operator: Operator | None = None) -> Planned:
    contexts: dict[Path | None, ShootContext | ShootError] = {}
    stems = assign_stems(found.assets, previous)
    jobs = []
    errors: list[PipelineError] = list(found.errors)
    for asset in found.assets:
        if asset.shoot_dir not in contexts:
            contexts[asset.shoot_dir] = context_of(asset.shoot_dir, presets_dirs, operator,
                                                 trusted)
        ctx = contexts[asset.shoot_dir]
        if isinstance(ctx, ShootError):
            errors.append(ShootError(ctx.problems, path=asset.label, hint=ctx.hint))
            continue
        jobs.append(job_for(asset, stems[asset], ctx, out_dir, only, previous, force, dry_run,
                            force_captions))
    shoots = {k: v for k, v in contexts.items() if isinstance(v, ShootContext)}
    return Planned(jobs, errors, [], found, shoots)


def job_for(asset: Asset, stem: str, ctx: ShootContext, out_dir: Path, only: Sequence[str],
            previous: dict[str, dict[str, Any]], force: bool = False, dry_run: bool = False,
            force_captions: bool = False) -> Job:
    """The job of one master under its shoot (the same here and on a queue worker)."""
    chosen, named = ctx.targets(asset, only)
    opts = ctx.options(asset)
    focus, pins = _focus(opts.focus)
    presets = tuple(chosen)
    mine = {path: entry for path, entry in previous.items()
            if any(path == output_path(p, stem)
                   or path.startswith(f"{p.id}/{stem}.part") for p in presets)}
    return Job(asset, stem, presets,
               Choices(focus=focus, pins=pins, ai=ctx.ai(asset), trim=opts.trim,
                       still_ms=round(ctx.shoot.still_duration * 1000),
                       audio_bed=ctx.audio_bed(), speech=ctx.shoot.speech,
                       subtitles=ctx.shoot.subtitles, languages=tuple(ctx.shoot.languages),
                       copy=(ctx.shoot.brand, ctx.shoot.brief, ctx.shoot.captions,
                             force_captions),
                       effect_folders=ctx.effect_folders()),
               out_dir, mine, force, dry_run, named)


def context_of(folder: Path | None, presets_dirs: Sequence[Path], operator: Operator | None,
             trusted: bool) -> ShootContext | ShootError:
    """The shoot of a folder; for content, its problems instead of an exception, so
    they fail only the masters of that folder."""
    try:
        return load_shoot(folder, presets_dirs, operator, trusted)
    except ConfigError as exc:
        if trusted:
            raise
        return ShootError(exc.problems, hint=CONTENT_HINT if isinstance(exc, Refused) else
                          "fix the shoot.yaml, then put the file back")


def announcements(planned: Planned) -> list[str]:
    """One line per privileged setting the planned jobs will use, each once."""
    lines: list[str] = []
    for folder, ctx in planned.shoots.items():
        presets = {p.id: p for job in planned.jobs if job.asset.shoot_dir == folder
                   for p in job.presets}
        if not any(job.asset.shoot_dir == folder for job in planned.jobs):
            continue
        lines += [line for line in ctx.privileged(list(presets.values())) if line not in lines]
    return lines


def _focus(focus: tuple[float, float] | list[FocusPin] | None
           ) -> tuple[tuple[float, float] | None, tuple[Pin, ...]]:
    """shoot.yaml's focus as Choices take it: one point, or pins for time ranges."""
    if isinstance(focus, list):
        return None, tuple(Pin(round(p.start * 1000), round(p.end * 1000), p.at) for p in focus)
    return focus, ()


def run(sources: Sequence[Path], out_dir: Path, presets_dirs: Sequence[Path] = (),
        only: Sequence[str] = (), force: bool = False, dry_run: bool = False,
        jobs: int | None = None, progress: Progress | None = None,
        on_start: Callable[[int], None] | None = None,
        on_fraction: Fraction | None = None, force_captions: bool = False,
        shoot_root: Path | None = None, trusted: bool = True,
        operator: Operator | None = None,
        announce: Callable[[str], None] | None = None, *,
        aliases: Mapping[Path, Path] | None = None, broker: str | None = None) -> Report:
    """Render everything; `progress` gets each master's result as it is done,
    `on_fraction` (master number, share done) follows each master's encode.
    `trusted` False takes every shoot.yaml among the sources as content (a watch
    inbox, --untrusted): a privileged key there fails the masters it governs.
    `operator` is the --config file under every shoot; `announce` hears, before
    anything renders, one line per privileged setting that will be used. `aliases`
    maps a source that is a private copy (a watch folder's) to the path it stands
    for, whose label, shoot.yaml and output names it takes. With `broker` (a
    Redis URL), each master is rendered by a queue worker (pipeline.queue)."""
    previous = load_previous(out_dir)
    if not dry_run and not broker:      # a worker elsewhere may be writing one now
        remove_stale_temps(out_dir)
    planned = plan_jobs(sources, out_dir, presets_dirs, only, force, dry_run, previous,
                        force_captions, shoot_root, trusted, operator, aliases=aliases)
    errors = planned.errors
    results: list[VariantResult] = []
    try:
        if announce:
            for line in announcements(planned):
                announce(line)
        if on_start:
            on_start(len(planned.jobs))
        def take(outcome: JobResult) -> None:
            results.extend(outcome.results)
            errors.extend(outcome.errors)
            if progress:
                progress(outcome)

        if broker and planned.jobs and not dry_run:
            from pipeline.queue.remote import execute
            from pipeline.queue.wire import Run

            execute(planned.jobs, broker, Run(out_dir, tuple(presets_dirs), tuple(only), force,
                                              force_captions, trusted),
                    take, on_fraction, local=_work)
        else:
            _execute(planned.jobs, jobs or os.cpu_count() or 1, take, on_fraction)
    finally:
        planned.found.cleanup()
    body = manifest(results, errors, planned.notes, still_present(out_dir, previous))
    _posting(body["variants"], planned)
    limits = {p.id: p.items.max for job in planned.jobs for p in job.presets
              if p.items and p.items.max > 1}
    body["carousels"] = carousels(results, limits)
    for entry in body["carousels"]:
        if entry.get("left_out"):
            body["warnings"].append(
                f"{entry['source']}: {entry['preset']} takes {entry['limit']} items; "
                f"{len(entry['left_out'])} page(s) after those are left out of the carousel")
    if not dry_run:
        try:
            body = _written(out_dir, body, previous)
        except OSError as exc:
            raise write_error(exc, out_dir / MANIFEST) from exc
    return Report(results, errors, planned.notes, body)


def _posting(variants: list[dict[str, Any]], planned: Planned) -> None:
    """What `repurpose export` needs to post this run's variants, recorded while the
    presets and shoots are at hand (a preset may exist only in its shoot.yaml):
    `post` = {platform, type, the master's declared AI use, caption limits, the
    shoot's time of day for it}."""
    facts: dict[tuple[str, str], dict[str, Any]] = {}
    for job in planned.jobs:
        ctx = planned.shoots.get(job.asset.shoot_dir)
        times = ctx.shoot.schedule if ctx else {}
        for preset in job.presets:
            spec = preset.caption
            facts[job.asset.label, preset.id] = {
                "platform": preset.platform, "type": preset.post, "ai": job.choices.ai,
                "caption_limits": spec.model_dump(mode="json") if spec else None,
                "time": times.get(preset.id) or times.get(preset.platform)}
    for entry in variants:
        found = facts.get((str(entry.get("source")), str(entry.get("preset"))))
        if found is not None:
            entry["post"] = found


def _written(out_dir: Path, body: dict[str, Any],
             previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Write the manifest under its lock, merged with the one on disk now: a person
    may have approved, rejected or edited something while this run rendered from
    `previous`, and that is kept (see pipeline.review.decisions)."""
    with manifest_lock(out_dir):
        body = keep_decisions(body, previous, load_previous(out_dir), out_dir)
        write_manifest(out_dir, body)
    return body


def _execute(planned: list[Job], workers: int, take: Callable[[JobResult], None],
             on_fraction: Fraction | None) -> None:
    """Run every job, handing each result to `take` as it arrives. On an
    interruption, jobs not yet started are cancelled and running ones finish."""
    if workers <= 1 or len(planned) <= 1:
        for number, job in enumerate(planned):
            if on_fraction:
                set_sink(partial(on_fraction, number))
            try:
                take(_work(job))
            finally:
                set_sink(None)
            if on_fraction:
                on_fraction(number, 1.0)
        return
    context = multiprocessing.get_context()
    reports = context.SimpleQueue()
    # One thread hands the workers' reports on, so `on_fraction` is never called concurrently.
    relay = threading.Thread(target=_relay, args=(reports, on_fraction), daemon=True)
    relay.start()
    at_once = min(workers, len(planned))
    pool = ProcessPoolExecutor(max_workers=at_once, mp_context=context,
                               initializer=_start_worker, initargs=(reports, at_once))
    try:
        futures = {pool.submit(_work, job, number): (number, job)
                   for number, job in enumerate(planned)}
        for future in as_completed(futures):
            number, job = futures[future]
            try:
                outcome = future.result()
            except BrokenProcessPool:
                # A worker was killed (out of memory, a signal): its masters fail, clearly.
                outcome = JobResult(errors=[ProcessDied(
                    "the process rendering this master stopped unexpectedly", path=job.asset.label,
                    hint="it may have run out of memory; retry with --jobs 1")])
            reports.put((number, 1.0))
            take(outcome)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        reports.put(None)
        relay.join()


def _relay(reports: Any, on_fraction: Fraction | None) -> None:
    while (item := reports.get()) is not None:
        if on_fraction:
            on_fraction(*item)


_reports: Any = None


def _start_worker(reports: Any, at_once: int = 1) -> None:
    from pipeline.analysis.subjects import share_cores
    from pipeline.ffmpeg import die_with_parent
    from pipeline.render.memory import run_alongside

    die_with_parent()       # a killed render takes its workers (and their ffmpeg) along
    global _reports
    _reports = reports
    share_cores()
    run_alongside(at_once)  # each master's passes take their part of the memory budget


def _work(job: Job, number: int | None = None) -> JobResult:
    from pipeline.render.jobs import render_job

    if number is not None and _reports is not None:
        reports = _reports
        set_sink(lambda fraction: reports.put((number, fraction)))
    try:
        return render_job(job)
    finally:
        if number is not None:
            set_sink(None)
