"""The run: ingest sources, plan each master against its shoot's targets,
render in parallel (one master per job, all its variants from one decode),
and write the manifest.

A job runs in a worker process and returns plain results; an input that
fails becomes one error for that file while the other jobs go on.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.checks import check_photo
from pipeline.errors import InputError, PipelineError, RenderError
from pipeline.ingest import Found, ingest
from pipeline.model import Asset, Check, MediaInfo, PhotoPlan, Status, VariantResult
from pipeline.outputs import (
    assign_stems,
    atomic_write,
    load_previous,
    manifest,
    sha256_file,
    still_present,
    write_manifest,
)
from pipeline.planning import Choices, PlanError, plan_photo
from pipeline.probe import info_of, open_photo
from pipeline.render.photo import compose, decode, encode
from pipeline.schema import Preset
from pipeline.shoot import ShootContext, load_shoot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One master and everything needed to render it, picklable."""

    asset: Asset
    stem: str
    presets: tuple[Preset, ...]
    choices: Choices
    out_dir: Path
    previous: dict[str, dict[str, Any]]
    force: bool = False
    dry_run: bool = False


@dataclass
class JobResult:
    results: list[VariantResult] = field(default_factory=list)
    errors: list[PipelineError] = field(default_factory=list)
    info: MediaInfo | None = None


@dataclass
class Report:
    results: list[VariantResult]
    errors: list[PipelineError]
    manifest: dict[str, Any]

    @property
    def failed(self) -> bool:
        return bool(self.errors)


Progress = Callable[[JobResult], None]


def plan_jobs(sources: Sequence[Path], out_dir: Path, presets_dirs: Sequence[Path] = (),
              only: Sequence[str] = (), force: bool = False,
              dry_run: bool = False) -> tuple[list[Job], list[PipelineError], Found]:
    """Ingest and resolve targets; raises ConfigError for bad presets or shoot.yaml."""
    found = ingest(sources, exclude=[out_dir])
    contexts: dict[Path | None, ShootContext] = {}
    previous = load_previous(out_dir)
    stems = assign_stems(found.assets)
    jobs = []
    for asset in found.assets:
        if asset.shoot_dir not in contexts:
            contexts[asset.shoot_dir] = load_shoot(asset.shoot_dir, presets_dirs)
        ctx = contexts[asset.shoot_dir]
        presets = tuple(ctx.targets(asset, "photo", only))
        opts = ctx.options(asset)
        jobs.append(Job(asset, stems[asset], presets, Choices(opts.focus, ctx.ai(asset)),
                        out_dir, previous, force, dry_run))
    return jobs, list(found.errors), found


def run(sources: Sequence[Path], out_dir: Path, presets_dirs: Sequence[Path] = (),
        only: Sequence[str] = (), force: bool = False, dry_run: bool = False,
        jobs: int | None = None, progress: Progress | None = None,
        on_start: Callable[[int], None] | None = None) -> Report:
    planned, errors, found = plan_jobs(sources, out_dir, presets_dirs, only, force, dry_run)
    results: list[VariantResult] = []
    try:
        if on_start:
            on_start(len(planned))
        for outcome in _execute(planned, jobs or os.cpu_count() or 1):
            results.extend(outcome.results)
            errors.extend(outcome.errors)
            if progress:
                progress(outcome)
    finally:
        found.cleanup()
    body = manifest(results, errors, still_present(out_dir, load_previous(out_dir)))
    if not dry_run:
        write_manifest(out_dir, body)
    return Report(results, errors, body)


def _execute(planned: list[Job], workers: int) -> Iterator[JobResult]:
    if workers <= 1 or len(planned) <= 1:
        for job in planned:
            yield render_job(job)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(planned))) as pool:
        futures = {pool.submit(render_job, job): job for job in planned}
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool:
                # A worker was killed (out of memory, a signal): its masters fail, clearly.
                job = futures[future]
                yield JobResult(errors=[RenderError(
                    "the process rendering this master stopped unexpectedly", path=job.asset.label,
                    hint="it may have run out of memory; retry with --jobs 1")])


def source_digest(path: Path) -> str:
    return sha256_file(path)


def render_job(job: Job) -> JobResult:
    """Probe, plan and render every variant of one master; never raises."""
    try:
        return _render_job(job)
    except Exception as exc:  # noqa: BLE001 - one master's bug must not stop the others
        log.exception("unexpected failure on %s", job.asset.label)
        err = RenderError(f"internal error: {type(exc).__name__}: {exc}", path=job.asset.label,
                          hint="please report this with the file; REPURPOSE_DEBUG=1 shows more")
        return JobResult(errors=[err])


