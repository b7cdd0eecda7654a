"""The worker's side: one task renders one master.

The task plans the master again from its data with this worker's presets and
--config (pipeline.runner.job_for), then renders it with the same code as a
local run. Three records in Redis, keyed by the task's id, make it safe to
deliver again:

- starts: every start is counted; a master whose task started MAX_STARTS
  times without finishing (it killed its worker each time: a decoder crash,
  memory) fails with that reason instead of being delivered for ever;
- a lock on the master and its output folder: one render of it at a time; a
  second delivery while the first still runs (the visibility timeout passed,
  or a watcher restarted after a crash sent it again) waits for it;
- receipts: each variant written in place is recorded at once, and a later
  run of the task skips those variants, even with --force: no variant is
  written twice, and a render killed after its third photo variant does not
  redo the first three.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.queue.app import RESULT_DAYS, SPEECH_TASK, TASK, make_app, visibility
from pipeline.queue.wire import VERSION, PathMap, master_key, receipt, result

MAX_STARTS = 3
LOCK_S = 60                # a lock not renewed this long belongs to a worker that died
# (at most the visibility timeout, so a test with a short one sees redelivery soon)
LOCK_POLL_S = 1.0
PATH_MAP_ENV = "REPURPOSE_PATH_MAP"          # JSON list of FROM=TO, set by `repurpose worker`
CONFIG_ENV = "REPURPOSE_WORKER_CONFIG"       # the worker's --config file
PRESETS_ENV = "REPURPOSE_WORKER_PRESETS"     # JSON list of the worker's --presets-dir
TRUST_ENV = "REPURPOSE_WORKER_TRUSTS"        # "1": --trust-shoots was given
PROGRESS_EVERY_S = 1.0
OUTAGE_S = 300.0           # how long a task waits for Redis to come back


class Patient:
    """A Redis client whose commands wait for a Redis that is restarting (up to
    OUTAGE_S) instead of failing the render they keep records for."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        command = getattr(self.client, name)

        def patient(*args: Any, **kwargs: Any) -> Any:
            from redis.exceptions import ConnectionError as Down
            from redis.exceptions import TimeoutError as Slow

            deadline = time.monotonic() + OUTAGE_S
            while True:
                try:
                    return command(*args, **kwargs)
                except (Down, Slow):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)

        return patient


def worker_app(broker: str) -> Any:
    """The Celery app with the render task, as a worker runs it."""
    app = make_app(broker)

    @app.task(name=TASK, bind=True)  # type: ignore[untyped-decorator]
    def render(self: Any, first: dict[str, Any],
               body: dict[str, Any] | None = None) -> dict[str, Any]:
        # Alone: render(body). After a speech task (a chain): render(its answer, body=...).
        heard, body = (None, first) if body is None else (first, body)
        return render_task(body, self.request.id, Patient(self.backend.client),
                           lambda fraction: _progress(self, fraction), heard)

    @app.task(name=SPEECH_TASK, bind=True)  # type: ignore[untyped-decorator]
    def speech(self: Any, body: dict[str, Any]) -> dict[str, Any]:
        return speech_task(body, self.request.id, Patient(self.backend.client))

    return app


def _progress(task: Any, fraction: float) -> None:
    """Progress for the submitter's bar; a Redis that is away meanwhile never fails
    the render (this runs inside ffmpeg's progress reader)."""
    try:
        task.update_state(state="PROGRESS", meta={"fraction": round(fraction, 3)})
    except Exception:  # noqa: BLE001 - only the bar misses a step
        return


