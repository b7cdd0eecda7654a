"""Rendering on other machines: one Celery task per master, Redis in between.

`repurpose render --broker URL` and `repurpose watch --broker URL` plan as
always, then send each master to the `render` queue instead of rendering it
in-process; `repurpose worker` takes them. A worker plans the master again
from the task's data alone (paths, its output name, preset ids, flags) with
its own presets and its own --config, reads the master and the shoot.yaml from
the shared mount (`--path-map FROM=TO` where it is mounted elsewhere), renders
it with the same code, and sends the variants' results back; the submitting
side writes the manifest, the ledger and the progress as for a local render.

The traps of long tasks on Celery with Redis are handled in app.py (late
acknowledgement, one task prefetched, a visibility timeout past the longest
render, time limits from the master's duration) and tasks.py (starts counted
by us, receipts so a redelivered task writes no variant twice, one run of a
master at a time). Messages are JSON only: nothing read from Redis is ever
unpickled.
"""