def _render_job(job: Job) -> JobResult:
    out = JobResult()
    asset = job.asset
    try:
        image = open_photo(asset)
    except InputError as exc:
        out.errors.append(exc)
        return out
    try:
        digest = source_digest(asset.path)
    except OSError as exc:
        image.close()
        out.errors.append(InputError(f"cannot read: {exc.strerror or exc}", path=asset.label,
                                     hint="check the file and copy it again"))
        return out
    with image:
        info = out.info = info_of(image)
        plans: list[tuple[Preset, PhotoPlan]] = []
        for preset in job.presets:
            try:
                plans.append((preset, plan_photo(info, preset, job.choices, source=asset.label,
                                                 stem=job.stem, source_digest=digest)))
            except PlanError as exc:
                out.errors.append(exc)
                out.results.append(_failed(asset, preset, exc))
        todo = []
        for preset, plan in plans:
            kept = None if job.force else _unchanged(job, plan)
            if job.dry_run:
                out.results.append(_result(asset, plan, "planned"))
            elif kept:
                out.results.append(kept)
            else:
                todo.append((preset, plan))
        if not todo:
            return out
        try:
            master = decode(image, info, [p for _, p in todo], asset.label)
        except InputError as exc:
            out.errors.append(exc)
            return out
    for preset, plan in todo:
        try:
            out.results.append(_render_one(job, master, preset, plan))
        except RenderError as exc:
            out.errors.append(exc)
            out.results.append(_failed(asset, preset, exc, plan))
    return out


def _render_one(job: Job, master: Any, preset: Preset, plan: PhotoPlan) -> VariantResult:
    frame = compose(master, plan)
    data, quality = encode(frame, plan, master)
    target = job.out_dir / plan.output
    atomic_write(target, data)
    checks = check_photo(target, preset)
    warnings = list(plan.warnings) + master.warnings
    if quality != plan.quality:
        warnings.append(f"quality lowered from {plan.quality} to {quality} to fit "
                        f"{plan.max_bytes:,} bytes")
    result = replace(_result(job.asset, plan, "rendered"), width=frame.width,
                     height=frame.height, bytes=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), quality=quality,
                     warnings=tuple(warnings), checks=checks)
    bad = [c for c in checks if not c.ok]
    if bad:
        target.unlink(missing_ok=True)
        detail = "; ".join(f"{c.name} is {c.actual}, expected {c.expected}" for c in bad)
        raise RenderError(f"output fails its preset's checks: {detail}", path=job.asset.label,
                          preset=preset.id, hint="adjust the preset in shoot.yaml")
    return result


def _unchanged(job: Job, plan: PhotoPlan) -> VariantResult | None:
    """The previous result, if it was made from the same inputs and is still on disk."""
    entry = job.previous.get(plan.output)
    if not entry or entry.get("key") != plan.key or entry.get("status") not in (
            "rendered", "unchanged"):
        return None
    target = job.out_dir / plan.output
    try:
        if target.stat().st_size != entry.get("bytes") or sha256_file(target) != entry.get(
                "sha256"):
            return None
    except OSError:
        return None
    checks = tuple(Check(**c) for c in entry.get("checks", []))
    return replace(_result(job.asset, plan, "unchanged"), width=entry.get("width"),
                   height=entry.get("height"), bytes=entry.get("bytes"),
                   sha256=entry.get("sha256"), quality=entry.get("quality"),
                   warnings=tuple(entry.get("warnings", [])), checks=checks)


def _result(asset: Asset, plan: PhotoPlan, status: Status) -> VariantResult:
    return VariantResult(source=asset.label, preset=plan.preset, path=plan.output,
                         status=status, key=plan.key, group=asset.group, order=asset.order,
                         width=plan.size[0], height=plan.size[1], warnings=plan.warnings,
                         plan=plan.to_dict())


def _failed(asset: Asset, preset: Preset, exc: PipelineError,
            plan: PhotoPlan | None = None) -> VariantResult:
    return VariantResult(source=asset.label, preset=preset.id,
                         path=plan.output if plan else "", status="failed", error=exc.message,
                         group=asset.group, order=asset.order,
                         plan=plan.to_dict() if plan else {})