def render_task(body: dict[str, Any], task_id: str, redis: Any,
                progress: Callable[[float], None] | None = None,
                heard: dict[str, Any] | None = None) -> dict[str, Any]:
    """Render the master of `body`; the answer is wire.result's JSON. `heard`: a
    speech task's answer, whose transcript the render then takes from the cache."""
    from pipeline.errors import ProcessDied, RenderError
    from pipeline.model import JobResult

    if body.get("v") != VERSION:
        return result(JobResult(errors=[RenderError(
            f"a task of another version of repurpose ({body.get('v')!r})",
            path=str(body.get("label")), hint="run the same repurpose version everywhere")]))
    keys = _keys(task_id, master_key(body))
    expiry = RESULT_DAYS * 86400
    starts = int(redis.incr(keys["starts"]))
    redis.expire(keys["starts"], expiry)
    if starts > MAX_STARTS:
        return result(JobResult(errors=[ProcessDied(
            f"the render stopped {MAX_STARTS} times without finishing (its worker was "
            "killed each time); it may crash the decoder or need more memory than a "
            "worker has", path=str(body.get("label")),
            hint="render it alone on a larger machine, or export the master again")]))
    me = f"{socket.gethostname()}:{os.getpid()}:{task_id}"
    hold = min(LOCK_S, visibility())
    while not redis.set(keys["lock"], me, nx=True, ex=hold):
        time.sleep(LOCK_POLL_S)          # the same master is being rendered elsewhere
    beat = threading.Event()
    heart = threading.Thread(target=_keep, args=(redis, keys["lock"], me, hold, beat),
                             daemon=True)
    heart.start()
    try:
        return _render(body, keys, redis, expiry, progress, heard)
    finally:
        beat.set()
        heart.join()
        redis.eval(RELEASE, 1, keys["lock"], me)


# Compare-and-act on the lock in one step (Redis runs a script atomically): another
# worker's lock, taken after ours lapsed, is never extended or removed by us.
RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
           "return redis.call('del', KEYS[1]) else return 0 end")
RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
         "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end")


def _keep(redis: Any, key: str, me: str, hold: int, stop: threading.Event) -> None:
    """Hold the lock while the render runs; a killed worker's lock lapses in `hold` s."""
    while not stop.wait(hold / 4):
        try:
            redis.eval(RENEW, 1, key, me, hold)
        except Exception:  # noqa: BLE001 - Redis restarting: the next beat tries again
            continue


def _keys(task_id: str, master: str) -> dict[str, str]:
    return {"starts": f"repurpose:starts:{task_id}", "done": f"repurpose:done:{task_id}",
            "lock": f"repurpose:lock:{master}"}


def _render(body: dict[str, Any], keys: dict[str, str], redis: Any, expiry: int,
            progress: Callable[[float], None] | None,
            heard: dict[str, Any] | None = None) -> dict[str, Any]:
    from dataclasses import replace

    from pipeline import progress as bar
    from pipeline import receipts
    from pipeline.errors import PipelineError
    from pipeline.model import JobResult
    from pipeline.render.jobs import render_job

    try:
        job = _job(body)
    except PipelineError as exc:
        return result(JobResult(errors=[exc]))
    done = {}
    for path, entry in (redis.hgetall(keys["done"]) or {}).items():
        try:
            found = json.loads(entry)
        except ValueError:
            continue                    # not a receipt of ours: that variant is rendered
        if isinstance(found, dict):
            done[path.decode() if isinstance(path, bytes) else str(path)] = found
    job = replace(job, done=done)
    _remember(heard, job)
    _remove_dead_temps(job)

    def written(made: Any) -> None:
        redis.hset(keys["done"], made.path, receipt(made))
        redis.expire(keys["done"], expiry)

    last = [0.0]

    def moved(fraction: float) -> None:
        if progress is not None and time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            progress(fraction)

    receipts.set_sink(written)
    bar.set_sink(moved)
    try:
        return result(render_job(job))
    finally:
        receipts.set_sink(None)
        bar.set_sink(None)


def _job(body: dict[str, Any]) -> Any:
    """The master's job, planned here as the submitter planned it."""
    from pipeline.errors import InputError, ShootError
    from pipeline.model import Asset
    from pipeline.outputs import load_previous
    from pipeline.runner import context_of, job_for
    from pipeline.trust import load_operator

    where = path_map()
    config = os.environ.get(CONFIG_ENV)
    # The worker's own presets and trust: a task names neither (a preset may run an
    # effect, a trusted shoot.yaml a program).
    presets_dirs = [Path(p) for p in json.loads(os.environ.get(PRESETS_ENV, "[]"))]
    trusted = bool(body.get("trusted")) and os.environ.get(TRUST_ENV) == "1"
    operator = load_operator(Path(config) if config else None)
    path = where(str(body["path"]))
    if not path.is_file():
        raise InputError(f"not found on this worker as {path}", path=str(body["label"]),
                         hint="mount the shared folder on every worker, or map it with "
                              "repurpose worker --path-map FROM=TO")
    stem = str(body["stem"])
    if not stem or stem in (".", "..") or "/" in stem or "\0" in stem:
        raise InputError(f"the task's output name {stem!r} is not a file name",
                         path=str(body["label"]), hint="the task was not sent by repurpose")
    shoot_dir = where(body["shoot_dir"]) if body.get("shoot_dir") else None
    asset = Asset(path, str(body["label"]), stem, shoot_dir,
                  str(body["options_key"]))
    ctx = context_of(shoot_dir, presets_dirs, operator, trusted)
    if isinstance(ctx, ShootError):
        raise ShootError(ctx.problems, path=asset.label, hint=ctx.hint)
    out_dir = where(str(body["out"]))
    return job_for(asset, str(body["stem"]), ctx, out_dir, list(body["only"]),
                   load_previous(out_dir), bool(body["force"]), False,
                   bool(body["force_captions"]))


