"""Shared by the watcher fault tests: `repurpose watch` in a subprocess with its
stderr read line by line, an inbox that renders photos for x-image, and a photo
dropped into it."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import ROOT
from PIL import Image

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
WATCH = [sys.executable, "-m", "pipeline", "watch"]


class Daemon:
    """`repurpose watch` in a subprocess, its stderr read line by line."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=ENV)
        self.said: list[str] = []
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, *words: str, within: float = 300) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.said.append(line)
            if all(w in line for w in words):
                return line
        raise AssertionError(f"no line with {words}; it said:\n{''.join(self.said)}")

    def stop(self) -> str:
        """SIGTERM, then the rest of what it said; the running render finishes first."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        while (line := self.lines.get(timeout=10)) is not None:
            self.said.append(line)
        return "".join(self.said)


def photo(path: Path, colour: str = "red") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (800, 600), colour).save(path, "JPEG")


def inbox_at(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shoot.yaml").write_text("targets: [x-image]\n")
    return folder
