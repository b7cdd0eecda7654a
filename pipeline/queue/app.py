"""The Celery application and its settings for long ffmpeg tasks.

Sources: docs.celeryq.dev, "Using Redis" (getting-started/backends-and-brokers/
redis.html, Visibility Timeout and Caveats), "Configuration and defaults"
(userguide/configuration.html) and "Tasks" (userguide/tasks.html, acks_late,
reject_on_worker_lost); kombu.transport.redis for the unacked-restore options.
"""

from __future__ import annotations

import os
from typing import Any

RENDER_QUEUE = "render"
SPEECH_QUEUE = "speech"    # speech-to-text: on machines of its own, or beside renders
QUEUES = (RENDER_QUEUE, SPEECH_QUEUE)
TASK = "repurpose.render"
SPEECH_TASK = "repurpose.speech"
# Longer than the longest render a worker is allowed (HARD_CAP_S): a message not
# acknowledged within it is given to another worker, so a shorter one would start
# a second copy of a render that is still running.
VISIBILITY_S = 12 * 3600
HARD_CAP_S = VISIBILITY_S - 600
RESULT_DAYS = 7            # results and receipts are kept this long in Redis


def visibility() -> int:
    """The visibility timeout: VISIBILITY_S, or REPURPOSE_QUEUE_VISIBILITY seconds
    (tests use a few seconds to see redelivery)."""
    try:
        return max(1, int(os.environ.get("REPURPOSE_QUEUE_VISIBILITY", VISIBILITY_S)))
    except ValueError:
        return VISIBILITY_S


def settings(broker: str) -> dict[str, Any]:
    seconds = visibility()
    transport = {
        "visibility_timeout": seconds,
        # How often a worker looks for messages whose worker vanished; kombu's
        # default sweep is every 100 s, much later than a short test timeout.
        "unacked_restore_interval": min(10, seconds),
        "unacked_restore_throttle": 1,
    }
    return {
        "broker_url": broker,
        "result_backend": broker,
        # JSON only: a broker others can write to must never make us unpickle.
        "task_serializer": "json", "result_serializer": "json",
        "accept_content": ["json"], "result_accept_content": ["json"],
        # Acknowledge when the render is done, not when it starts: a worker killed
        # mid-render leaves its message to be delivered again.
        "task_acks_late": True,
        # ... and a worker child that dies (kill -9, out of memory) must not have its
        # task acknowledged anyway, which is Celery's default for late acks.
        "task_reject_on_worker_lost": True,
        # One task reserved per worker process: a render takes minutes, and a
        # prefetched one would wait behind it while another machine sits idle.
        "worker_prefetch_multiplier": 1,
        # The visibility timeout, set everywhere Celery reads it for Redis: the
        # broker's transport, the result backend's transport, and the app setting.
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": seconds},
        "visibility_timeout": seconds,
        # Start-up retries so a worker started before Redis waits for it.
        "broker_connection_retry_on_startup": True,
        # STARTED is recorded, so a submitter can tell a running task from a lost one.
        "task_track_started": True,
        "result_expires": RESULT_DAYS * 86400,
        # A long-lived worker process is replaced now and then: decoders and
        # OpenCV can hold on to memory after a huge master.
        "worker_max_tasks_per_child": 50,
        "worker_max_memory_per_child": 2 * 1024 * 1024,        # KiB: 2 GiB
        "task_routes": {TASK: {"queue": RENDER_QUEUE}, SPEECH_TASK: {"queue": SPEECH_QUEUE}},
        "task_default_queue": RENDER_QUEUE,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
    }


def make_app(broker: str) -> Any:
    from celery import Celery

    app = Celery("repurpose")
    app.conf.update(settings(broker))
    return app


def time_limits(seconds: float | None) -> tuple[int, int]:
    """Soft and hard limits of one master's task: 10 minutes for a photo; for a
    video, 10 minutes plus a minute of work per second of master (4K into every
    preset on a small machine), within HARD_CAP_S. The soft limit comes first so
    the task can say what happened."""
    hard = 600 if not seconds else 600 + 60 * seconds
    hard = int(min(hard, HARD_CAP_S, visibility() - 60 if visibility() > 120 else hard))
    return max(1, hard - 30), hard
