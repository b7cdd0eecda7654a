"""One job: probe, plan and render every variant of one master.

Runs in a worker process: decodes the master once, renders each planned
variant, writes it atomically, verifies it against its preset, and skips
variants whose inputs and output are unchanged since the last manifest.
It never raises: failures come back as errors for this master only.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline import receipts
from pipeline.analysis.photo import analyze_decoded, cached_subjects
from pipeline.analysis.subjects import Subject
from pipeline.captions import caption_for
from pipeline.captions.draft import caption_name, kept_caption, request_for
from pipeline.captions.model import CaptionRequest
from pipeline.checks import check_photo
from pipeline.errors import InputError, RenderError, write_error
from pipeline.languages import DEFAULT, primary
from pipeline.metadata import read_meta
from pipeline.model import (
    Check,
    Job,
    JobResult,
    PhotoInfo,
    PhotoPlan,
    VariantResult,
    VideoPlan,
)
from pipeline.outputs import atomic_write, sha256_file
from pipeline.planning import plan_photo
from pipeline.planning.reframe import needs_subjects
from pipeline.probe import info_of, open_photo
from pipeline.render.photo import Master, compose, decode, encode
from pipeline.render.results import failed, plan_each, result
from pipeline.render.still import SUPERSAMPLE, plan_stills, render_stills
from pipeline.schema import Brand, CaptionOptions, Preset

log = logging.getLogger(__name__)
# Failed writes that say something about the output disk, not about the master.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def render_job(job: Job) -> JobResult:
    """Probe, plan and render every variant of one master; never raises."""
    try:
        return _with_captions(job, _render_job(job))
    except Exception as exc:  # noqa: BLE001 - one master's bug must not stop the others
        if type(exc).__name__ == "SoftTimeLimitExceeded":
            raise               # a queue task's time limit: the submitter says so
        if isinstance(exc, OSError) and _writing(exc, job.out_dir):
            folder = Path(exc.filename).parent if exc.filename else job.out_dir
            return JobResult(errors=[write_error(exc, f"into {folder}", path=job.asset.label)])
        log.debug("unexpected failure on %s", job.asset.label, exc_info=True)
        err = RenderError(f"internal error: {type(exc).__name__}: {exc}", path=job.asset.label,
                          hint="please report this with the file; REPURPOSE_DEBUG=1 shows more")
        return JobResult(errors=[err])


def _writing(exc: OSError, out_dir: Path) -> bool:
    """Whether a failure is the output disk's (full, read-only, not ours to write),
    not the master's: a master we may not read is the file's problem."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return True
    if exc.errno not in WRITE_ERRNOS or not exc.filename:
        return False
    return Path(os.fsdecode(exc.filename)).absolute().is_relative_to(out_dir.absolute())


def _with_captions(job: Job, out: JobResult) -> JobResult:
    """A draft caption beside every written variant whose platform has a caption
    field: `<name>.caption.txt`, exactly what to paste, and in the manifest. With
    the shoot's `languages`, one per language (`<name>.hu.caption.txt`): the
    manifest's `caption` is the first language's, `captions` holds the others."""
    if job.choices.copy is None:
        return out
    brand, brief, options, force_captions = job.choices.copy
    presets = {p.id: p for p in job.presets}
    transcript, spoken_in = _transcript(job)
    tags: tuple[str | None, ...] = tuple(primary(t) for t in job.choices.languages) or (None,)
    metadata: dict[str, Any] | None = None      # read once, when a caption needs it
    for index, made in enumerate(out.results):
        preset = presets.get(made.preset)
        if preset is None or made.status not in ("rendered", "unchanged"):
            continue
        segments = made.plan.get("segments") or []
        seconds = sum(b - a for a, b in segments) / 1000 if segments else None
        if preset.caption is None:
            continue
        if metadata is None:
            metadata = _metadata(job) if made.media == "photo" and not segments else {}
        written: dict[str, dict[str, Any]] = {}
        for tag in tags:
            language = tag or options.language or brief.language or spoken_in or DEFAULT
            # Speech is quoted only in its own language's caption.
            said = transcript if spoken_in is None or primary(language) == spoken_in else None
            request = request_for(preset, brand, brief.in_language(language), options,
                                  metadata, said, seconds, language)
            if request is None:
                break
            caption = _caption(job, made, request, preset, (brand, options, force_captions), tag,
                               first=tag == tags[0])
            written[tag or ""] = caption
        if written:
            first, *others = written.values()
            out.results[index] = replace(
                made, caption=first,
                captions={k: v for k, v in written.items() if v is not first} or None)
    return out


def _caption(job: Job, made: VariantResult, request: CaptionRequest, preset: Preset,
             settings: tuple[Brand, CaptionOptions, bool], tag: str | None, first: bool
             ) -> dict[str, Any]:
    """One caption of a variant, in the request's language: the one a person owns
    when there is one (for the first language, also one they approved or edited
    before the shoot had `languages`, kept in its own file), else a fresh draft
    written to its caption.txt."""
    brand, options, force_captions = settings
    previous = job.previous.get(made.path) or {}
    main = previous.get("caption")
    before = main if tag is None or tag == _tag_of(main) else \
        (previous.get("captions") or {}).get(tag)
    if before is None and first and isinstance(main, dict) and \
            (primary(main.get("language")) or tag) == tag:
        before = main           # its file is the one its own tag (or none) names
    owned = job.out_dir / caption_name(made.path, before if isinstance(before, dict) else None)
    kept = None if force_captions else kept_caption({"caption": before}, owned, request.limits)
    if kept is not None:        # a person approved or edited it: never overwritten
        return kept
    target = job.out_dir / caption_name(made.path, {"tag": tag} if tag else None)
    caption = caption_for(request, preset, brand, options).to_dict()
    caption["language"] = request.language
    if tag:
        caption["tag"] = tag
    if not job.dry_run:
        atomic_write(target, (caption["text"] + "\n").encode("utf-8"))
    return caption


