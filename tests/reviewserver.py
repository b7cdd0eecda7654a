"""The real `repurpose review` in a subprocess on a free port, for HTTP and
browser tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextmanager
def studio(sample: Path, folder: Path, *args: str, host: str = "127.0.0.1",
           by: str = "tester") -> Iterator[tuple[str, Path]]:
    """A copy of `sample` in `folder`/out served by the real CLI: (address, OUT)."""
    out = folder / "out"
    shutil.copytree(sample, out)
    port = free_port(host)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "review", str(out), "--host", host,
         "--port", str(port), "--by", by, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("review: "), (line, proc.stderr.read() if proc.stderr else "")
        address = line.split(" ", 1)[1].strip()
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((host, port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.05)
        yield address, out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
