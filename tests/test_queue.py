"""Rendering on queue workers: a real redis-server and real `repurpose worker`
subprocesses; masters rendered exactly once, a killed worker's master given
to another, Redis restarted mid-run, an unreachable broker, and a watcher with
a broker killed with kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from PIL import ImageOps
from queuehelpers import Redis, Worker

from pipeline.outputs import sha256_file

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def redis_server(tmp_path):
    server = Redis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def workers(tmp_path, redis_server):
    started: list[Worker] = []

    def start(count: int = 1, *extra: str) -> list[Worker]:
        for _ in range(count):
            started.append(Worker(redis_server.url, tmp_path / f"worker{len(started)}.log",
                                  *extra))
        return started[-count:]

    yield start
    for worker in started:
        worker.stop()


def photos(folder: Path, astronaut, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    small = astronaut.resize((320, 320))
    made = []
    for n in range(count):
        picture = small.rotate(n * 17) if n % 2 else ImageOps.mirror(small.rotate(n * 9))
        picture.save(folder / f"IMG_{n:04}.jpg", quality=88)
        made.append(folder / f"IMG_{n:04}.jpg")
    return made


def video(path: Path, pattern: str = "testsrc2", seconds: int = 6) -> Path:
    from videomedia import ffmpeg_exe

    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"{pattern}=s=1280x720:r=30:d={seconds}", "-f", "lavfi", "-i",
                    f"sine=f=440:d={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


def starts(server: Redis) -> dict[str, int]:
    client = server.client()
    return {key.decode().rsplit(":", 1)[1]: int(client.get(key))
            for key in client.scan_iter("repurpose:starts:*")}


def whole_outputs(out: Path) -> dict[str, dict]:
    """The manifest's entries, each checked against its file; no temporary file left."""
    body = json.loads((out / "manifest.json").read_text())
    for entry in body["variants"]:
        assert entry["status"] == "rendered", entry
        assert sha256_file(out / entry["path"]) == entry["sha256"], entry["path"]
    assert not [p for p in out.rglob(".*") if p.is_file()], list(out.rglob(".*"))
    return {entry["path"]: entry for entry in body["variants"]}


@pytest.mark.slow
def test_twenty_masters_over_two_workers_are_each_rendered_once(tmp_path, astronaut,
                                                                redis_server, workers):
    first, second = workers(2)
    photos(tmp_path / "shoot", astronaut, 20)
    done = run_cli("render", tmp_path / "shoot", "--out", tmp_path / "out", "-p", "x-image",
                   "-p", "instagram-feed-square", "--broker", redis_server.url)
    assert done.returncode == 0, done.stderr
    entries = whole_outputs(tmp_path / "out")
    assert len(entries) == 40
    ran = first.tasks("succeeded") + second.tasks("succeeded")
    assert len(ran) == len(set(ran)) == 20                 # each master once, on one worker
    assert first.tasks("succeeded") and second.tasks("succeeded")
    assert sorted(starts(redis_server).values()) == [1] * 20    # nothing delivered twice


@pytest.mark.slow
def test_a_worker_killed_mid_encode_leaves_its_master_to_the_other_once(tmp_path,
                                                                       redis_server, workers):
    first, second = workers(2)
    video(tmp_path / "shoot" / "clip.mp4", seconds=5)
    render = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "render", str(tmp_path / "shoot"), "--out",
         str(tmp_path / "out"), "-p", "instagram-reel", "-p", "x-video", "--broker",
         redis_server.url], stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 120
    while not (first.tasks("received") or second.tasks("received")):
        assert time.monotonic() < deadline and render.poll() is None
        time.sleep(0.1)
    victim, other = (first, second) if first.tasks("received") else (second, first)
    parts = []
    while not parts:                                     # its ffmpeg is writing
        assert time.monotonic() < deadline, victim.log()
        parts = [p for p in (tmp_path / "out").rglob(".*.part")]
        time.sleep(0.05)
    victim.kill()
    _, said = render.communicate(timeout=300)
    assert render.returncode == 0, said
    entries = whole_outputs(tmp_path / "out")
    assert sorted(entries) == ["instagram-reel/clip.mp4", "x-video/clip.mp4"]
    (task,) = victim.tasks("received")
    assert victim.tasks("succeeded") == [] and other.tasks("succeeded") == [task]
    assert starts(redis_server)[task] == 2              # one kill, one redelivery
    # (its speech-to-text task, before it in the chain, started once)
    assert sorted(starts(redis_server).values()) == [1, 2]


