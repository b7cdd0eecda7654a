"""A real redis-server on 127.0.0.1 at a free port, and real `repurpose worker`
subprocesses, for the queue tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

VISIBILITY_S = 20           # longer than any render in the tests, so only a kill redelivers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def need(program: str, package: str) -> str:
    found = shutil.which(program)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is missing: .ci/run installs the {package} package")
        pytest.skip(f"needs the {package} system package (apt-get install {package})")
    return found


class Redis:
    """redis-server keeping everything it is told (appendonly, fsync always), so a
    restart loses nothing, as the README asks of a production Redis."""

    def __init__(self, folder: Path) -> None:
        self.exe = need("redis-server", "redis-server")
        pytest.importorskip("celery", reason="needs the queue extra: repurpose[queue]")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder),
             "--protected-mode", "yes", "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self.answers():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.exceptions.ConnectionError:
            return False

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(port=self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()


class Worker:
    """`repurpose worker` in a session of its own, its log in a file."""

    def __init__(self, broker: str, log: Path, *extra: str) -> None:
        self.log_path = log
        # A cache of its own, as on a machine of its own.
        env = {**os.environ, "PYTHONPATH": str(ROOT),
               "REPURPOSE_QUEUE_VISIBILITY": str(VISIBILITY_S),
               "REPURPOSE_CACHE": str(log.with_suffix(".cache"))}
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "worker", "--broker", broker,
                 "--concurrency", "1", *extra], stdout=sink, stderr=subprocess.STDOUT,
                env=env, start_new_session=True)
        self.wait_for("ready.")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, within: float = 120) -> None:
        deadline = time.monotonic() + within
        while text not in self.log():
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.log()}"
            time.sleep(0.1)

    def tasks(self, word: str, name: str = "repurpose.render") -> list[str]:
        """Ids of the `name` tasks this worker logged with `word` (received, succeeded)."""
        return [line.split("[", 1)[1].split("]", 1)[0] for line in self.log().splitlines()
                if f"{name}[" in line and f"] {word}" in line]

    def kill(self) -> None:
        """kill -9 of the worker, its pool and their ffmpeg."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
