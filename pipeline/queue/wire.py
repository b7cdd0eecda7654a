"""What travels through Redis, as JSON: a master's task (data only, never code
or settings that run code) and its result, and the path map of a worker whose
shared mount is elsewhere."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, PipelineError, Problem, ShootError
from pipeline.model import Check, Job, JobResult, VariantResult

VERSION = 1


@dataclass(frozen=True)
class Run:
    """What every master of one run shares."""

    out_dir: Path
    presets_dirs: tuple[Path, ...]
    only: tuple[str, ...]
    force: bool
    force_captions: bool
    trusted: bool


def task(job: Job, run: Run) -> dict[str, Any]:
    """The task of one master: what a worker needs to plan and render it again."""
    asset = job.asset
    return {"v": VERSION, "path": str(asset.path.absolute()), "label": asset.label,
            "stem": job.stem, "options_key": asset.options_key,
            "shoot_dir": str(asset.shoot_dir.absolute()) if asset.shoot_dir else None,
            "out": str(run.out_dir.absolute()),
            "presets_dirs": [str(Path(p).absolute()) for p in run.presets_dirs],
            "only": list(run.only), "force": run.force, "force_captions": run.force_captions,
            "trusted": run.trusted}


def master_key(body: Mapping[str, Any]) -> str:
    """One master rendered into one output folder under one name: two tasks with
    the same key never run at once (a redelivery, a run started again)."""
    key = json.dumps([body.get("out"), body.get("stem"), body.get("label")])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class PathMap:
    """`FROM=TO` prefixes: a path under FROM on the submitting machine is under TO
    here. The longest matching FROM wins; other paths are taken as they are."""

    def __init__(self, pairs: Sequence[str] = ()) -> None:
        self.pairs: list[tuple[str, str]] = []
        for pair in pairs:
            source, sep, target = pair.partition("=")
            if not sep or not source.startswith("/") or not target.startswith("/"):
                raise ValueError(f"--path-map {pair!r}: expected FROM=TO, two absolute paths")
            self.pairs.append((source.rstrip("/") or "/", target.rstrip("/") or "/"))
        self.pairs.sort(key=lambda p: -len(p[0]))

    def __call__(self, path: str) -> Path:
        for source, target in self.pairs:
            if path == source or path.startswith(source.rstrip("/") + "/"):
                rest = path[len(source.rstrip("/")):].lstrip("/")
                return Path(target) / rest if rest else Path(target)
        return Path(path)


def result(out: JobResult) -> dict[str, Any]:
    return {"v": VERSION, "results": [r.to_dict() for r in out.results],
            "errors": [error(e) for e in out.errors]}


def error(exc: PipelineError) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": type(exc).__name__, "message": exc.message,
                            "path": exc.path,
            "preset": exc.preset, "hint": exc.hint}
    problems = getattr(exc, "problems", None)
    if problems:
        body["problems"] = [asdict(p) for p in problems]
    for name in ("argv", "stderr_tail"):          # ffmpeg's, for REPURPOSE_DEBUG
        if hasattr(exc, name):
            body[name] = getattr(exc, name)
    return body


def job_result(body: Mapping[str, Any]) -> JobResult:
    """A worker's answer; anything that is not one is a RenderError of the master."""
    if not isinstance(body, Mapping) or body.get("v") != VERSION:
        raise ValueError("not a result of this version of repurpose")
    for name in ("results", "errors"):
        listed = body.get(name)
        if not isinstance(listed, list) or not all(isinstance(e, Mapping) for e in listed):
            raise ValueError(f"its {name} are not a list of objects")
    return JobResult([variant(r) for r in body["results"]],
                     [rebuilt(e) for e in body["errors"]])


def variant(entry: Mapping[str, Any]) -> VariantResult:
    """A variant's result as the worker sent it, its types checked: it came through
    Redis, and the manifest sorts and prints these fields."""
    for name in ("source", "preset", "path", "status"):
        if not isinstance(entry.get(name), str):
            raise ValueError(f"a variant's {name} is not text")
    fields = dict(entry)
    fields["warnings"] = tuple(fields.get("warnings") or ())
    fields["checks"] = tuple(Check(**c) for c in fields.get("checks") or ())
    known = set(VariantResult.__dataclass_fields__)
    return VariantResult(**{k: v for k, v in fields.items() if k in known})


def _kinds() -> dict[str, type[PipelineError]]:
    import pipeline.ffmpeg  # noqa: F401 - its errors are PipelineErrors too

    found: dict[str, type[PipelineError]] = {}
    todo: list[type[PipelineError]] = [PipelineError]
    while todo:
        kind = todo.pop()
        found[kind.__name__] = kind
        todo.extend(kind.__subclasses__())
    return found


def rebuilt(body: Mapping[str, Any]) -> PipelineError:
    """The error a worker reported, of the same kind where this side knows it (the
    watcher tells a full disk or a dead process from a bad master by its kind)."""
    kind = _kinds().get(str(body.get("kind")), PipelineError)
    exc = kind.__new__(kind)
    PipelineError.__init__(exc, str(body.get("message")), path=body.get("path"),
                           preset=body.get("preset"), hint=body.get("hint"))
    raw = body.get("problems")
    if isinstance(raw, list) or issubclass(kind, (ConfigError, ShootError)):
        listed = raw if isinstance(raw, list) else []
        problems = [Problem(**p) for p in listed if isinstance(p, dict)]
        exc.problems = problems or [Problem("", None, "", exc.message)]  # type: ignore[attr-defined]
    for name in ("argv", "stderr_tail"):
        if name in body:
            setattr(exc, name, body[name])
    return exc


def receipt(made: VariantResult) -> str:
    return json.dumps(made.to_dict(), separators=(",", ":"))