def test_a_task_delivered_again_writes_no_variant_twice(tmp_path, astronaut, redis_server,
                                                        monkeypatch):
    """Receipts: a second run of one task (the first one's worker died after its
    variants were written) answers with them and rewrites nothing, even forced;
    a task that started MAX_STARTS times without finishing fails with that reason."""
    from pipeline.model import Job
    from pipeline.queue.tasks import MAX_STARTS, render_task
    from pipeline.queue.wire import Run, job_result, task
    from pipeline.runner import plan_jobs

    (master,) = photos(tmp_path / "shoot", astronaut, 1)
    out = tmp_path / "out"
    planned = plan_jobs([master], out, (), ["x-image", "instagram-feed-square"], force=True)
    (job,) = planned.jobs
    assert isinstance(job, Job)
    body = task(job, Run(out, (), ("x-image", "instagram-feed-square"), True, False, True))
    client = redis_server.client()
    first = job_result(render_task(body, "t-1", client))
    assert [r.status for r in first.results] == ["rendered", "rendered"] and not first.errors
    made = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*.jpg")}
    again = job_result(render_task(body, "t-1", client))
    assert [(r.path, r.sha256) for r in again.results] == \
        [(r.path, r.sha256) for r in first.results]
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*.jpg")} == made
    for _ in range(MAX_STARTS - 2):
        render_task(body, "t-1", client)
    (error,) = job_result(render_task(body, "t-1", client)).errors
    assert f"stopped {MAX_STARTS} times" in error.message and type(error).__name__ == \
        "ProcessDied"


@pytest.mark.slow
def test_redis_restarted_during_a_run_loses_nothing(tmp_path, astronaut, redis_server,
                                                    workers):
    (worker,) = workers(1)
    photos(tmp_path / "shoot", astronaut, 12)
    render = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "render", str(tmp_path / "shoot"), "--out",
         str(tmp_path / "out"), "-p", "x-image", "-p", "instagram-feed-square",
         "--broker", redis_server.url], stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 120
    while len(worker.tasks("succeeded")) < 2:
        assert time.monotonic() < deadline and render.poll() is None, worker.log()
        time.sleep(0.05)
    redis_server.restart()
    _, said = render.communicate(timeout=300)
    assert render.returncode == 0, said
    entries = whole_outputs(tmp_path / "out")
    assert len(entries) == 24
    assert len(set(worker.tasks("succeeded"))) == 12


def test_an_unreachable_broker_is_one_line_and_exit_2(tmp_path, astronaut):
    from queuehelpers import free_port

    pytest.importorskip("celery", reason="needs the queue extra: repurpose[queue]")
    photos(tmp_path / "shoot", astronaut, 1)
    broker = f"redis://127.0.0.1:{free_port()}/0"
    for argv in (["render", tmp_path / "shoot", "--out", tmp_path / "out", "--broker", broker],
                 ["watch", tmp_path / "shoot", "--once", "--broker", broker],
                 ["worker", "--broker", broker]):
        done = run_cli(*argv)
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"error: cannot reach the broker {broker}") and \
            "start Redis" in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_watcher_with_a_broker_survives_kill_9(tmp_path, astronaut, redis_server, workers):
    workers(2)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "shoot.yaml").write_text("targets: [instagram-reel, x-video, x-image]\n"
                                      "speech: {provider: none}\n")
    video(inbox / "clip.mp4", seconds=8)
    astronaut.save(inbox / "IMG_0000.jpg", quality=90)     # big enough for the reel too
    daemon = subprocess.Popen([sys.executable, "-m", "pipeline", "watch", str(inbox),
                               "--settle", "0.3", "--jobs", "2", "--broker", redis_server.url],
                              stderr=subprocess.PIPE, text=True, env=ENV,
                              start_new_session=True)
    assert daemon.stderr is not None
    seen = ""
    deadline = time.monotonic() + 120
    while "clip.mp4: rendering" not in seen:
        assert time.monotonic() < deadline and daemon.poll() is None, seen
        seen += daemon.stderr.readline()
    time.sleep(1.0)
    os.killpg(daemon.pid, signal.SIGKILL)
    daemon.wait()
    done = run_cli("watch", inbox, "--once", "--settle", "0.3", "--broker", redis_server.url)
    assert done.returncode == 0, done.stderr
    with __import__("sqlite3").connect(inbox / ".repurpose" / "ledger.db") as db:
        assert dict(db.execute("select path, state from files")) == {
            "clip.mp4": "done", "IMG_0000.jpg": "done"}
    entries = whole_outputs(inbox / "Output")
    assert {"instagram-reel/clip.mp4", "x-video/clip.mp4", "x-image/IMG_0000.jpg"} <= \
        set(entries)
    assert not [p for p in (inbox / ".repurpose").iterdir() if p.name.startswith("work-")]


