"""The job of a video master: probe, plan every video preset, render them all
with one ffmpeg run, verify each output, then give it its final name."""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from pipeline import receipts
from pipeline.analysis import Analysis, analyze_video
from pipeline.checks import check_video, read_video
from pipeline.errors import InputError, PipelineError, RenderError
from pipeline.languages import language as lang_of
from pipeline.languages import name as name_of
from pipeline.languages import primary
from pipeline.metadata import PhotoMeta
from pipeline.model import Job, JobResult, PhotoInfo, VariantResult, VideoInfo, VideoPlan
from pipeline.outputs import atomic_write, claim, sha256_file, temp_path
from pipeline.planning import PlanError, plan_video
from pipeline.planning.common import plan_key
from pipeline.planning.reframe import needs_subjects
from pipeline.planning.video import needs_analysis, window
from pipeline.probe import probe_video
from pipeline.render.cover import cover
from pipeline.render.passes import encode_all
from pipeline.render.photo import Master
from pipeline.render.results import all_failed, failed, plan_each, result, with_facts
from pipeline.render.shared import peer_keys, shared_frames
from pipeline.schema import Preset, SpeechOptions
from pipeline.scratch import scratch
from pipeline.speech import Heard, heard, transcribe
from pipeline.subtitles.files import write_sidecar
from pipeline.subtitles.layout import Frame
from pipeline.subtitles.plan import Source, outputs, sidecar_files, subtitle_plan
from pipeline.subtitles.sources import (
    embedded_cues,
    find_sidecar,
    find_translation,
    origin,
    read_cues,
    tag_of,
)
from pipeline.timings import timed


def video_job(job: Job) -> JobResult:
    out = JobResult()
    asset = job.asset
    try:
        info = probe_video(asset)
        digest = sha256_file(asset.path)
    except InputError as exc:
        out.errors.append(exc)
        return out
    presets = job.presets_for("video")
    stills = job.presets_for("photo") if job.cross_media else []
    if not presets and not stills:
        out.errors.append(InputError("is a video, and it has no targets", path=asset.label,
                                     hint="add presets to targets in shoot.yaml"))
        return out
    todo = _plan_all(job, info, presets, digest, out)
    if todo:
        _render(job, todo, out)
    if stills:
        _covers(job, info, stills, digest, out)
    return out


def _covers(job: Job, info: VideoInfo, presets: list[Preset], digest: str,
            out: JobResult) -> None:
    """Photo presets of a video master get its best frame as their picture."""
    from pipeline.render.jobs import plan_photos, render_photo

    frame = PhotoInfo("video frame", info.width, info.height, info.width, info.height, 1, "RGB",
                      8, False, None)
    todo = plan_photos(job, frame, presets, digest, out)
    if not todo:
        return
    try:
        chosen = cover(job.asset.path, info, window(info, job.choices), job.asset.label)
    except RenderError as exc:
        all_failed(job, todo, exc, out)
        return
    note = (f"cover frame at {chosen.at_ms / 1000:.2f} s: the sharpest well-exposed of "
            f"{chosen.candidates} candidates")
    master = Master(chosen.image, 1.0, PhotoMeta(), chosen.image, [note])
    render_photo(job, master, todo, out)


def _plan_all(job: Job, info: VideoInfo, presets: list[Preset], digest: str,
              out: JobResult) -> list[tuple[Preset, VideoPlan]]:
    source, listen = given_cues(job, info, presets, digest)
    with ExitStack() as stack:
        # The analysis decode also writes the audio that speech-to-text will hear.
        sound = (stack.enter_context(scratch("speech")) / "speech.wav"
                 if listen and _unheard(job, digest) else None)
        with timed("analysis", job.asset.label):
            analysis, failure = _analysis(job, info, presets, digest, sound)
        if listen:
            with timed("speech", job.asset.label):
                source = replace(_speech(job, digest, sound),
                                 translations=source.translations)
    trouble = source.notes + tuple(n for t in source.translations for n in t.notes)

    def plan(preset: Preset) -> list[VideoPlan]:
        plans = plan_video(info, preset, job.choices, source=job.asset.label, stem=job.stem,
                           source_digest=digest, analysis=analysis)
        if failure and (needs_analysis(info, preset, job.choices)
                        or needs_subjects(info.width, info.height, [preset], job.choices.focus)):
            plans = [replace(p, warnings=p.warnings + failure) for p in plans]
        if trouble:
            plans = [replace(p, warnings=p.warnings + trouble) for p in plans]
        return plans

    planned = _subtitled(presets, {preset.id: _attempt(plan, preset) for preset in presets},
                         source, digest)

    def chosen(preset: Preset) -> list[VideoPlan]:
        found = planned[preset.id]
        if isinstance(found, PlanError):
            raise found
        return found

    return plan_each(job, presets, chosen, out)


