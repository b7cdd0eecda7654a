"""The submitting side: one task per master, results collected as they finish.

Masters from a ZIP are extracted on this machine only, so they are rendered
here. While Redis restarts, the submitter waits and asks again: tasks and
results live in Redis, across restarts when it keeps them (`appendonly yes`,
see the README).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.errors import PipelineError, RenderError, SetupError
from pipeline.model import Job, JobResult
from pipeline.queue.app import (
    RENDER_QUEUE,
    SPEECH_QUEUE,
    SPEECH_TASK,
    TASK,
    make_app,
    time_limits,
)
from pipeline.queue.wire import Run, job_result, task

POLL_S = 0.2


def _down() -> tuple[type[BaseException], ...]:
    """The errors that mean "Redis is not answering now" (waited out); any other
    error is a real failure, reported, never retried for ever."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as Refused
    from redis.exceptions import TimeoutError as Slow

    return (OperationalError, Refused, Slow, ConnectionError, TimeoutError)


DOWN = _down()
Take = Callable[[JobResult], None]
Fraction = Callable[[int, float], None]


class BrokerUnreachable(SetupError):
    """The broker cannot be reached (exit 2): nothing was sent."""


def shown(broker: str) -> str:
    """The broker's address without a password."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(broker)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:                  # a port that is no number
        return "<unparsable URL>"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def connect(broker: str) -> Any:
    """The Celery app, once the broker answered; BrokerUnreachable when it does not,
    or is no Redis URL (the only broker and result store the settings are for)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(broker)
        scheme, port = parts.scheme, parts.port
    except ValueError:
        scheme, port = "", None
    if scheme not in ("redis", "rediss", "redis+socket") or (port is not None and port < 1):
        raise BrokerUnreachable(f"the broker must be a Redis URL, not {shown(broker)!r}",
                                hint="use --broker redis://HOST:6379/0")
    app = make_app(broker)
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0.2, timeout=5)
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds; each means "not there"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BrokerUnreachable(f"cannot reach the broker {shown(broker)}: {reason}",
                                hint="start Redis there, or check --broker / "
                                     "REPURPOSE_BROKER") from None
    return app


def execute(jobs: Sequence[Job], broker: str, run: Run, take: Take,
            on_fraction: Fraction | None, local: Callable[[Job], JobResult]) -> None:
    """Render every job on the queue (ZIP members with `local`), handing each
    result to `take` as it arrives; progress comes from the workers' reports."""
    app = connect(broker)
    pending: dict[str, tuple[int, Job, str | None]] = {}
    for number, job in enumerate(jobs):
        if job.asset.group is not None:         # extracted from a ZIP, on this machine only
            take(local(job))
            if on_fraction:
                on_fraction(number, 1.0)
            continue
        ident, before = _send(app, task(job, run), _listens(job))
        pending[ident] = (number, job, before)
    while pending:
        for ident in list(pending):
            number, job, before = pending[ident]
            try:
                outcome = _collect(app, ident, job, before)
            except _Moving as moving:
                if on_fraction:
                    on_fraction(number, moving.fraction)
                continue
            except _Again:
                continue
            del pending[ident]
            if on_fraction:
                on_fraction(number, 1.0)
            take(outcome)
        if pending:
            time.sleep(POLL_S)


class _Again(Exception):
    """Not finished, or Redis is not answering now: ask again later."""


class _Moving(_Again):
    def __init__(self, fraction: float) -> None:
        super().__init__()
        self.fraction = fraction


def _send(app: Any, body: dict[str, Any], speech: bool) -> tuple[str, str | None]:
    """Send one master's task (waiting while Redis restarts); returns the id of its
    render and of the task before it. With `speech`, a speech-to-text task on its
    own queue comes first and hands the render its transcript (a Celery chain)."""
    soft, hard = time_limits(_seconds(body))
    while True:
        try:
            if not speech:
                return str(app.send_task(TASK, args=[body], soft_time_limit=soft,
                                         time_limit=hard).id), None
            render = app.signature(TASK, kwargs={"body": body}, queue=RENDER_QUEUE,
                                   soft_time_limit=soft, time_limit=hard)
            listen = app.signature(SPEECH_TASK, args=[body], queue=SPEECH_QUEUE,
                                   soft_time_limit=soft, time_limit=hard)
            sent = (listen | render).apply_async()
            return str(sent.id), str(sent.parent.id)
        except DOWN:                    # Redis restarting: wait for it
            time.sleep(1.0)


def _listens(job: Job) -> bool:
    """Whether the master may need speech-to-text: a video (by its first bytes) with
    a video preset that shows subtitles. The speech task decides for sure."""
    from pipeline.sniff import media_of
    from pipeline.subtitles.plan import outputs

    if not any(outputs(p)[0] or outputs(p)[1] for p in job.presets_for("video")):
        return False
    kind = media_of(job.asset.path)
    return "video" in kind or "movie" in kind


def _collect(app: Any, ident: str, job: Job, before: str | None = None) -> JobResult:
    label = job.asset.label
    handle = app.AsyncResult(ident)
    try:
        state = handle.state
        if state == "PENDING" and before and app.AsyncResult(before).state == "FAILURE":
            # The speech task died (its worker's hard time limit): the render after
            # it is never sent.
            return JobResult(errors=[RenderError(
                "speech-to-text failed on its worker, so the render was not started",
                path=label, hint="see the speech worker's log; put a .srt beside the "
                                 "master to render without it")])
        if state == "PROGRESS":
            info = handle.info if isinstance(handle.info, dict) else {}
            try:
                fraction = float(info.get("fraction", 0.0))
            except (TypeError, ValueError):
                fraction = 0.0
            raise _Moving(min(max(fraction, 0.0), 1.0) if math.isfinite(fraction) else 0.0)
        if state not in ("SUCCESS", "FAILURE"):
            raise _Again()
        answer = handle.get(propagate=False, timeout=10)
    except _Again:
        raise
    except DOWN:                        # Redis went away between two questions
        raise _Again() from None
    except Exception as exc:  # noqa: BLE001 - an answer Celery cannot read (forged, foreign)
        return JobResult(errors=[RenderError(
            f"the worker's answer cannot be read: {type(exc).__name__}: {exc}", path=label,
            hint="run the same repurpose version on every machine; see the worker's log")])
    if state == "FAILURE":
        return JobResult(errors=[_failure(answer, label)])
    try:
        return job_result(answer)
    except (ValueError, KeyError, TypeError) as exc:
        return JobResult(errors=[RenderError(f"the worker's answer cannot be read: {exc}",
                                             path=label, hint="run the same repurpose "
                                                              "version on every machine")])


def _failure(exc: Any, label: str) -> PipelineError:
    """A task that raised instead of answering: a time limit, or a worker bug."""
    name = type(exc).__name__
    if "TimeLimit" in name:
        return RenderError("the render took longer than its time limit on the worker",
                           path=label, hint="render it alone, or on a faster machine")
    return RenderError(f"the worker failed: {name}: {exc}", path=label,
                       hint="see the worker's log; please report it")


def _seconds(body: dict[str, Any]) -> float | None:
    """The master's duration, when it is a video (for its time limits)."""
    try:
        import av

        with av.open(str(body["path"])) as container:
            if container.streams.video and container.duration:
                return float(container.duration) / 1_000_000
    except Exception:  # noqa: BLE001 - a photo, or a file PyAV cannot open: photo limits
        return None
    return None