@pytest.mark.slow
def test_speech_to_text_runs_on_its_own_queue_and_the_render_takes_its_words(
        tmp_path, redis_server, workers):
    # The shoot's speech command is a privileged setting: workers honour it only
    # when started with --trust-shoots (and the submitter trusts the folder).
    (listener,) = workers(1, "--queues", "speech", "--trust-shoots")
    (renderer,) = workers(1, "--queues", "render", "--trust-shoots")
    video(tmp_path / "shoot" / "talk.mp4", seconds=4)
    tool = tmp_path / "asr.py"
    tool.write_text("import json, sys, wave\nw = wave.open(sys.argv[1])\n"
                    "print(json.dumps({'segments': [{'start': 0.5, 'end': 2.5,"
                    " 'text': 'heard on the speech queue'}]}))\n")
    (tmp_path / "shoot" / "shoot.yaml").write_text(
        f"speech: {{provider: command, command: [{json.dumps(sys.executable)}, "
        f"{json.dumps(str(tool))}]}}\n")
    done = run_cli("render", tmp_path / "shoot", "--out", tmp_path / "out", "-p",
                   "instagram-reel", "--broker", redis_server.url)
    assert done.returncode == 0, done.stderr
    body = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (reel,) = body["variants"]
    subtitles = reel["plan"]["subtitles"]
    assert subtitles["source"] == "speech"
    assert [" ".join(c[2].split()) for c in subtitles["cues"]] == ["heard on the speech queue"]
    assert listener.tasks("succeeded", "repurpose.speech") and \
        not listener.tasks("received")
    assert renderer.tasks("succeeded") and not renderer.tasks("received", "repurpose.speech")


@pytest.mark.slow
def test_a_worker_reads_and_writes_through_its_path_map(tmp_path, astronaut, redis_server):
    """The worker's mount is elsewhere: it reads the master and writes the outputs
    under the mapped folder, never the submitter's own path."""
    here, there = tmp_path / "studio", tmp_path / "mnt" / "studio"
    photos(here / "shoot", astronaut, 1)
    photos(there / "shoot", astronaut, 1)                # the same files, seen elsewhere
    worker = Worker(redis_server.url, tmp_path / "mapped.log", "--path-map",
                    f"{here}={there}")
    try:
        done = run_cli("render", here / "shoot", "--out", here / "out", "-p", "x-image",
                       "--broker", redis_server.url)
    finally:
        worker.stop()
    assert done.returncode == 0, done.stderr
    assert (there / "out" / "x-image" / "IMG_0000.jpg").is_file()
    assert not (here / "out" / "x-image").exists()
    (entry,) = json.loads((here / "out" / "manifest.json").read_text())["variants"]
    assert entry["sha256"] == sha256_file(there / "out" / "x-image" / "IMG_0000.jpg")


@pytest.mark.slow
def test_a_worker_refuses_privileged_settings_unless_it_trusts_shoots(tmp_path, redis_server,
                                                                      workers, astronaut):
    """A task cannot make a worker run a shoot.yaml's program (a forged one could say
    the folder is trusted): without --trust-shoots the master fails with the key."""
    workers(1)
    photos(tmp_path / "shoot", astronaut, 1)
    (tmp_path / "shoot" / "shoot.yaml").write_text(
        "speech: {provider: command, command: [/bin/sh, -c, 'touch pwned']}\n")
    done = run_cli("render", tmp_path / "shoot", "--out", tmp_path / "out", "-p", "x-image",
                   "--broker", redis_server.url)
    assert done.returncode == 1, done.stderr
    assert "speech.command" in done.stderr or "speech" in done.stderr, done.stderr
    assert not (tmp_path / "out" / "x-image").exists()