Planned = dict[str, list[VideoPlan] | PlanError]      # by preset id


def _attempt(plan: Callable[[Preset], list[VideoPlan]], preset: Preset
             ) -> list[VideoPlan] | PlanError:
    try:
        return plan(preset)
    except PlanError as exc:
        return exc


def _subtitled(presets: list[Preset], bases: Planned, source: Source, digest: str
               ) -> Planned:
    """Every plan with its subtitles. Burned subtitles of plans that would show the
    same picture but for where the text may stand are laid out in the intersection
    of their frames, so that they share one encode (pipeline.render.shared); the
    keys of plans that may share an encode name their partners."""
    by_id = {preset.id: preset for preset in presets}
    planned: Planned = {pid: plans if isinstance(plans, PlanError) else
                        [_with_subtitles(p, by_id[pid], source, digest) for p in plans]
                        for pid, plans in bases.items()}
    places = _places(planned)
    for index, box in shared_frames([plan for _, _, plan in places]).items():
        pid, n, plan = places[index]
        base, done = bases[pid], planned[pid]
        assert isinstance(base, list) and isinstance(done, list)
        done[n] = _with_subtitles(base[n], by_id[pid], source, digest,
                                  Frame(plan.size[0], plan.size[1], *box))
    places = _places(planned)
    for index, key in peer_keys([plan for _, _, plan in places]).items():
        pid, n, plan = places[index]
        done = planned[pid]
        assert isinstance(done, list)
        done[n] = replace(plan, key=key)
    return planned


def _places(planned: Planned) -> list[tuple[str, int, VideoPlan]]:
    """Every plan made, with its preset id and its place in that preset's list."""
    return [(pid, n, plan) for pid, plans in planned.items()
            if not isinstance(plans, PlanError) for n, plan in enumerate(plans)]


def _analysis(job: Job, info: VideoInfo, presets: list[Preset], digest: str,
              sound: Path | None) -> tuple[Analysis | None, tuple[str, ...]]:
    """The master's analysis when a cut or a crop needs it (with `sound`, the same
    decode writes the audio speech-to-text takes), and a note when it failed."""
    if not (any(needs_analysis(info, preset, job.choices) for preset in presets)
            or needs_subjects(info.width, info.height, presets, job.choices.focus)):
        return None, ()
    try:
        return analyze_video(job.asset.path, info, digest, job.asset.label, sound), ()
    except RenderError as exc:    # cuts then fall where planned, without the analysis
        return None, (f"analysis failed, so the crop does not follow the subject and cuts "
                      f"were not moved to shot changes or quiet moments: {exc.message}",)


