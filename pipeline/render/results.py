"""Variant results shared by the photo and video jobs: rendered, unchanged
(skipped because nothing changed), planned (dry run) or failed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from pipeline.errors import PipelineError
from pipeline.model import (
    Asset,
    Check,
    Job,
    JobResult,
    PhotoPlan,
    Status,
    VariantResult,
    VideoInfo,
    VideoPlan,
)
from pipeline.outputs import sha256_file
from pipeline.planning import PlanError, output_path
from pipeline.schema import Preset

Plan = PhotoPlan | VideoPlan
P = TypeVar("P", PhotoPlan, VideoPlan)


def unchanged(job: Job, plan: Plan, entries: dict[str, dict[str, Any]] | None = None
              ) -> VariantResult | None:
    """The previous result (from `entries`, else the last manifest's), if it was made
    from the same inputs and is still on disk."""
    entry = (job.previous if entries is None else entries).get(plan.output)
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
    status: Status = "unchanged" if entries is None else "rendered"   # a receipt: this run's
    return replace(result(job.asset, plan, status), width=entry.get("width"),
                   height=entry.get("height"), bytes=entry.get("bytes"),
                   sha256=entry.get("sha256"), quality=entry.get("quality"),
                   warnings=tuple(entry.get("warnings", [])), checks=checks,
                   duration=entry.get("duration"), fps=entry.get("fps"),
                   codec=entry.get("codec"), audio=entry.get("audio"))


def result(asset: Asset, plan: Plan, status: Status) -> VariantResult:
    return VariantResult(source=asset.label, preset=plan.preset, path=plan.output,
                         status=status, key=plan.key, group=asset.group, order=asset.order,
                         width=plan.size[0], height=plan.size[1], warnings=plan.warnings,
                         media="video" if isinstance(plan, VideoPlan) else "photo",
                         plan=plan.to_dict())


def with_facts(made: VariantResult, info: VideoInfo) -> VariantResult:
    """A video result with what its written file says: how long it lasts, its frame
    rate, its picture codec and its sound's codec (False: silent)."""
    return replace(made, duration=round(info.duration_ms / 1000, 3), fps=str(info.fps),
                   codec=info.codec, audio=info.audio[0].codec if info.audio else False)


def failed(asset: Asset, preset: Preset, exc: PipelineError, path: str,
           plan: Plan | None = None) -> VariantResult:
    return VariantResult(source=asset.label, preset=preset.id, media=preset.media,
                         path=path, status="failed", error=exc.message,
                         group=asset.group, order=asset.order,
                         plan=plan.to_dict() if plan else {})


def plan_failed(job: Job, preset: Preset, exc: PipelineError, out: JobResult) -> None:
    """A preset that could not be planned for this master: one error, one failed entry."""
    out.errors.append(exc)
    out.results.append(failed(job.asset, preset, exc, output_path(preset, job.stem)))


def all_failed(job: Job, todo: Sequence[tuple[Preset, Plan]], exc: PipelineError,
               out: JobResult) -> None:
    """One failure (e.g. ffmpeg) that sinks every variant it was making."""
    out.errors.append(exc)
    out.results.extend(failed(job.asset, preset, exc, plan.output, plan) for preset, plan in todo)


def triage(job: Job, preset: Preset, plans: Sequence[P], out: JobResult) -> list[tuple[Preset, P]]:
    """Plans still to render; dry runs and unchanged outputs are reported here."""
    todo = []
    for plan in plans:
        kept = unchanged(job, plan, job.done) or (None if job.force else unchanged(job, plan))
        if job.dry_run:
            out.results.append(result(job.asset, plan, "planned"))
        elif kept:
            out.results.append(kept)
        else:
            todo.append((preset, plan))
    return todo


def plan_each(job: Job, presets: Sequence[Preset], plan: Callable[[Preset], list[P]],
              out: JobResult) -> list[tuple[Preset, P]]:
    """Plan every preset with `plan`; PlanErrors become failed entries, and what
    is unchanged or only a dry run is reported. Returns what is left to render."""
    todo: list[tuple[Preset, P]] = []
    for preset in presets:
        try:
            plans = plan(preset)
        except PlanError as exc:
            plan_failed(job, preset, exc, out)
            continue
        todo += triage(job, preset, plans, out)
    return todo