def _tag_of(caption: Any) -> str | None:
    return caption.get("tag") if isinstance(caption, dict) else None


def _metadata(job: Job) -> dict[str, Any]:
    """A photo master's title, description, keywords and creator (XMP, IPTC, EXIF)."""
    try:
        with open_photo(job.asset) as image:
            meta = read_meta(image)
    except (InputError, OSError):
        return {}
    found: dict[str, Any] = {"title": meta.title, "description": meta.description,
                             "keywords": list(meta.keywords), "creator": list(meta.creator)}
    return {k: v for k, v in found.items() if v}


def _transcript(job: Job) -> tuple[str | None, str | None]:
    """The master's speech, when this run (or an earlier one) transcribed it, and
    the language it is in."""
    path = job.out_dir / f"{job.stem}.transcript.json"
    try:
        body = json.loads(path.read_text("utf-8"))
        text = " ".join(c["text"] for c in body["cues"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, None
    language = body.get("language")
    return text, primary(language) if isinstance(language, str) else None


def _render_job(job: Job) -> JobResult:
    out = JobResult()
    asset = job.asset
    try:
        image = open_photo(asset)
    except InputError as exc:
        if "video" in exc.message:
            from pipeline.render.videojob import video_job

            return video_job(job)
        out.errors.append(exc)
        return out
    try:
        digest = sha256_file(asset.path)
    except OSError as exc:
        image.close()
        out.errors.append(InputError(f"cannot read: {exc.strerror or exc}", path=asset.label,
                                     hint="check the file and copy it again"))
        return out
    with image:
        info = info_of(image)
        photos = job.presets_for("photo")
        clips = job.presets_for("video") if job.cross_media else []
        wanted = [*photos, *clips]
        looking = needs_subjects(info.width, info.height, wanted, job.choices.focus)
        subjects = cached_subjects(digest) if looking else ()
        master: Master | None = None
        need: list[float] = []
        if subjects is None:
            # Not analysed yet: the decode for rendering serves the analysis too, at
            # the scale the plans need, which the subjects do not enlarge.
            rough = JobResult()
            need = _scales(plan_photos(job, info, photos, digest, rough),
                           plan_stills(job, info, clips, digest, rough) if clips else [])
            try:
                master = decode(image, info, need, asset.label)
            except InputError as exc:
                out.errors.append(exc)
                return out
            subjects = analyze_decoded(master.pixels, digest)
        todo = plan_photos(job, info, photos, digest, out, subjects)
        stills = plan_stills(job, info, clips, digest, out, subjects) if clips else []
        if not todo and not stills:
            return out
        scales = _scales(todo, stills)
        if master is None or max(scales, default=0) > max(need, default=0) * 1.001:
            try:
                with image if master is None else open_photo(asset) as fresh:
                    master = decode(fresh, info, scales, asset.label)
            except InputError as exc:
                out.errors.append(exc)
                return out
    render_photo(job, master, todo, out)
    if stills:
        render_stills(job, master, stills, out)
    return out


def _scales(todo: Sequence[tuple[Preset, PhotoPlan]],
            stills: Sequence[tuple[Preset, VideoPlan]]) -> list[float]:
    """Output pixels per master pixel that the decode must serve."""
    return [p.scale for _, p in todo] + [p.scale * SUPERSAMPLE for _, p in stills]


def render_photo(job: Job, master: Master, todo: list[tuple[Preset, PhotoPlan]],
                 out: JobResult) -> None:
    """Render each planned photo variant from one decoded master."""
    for preset, plan in todo:
        try:
            made = _render_one(job, master, preset, plan)
        except RenderError as exc:
            out.errors.append(exc)
            out.results.append(failed(job.asset, preset, exc, plan.output, plan))
            continue
        receipts.written(made)
        out.results.append(made)


def plan_photos(job: Job, info: PhotoInfo, presets: list[Preset], digest: str,
                out: JobResult, subjects: Sequence[Subject] = ()
                ) -> list[tuple[Preset, PhotoPlan]]:
    """Plan every photo preset; return those still to render (not failed, unchanged or dry)."""
    return plan_each(job, presets, lambda preset: [plan_photo(
        info, preset, job.choices, source=job.asset.label, stem=job.stem,
        source_digest=digest, subjects=subjects)], out)


def _render_one(job: Job, master: Master, preset: Preset, plan: PhotoPlan) -> VariantResult:
    frame = compose(master, plan)
    encoded = encode(frame, plan, master)
    data, quality = encoded.data, encoded.quality
    checks: tuple[Check, ...] = ()

    def verify(written: Path) -> None:
        nonlocal checks
        checks = check_photo(written, preset)
        bad = [c for c in checks if not c.ok]
        if bad:
            detail = "; ".join(f"{c.name} is {c.actual}, expected {c.expected}" for c in bad)
            raise RenderError(f"output fails its preset's checks: {detail}",
                              path=job.asset.label, preset=preset.id,
                              hint="adjust the preset in shoot.yaml")

    atomic_write(job.out_dir / plan.output, data, verify)
    warnings = list(plan.warnings) + master.warnings + list(encoded.notes)
    if quality != plan.quality:
        warnings.append(f"quality lowered from {plan.quality} to {quality} to fit "
                        f"{plan.max_bytes:,} bytes")
    return replace(result(job.asset, plan, "rendered"), width=frame.width,
                   height=frame.height, bytes=len(data),
                   sha256=hashlib.sha256(data).hexdigest(), quality=quality,
                   warnings=tuple(warnings), checks=checks)