def given_cues(job: Job, info: VideoInfo, presets: list[Preset], digest: str
               ) -> tuple[Source, bool]:
    """The master's subtitles when it brings them: a sidecar beside it, else an
    embedded text stream; else whether its speech must be transcribed (a preset
    shows subtitles and the master has sound). With the shoot's `languages`, the
    sidecars in the others (`clip.en.srt`) come along as translations."""
    languages = job.choices.languages
    first = languages[0] if languages else None
    tag = primary(first) if first else None
    translations = tuple(_translation(job, lang) for lang in languages[1:])
    translations = tuple(t for t in translations if t.cues or t.notes)
    sidecar = find_sidecar(job.asset.path, first, languages[1:])
    try:
        if sidecar is not None:
            hints = _hints(job)
            cues, encoding = read_cues(sidecar, job.asset.label, _encoding(job), hints)
            told = tag_of(sidecar) or first or hints[1]
            return Source(cues, origin(sidecar, encoding), primary(told), None, (), tag,
                          translations), False
        cues = embedded_cues(job.asset.path, info, job.asset.label)
        if cues:
            return Source(cues, "embedded stream", tag, None, (), tag, translations), False
        listen = bool(info.audio) and any(any(outputs(p)) for p in presets)
        return Source(tag=tag, translations=translations), listen
    except (InputError, RenderError) as exc:
        return Source(notes=(_without_subtitles(exc),), tag=tag,
                      translations=translations), False


def _translation(job: Job, language: str) -> Source:
    """The shoot's subtitles in one of its other languages, from `<stem>.<tag>.srt`."""
    found = find_translation(job.asset.path, language)
    if found is None:
        return Source()
    named = _encoding(job)
    known = lang_of(language)
    if named and known and not named.lower().startswith("utf") and \
            codecs.lookup(named).name not in {codecs.lookup(c).name for c in known.code_pages}:
        named = None            # the shoot's code page is not this language's: detected
    try:
        cues, encoding = read_cues(found, job.asset.label, named, (language,))
    except InputError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        return Source(notes=(f"no {language} subtitle files: {exc.message}{hint}",))
    return Source(cues, origin(found, encoding), primary(language), tag=primary(language))


def _encoding(job: Job) -> str | None:
    return job.choices.subtitles.encoding if job.choices.subtitles else None


def _hints(job: Job) -> tuple[str | None, ...]:
    """Languages the master's subtitle files are likely in, likeliest first."""
    copy = job.choices.copy
    brief, captions = (copy[1], copy[2]) if copy else (None, None)
    speech = job.choices.speech.language if job.choices.speech else None
    return (job.choices.languages[0] if job.choices.languages else None,
            (brief.language if brief else None) or (captions.language if captions else None),
            None if speech == "auto" else speech)


def _unheard(job: Job, digest: str) -> bool:
    """Whether speech-to-text will have to hear this master (no cached transcript)."""
    try:
        return heard(job.choices.speech or SpeechOptions(), digest) is None
    except RenderError:          # no provider: _speech says so
        return False


def _speech(job: Job, digest: str, sound: Path | None) -> Source:
    """The master's speech as subtitles (`sound`: its audio, when already decoded)."""
    speech = job.choices.speech or SpeechOptions()
    tag = primary(job.choices.languages[0]) if job.choices.languages else None
    try:
        found = transcribe(job.asset.path, speech, digest, job.asset.label, sound)
    except (InputError, RenderError) as exc:
        return Source(notes=(_without_subtitles(exc),), tag=tag)
    if not job.dry_run:
        _write_transcript(job, found)
    notes: tuple[str, ...] = ()
    if tag and found.language and found.language != tag and found.cues:
        notes = (f"the speech is in {name_of(found.language)}, not {name_of(tag)} (the "
                 f"shoot's first language): its subtitles are in {name_of(found.language)}",)
    return Source(found.cues, "speech", found.language, found.probability, notes, tag)


def _without_subtitles(exc: InputError | RenderError) -> str:
    hint = f" ({exc.hint})" if exc.hint else ""
    return f"rendered without subtitles: {exc.message}{hint}"


def _write_transcript(job: Job, found: Heard) -> None:
    """The transcript beside the outputs, for a person to correct (saved as a .srt
    beside the master, a corrected transcript wins over speech-to-text)."""
    body = {"source": job.asset.label, "language": found.language,
            "language_probability": found.probability, "cues": [
        {"start": c.start / 1000, "end": c.end / 1000, "text": c.text,
         "words": [{"start": w.start / 1000, "end": w.end / 1000, "word": w.text}
                   for w in c.words]} for c in found.cues]}
    atomic_write(job.out_dir / f"{job.stem}.transcript.json",
                 json.dumps(body, indent=1, ensure_ascii=False).encode("utf-8"))


