"""--notify and --events: the summary of a finished render reaches a real local
webhook (at once; after a 500; never, when it hangs) while the render itself
always ends as it would have."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import ROOT, run_cli


class Hook:
    """A webhook on 127.0.0.1 that answers from a script of status codes (a number
    of seconds to hang, as a float, for a timeout) and records what it got."""

    def __init__(self, script: list[int | float]) -> None:
        self.script = list(script)
        self.got: list[dict[str, object]] = []
        self.headers: list[dict[str, str]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.got.append(json.loads(body))
                hook.headers.append(dict(self.headers))
                answer = hook.script.pop(0) if hook.script else 200
                if isinstance(answer, float):
                    time.sleep(answer)
                    answer = 200
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?key=secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook_factory() -> Iterator[type[Hook]]:
    made: list[Hook] = []

    class Made(Hook):
        def __init__(self, script: list[int | float]) -> None:
            super().__init__(script)
            made.append(self)

    yield Made
    for hook in made:
        hook.close()


@pytest.fixture
def shoot(tmp_path: Path) -> Path:
    folder = tmp_path / "shoot"
    folder.mkdir()
    shutil.copy(ROOT / "samples" / "shoot" / "astronaut.jpg", folder)
    return folder


def config(tmp_path: Path, url: str, timeout: float = 2, attempts: int = 3) -> Path:
    file = tmp_path / "operator.yaml"
    file.write_text(f"notify:\n  url: {url!r}\n  timeout: {timeout}\n  attempts: {attempts}\n")
    return file


def test_webhook_gets_the_summary(shoot: Path, tmp_path: Path, hook_factory: type[Hook]) -> None:
    hook = hook_factory([200])
    done = run_cli("render", shoot, "--out", tmp_path / "out", "-p", "x-image",
                   "-p", "instagram-feed-square", "--notify", hook.url, "--events")
    assert done.returncode == 0, done.stderr
    (summary,) = hook.got
    assert summary["event"] == "render.finished" and summary["ok"] is True
    assert summary["counts"] == {"rendered": 2}
    assert summary["manifest"] == str(tmp_path / "out" / "manifest.json")
    assert sorted(summary["review"]) == ["instagram-feed-square/astronaut.jpg",
                                         "x-image/astronaut.jpg"]
    assert hook.headers[0]["Content-Type"] == "application/json"
    # --events: the same summary as one JSON line on stdout.
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert events == [summary]


def test_webhook_500_is_tried_again(shoot: Path, tmp_path: Path,
                                    hook_factory: type[Hook]) -> None:
    hook = hook_factory([500, 200])
    done = run_cli("render", shoot, "--out", tmp_path / "out", "-p", "x-image",
                   "--config", config(tmp_path, hook.url))
    assert done.returncode == 0, done.stderr
    assert len(hook.got) == 2 and hook.got[0] == hook.got[1]
    assert "answered 500; trying again" in done.stderr
    assert "secret" not in done.stderr          # the URL's query is never shown


def test_webhook_that_hangs_never_fails_the_render(shoot: Path, tmp_path: Path,
                                                   hook_factory: type[Hook]) -> None:
    hook = hook_factory([3.0, 3.0])
    done = run_cli("render", shoot, "--out", tmp_path / "out", "-p", "x-image",
                   "--config", config(tmp_path, hook.url, timeout=0.5, attempts=2))
    assert done.returncode == 0, done.stderr
    assert "gave up after 2 attempts" in done.stderr
    assert (tmp_path / "out" / "x-image" / "astronaut.jpg").is_file()


def test_unreachable_webhook_and_failed_inputs(shoot: Path, tmp_path: Path) -> None:
    (shoot / "broken.jpg").write_bytes(b"\xff\xd8not a jpeg")
    done = run_cli("render", shoot, "--out", tmp_path / "out", "-p", "x-image", "--events",
                   "--config", config(tmp_path, "http://127.0.0.1:9/", 0.5, 1))
    assert done.returncode == 1, done.stderr        # as without --notify: an input failed
    (event,) = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert event["ok"] is False and event["errors"][0]["source"].endswith("broken.jpg")
    assert "gave up after 1 attempts" in done.stderr


def test_notify_is_the_operators_alone(shoot: Path, tmp_path: Path) -> None:
    (shoot / "shoot.yaml").write_text("notify: {url: 'http://127.0.0.1:9/'}\n")
    done = run_cli("render", shoot, "--out", tmp_path / "out", "-p", "x-image")
    assert done.returncode == 2
    assert "shoot.yaml" in done.stderr and "notify" in done.stderr
    bad = tmp_path / "operator.yaml"
    bad.write_text("notify: {url: 'file:///etc/passwd'}\n")
    done = run_cli("render", shoot, "--out", tmp_path / "out", "-p", "x-image", "--config", bad)
    assert done.returncode == 2 and "notify.url" in done.stderr
    done = run_cli("render", shoot, "--out", tmp_path / "out", "--notify", "ftp://x/")
    assert done.returncode == 2 and "--notify" in done.stderr


@pytest.mark.slow
def test_watch_notifies_each_finished_file(tmp_path: Path, hook_factory: type[Hook]) -> None:
    hook = hook_factory([])
    inbox = tmp_path / "inbox"
    inbox.mkdir(mode=0o700)
    shutil.copy(ROOT / "samples" / "shoot" / "astronaut.jpg", inbox)
    (inbox / "broken.jpg").write_bytes(b"\xff\xd8not a jpeg")
    (inbox / "shoot.yaml").write_text("targets: [x-image]\n")
    done = run_cli("watch", inbox, "--once", "--settle", "0", "--notify", hook.url, "--events")
    assert done.returncode == 1, done.stderr        # broken.jpg failed
    by_file = {s["shoot"][0]: s for s in hook.got}
    assert set(by_file) == {"astronaut.jpg", "broken.jpg"}
    assert by_file["astronaut.jpg"]["ok"] is True
    assert by_file["astronaut.jpg"]["review"] == ["x-image/astronaut.jpg"]
    assert by_file["broken.jpg"]["ok"] is False
    assert by_file["broken.jpg"]["moved_to"].startswith("Failed/")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert sorted(e["shoot"][0] for e in events) == ["astronaut.jpg", "broken.jpg"]