def _remove_dead_temps(job: Any) -> None:
    """Temporary files of exactly this master's outputs (`.{name}.{pid}.part` and
    their side files) left by a worker killed on this machine."""
    from pipeline.outputs import TEMP_NAME, alive

    for preset in job.presets:
        folder = job.out_dir / preset.id
        mine = re.compile(re.escape(job.stem) + r"(\.part[0-9]+)?\.[A-Za-z0-9]+(\..+)?")
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            match = TEMP_NAME.fullmatch(name)
            if match and mine.fullmatch(match["name"]) and not alive(int(match["pid"])):
                (folder / name).unlink(missing_ok=True)


def path_map() -> PathMap:
    try:
        pairs = json.loads(os.environ.get(PATH_MAP_ENV, "[]"))
    except ValueError:
        pairs = []
    return PathMap([str(p) for p in pairs] if isinstance(pairs, list) else [])


_ENTRY = re.compile(r"[0-9a-f]{64}\.speech-v[0-9]+-[0-9a-f]{16}\.json")


def speech_task(body: dict[str, Any], task_id: str = "", redis: Any = None
                ) -> dict[str, Any]:
    """The master's speech as cues, when its render will need them (a video with
    sound, a preset showing subtitles, no subtitles of its own); the render task
    after it takes them. Nothing to hear, or any failure (its time limit too): an
    empty answer, and the render finds out (and reports) for itself."""
    from pipeline.errors import PipelineError
    from pipeline.outputs import sha256_file
    from pipeline.probe import probe_video
    from pipeline.render.videojob import given_cues
    from pipeline.schema import SpeechOptions
    from pipeline.speech import transcribe
    from pipeline.speech.providers import transcript_entry

    nothing: dict[str, Any] = {"v": VERSION, "entry": None, "cues": []}
    if redis is not None and task_id:
        key = f"repurpose:starts:{task_id}"
        started = int(redis.incr(key))
        redis.expire(key, RESULT_DAYS * 86400)
        if started > MAX_STARTS:         # it killed its worker each time: the render tries
            return nothing
    try:
        job = _job(body)
        info = probe_video(job.asset)
        digest = sha256_file(job.asset.path)
        _, listen = given_cues(job, info, job.presets_for("video"), digest)
        if not listen:
            return nothing
        options = job.choices.speech or SpeechOptions()
        found = transcribe(job.asset.path, options, digest, job.asset.label)
        return {"v": VERSION, "entry": transcript_entry(options, digest), **found.to_dict()}
    except (PipelineError, OSError):
        return nothing
    except Exception:  # noqa: BLE001 - a failed link would leave its render unsent for good
        return nothing


def _remember(heard: dict[str, Any] | None, job: Any) -> None:
    """Put a speech task's transcript where this machine's render looks for it: only
    under the name this master and its speech settings give, and only cues of the
    right shape (the answer came through Redis)."""
    from pipeline.analysis import cache
    from pipeline.outputs import sha256_file
    from pipeline.schema import SpeechOptions
    from pipeline.speech.providers import parse, transcript_entry

    if not isinstance(heard, dict) or heard.get("v") != VERSION:
        return
    entry, found = heard.get("entry"), parse(heard)
    if not (isinstance(entry, str) and _ENTRY.fullmatch(entry) and found is not None):
        return
    try:
        expected = transcript_entry(job.choices.speech or SpeechOptions(),
                                    sha256_file(job.asset.path))
    except Exception:  # noqa: BLE001 - no provider, an unreadable master: the render says
        return
    if entry == expected:
        cache.store(entry, found.to_dict())