def _with_subtitles(plan: VideoPlan, preset: Preset, source: Source, digest: str,
                    frame: Frame | None = None) -> VideoPlan:
    subtitles, notes = subtitle_plan(plan, preset, source, frame)
    if subtitles is None:
        return plan
    plan = replace(plan, subtitles=subtitles, warnings=plan.warnings + notes)
    return replace(plan, key=plan_key(plan.to_dict(), preset, digest))


def _render(job: Job, todo: list[tuple[Preset, VideoPlan]], out: JobResult) -> None:
    temps = temp_paths(job, todo)
    try:
        # An effect's module is looked up in operator folders first (pipeline.trust).
        folders = [Path(f) for f in job.choices.effect_folders]
        with timed("encode", job.asset.label):
            done = encode_all(job.asset.path, [plan for _, plan in todo], temps,
                              job.asset.label, folders=folders)
    except RenderError as exc:
        all_failed(job, todo, exc, out)
        cleanup(temps)
        return
    except BaseException:              # interrupted: nothing partial stays behind
        cleanup(temps)
        raise
    for index, error in done.failures.items():
        preset, plan = todo[index]
        out.errors.append(error)
        out.results.append(failed(job.asset, preset, error, plan.output, plan))
    for index, note in done.notes.items():
        preset, plan = todo[index]
        todo[index] = preset, replace(plan, warnings=plan.warnings + (note,))
    keep = [i for i in range(len(todo)) if i not in done.failures]
    with timed("checks", job.asset.label):
        publish_all(job, [todo[i] for i in keep], [temps[i] for i in keep], out)


def temp_paths(job: Job, todo: list[tuple[Preset, VideoPlan]]) -> list[Path]:
    """Hidden names beside each final output, for ffmpeg to write into."""
    temps: list[Path] = []
    try:
        for _, plan in todo:
            final = job.out_dir / plan.output
            final.parent.mkdir(parents=True, exist_ok=True)
            temps.append(claim(temp_path(final)))
    except BaseException:
        cleanup(temps)
        raise
    return temps


def cleanup(temps: list[Path]) -> None:
    for temp in temps:
        temp.unlink(missing_ok=True)


def publish_all(job: Job, todo: list[tuple[Preset, VideoPlan]], temps: list[Path],
                out: JobResult, note: str | None = None) -> None:
    """Verify each rendered file and rename it into place; failures stay per variant."""
    try:
        for (preset, plan), temp in zip(todo, temps, strict=True):
            try:
                made = publish(job, preset, plan, temp, job.out_dir / plan.output)
            except PipelineError as exc:
                out.errors.append(exc)
                out.results.append(failed(job.asset, preset, exc, plan.output, plan))
                continue
            made = replace(made, warnings=made.warnings + (note,)) if note else made
            receipts.written(made)
            out.results.append(made)
    finally:
        cleanup(temps)


def publish(job: Job, preset: Preset, plan: VideoPlan, temp: Path, final: Path) -> VariantResult:
    """Verify a rendered temporary file against its preset, then rename it into place."""
    info = read_video(temp)
    checks = check_video(temp, preset, plan, info)
    bad = [c for c in checks if not c.ok]
    if bad:
        detail = "; ".join(f"{c.name} is {c.actual}, expected {c.expected}" for c in bad)
        raise RenderError(f"output fails its preset's checks: {detail}", path=job.asset.label,
                          preset=preset.id, hint="adjust the preset in shoot.yaml")
    size, digest = temp.stat().st_size, sha256_file(temp)
    os.replace(temp, final)
    if plan.subtitles:
        for tag, fmt, cues in sidecar_files(plan.subtitles):   # caption files beside it
            caption = final.with_suffix(f".{tag}.{fmt}" if tag else f".{fmt}")
            scratch = claim(temp_path(caption))
            write_sidecar(cues, scratch, fmt)
            os.replace(scratch, caption)
    return with_facts(replace(result(job.asset, plan, "rendered"), bytes=size, sha256=digest,
                              checks=checks), info)
