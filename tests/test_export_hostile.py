"""`repurpose export` and --notify against what strangers and odd files bring:
a planted manifest, a FIFO in a variant's place, a name that is no UTF-8, a
webhook that answers garbage or keeps its secret in the path, odd base URLs
and schedules. Each ends in a skip with its reason or one usage line."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import ROOT, run_cli

from pipeline.export import ExportError, check_base_url, export
from pipeline.export.schedule import ScheduleError, parse_every, parse_start, spread
from pipeline.review.decisions import decide

LATER = "2030-06-03T09:00"


def tamper(out: Path, change) -> None:  # type: ignore[no-untyped-def]
    body = json.loads((out / "manifest.json").read_text())
    change(body, {v["path"]: v for v in body["variants"]})
    (out / "manifest.json").write_text(json.dumps(body))


@pytest.mark.slow
def test_planted_manifest_fields_are_skipped_not_crashed(exported_copy: Path) -> None:
    out = exported_copy

    def change(body, by):  # type: ignore[no-untyped-def]
        by["x-image/astronaut.jpg"]["checks"] = 5
        by["linkedin-image/astronaut.jpg"]["caption"]["hashtags"] = 5
        by["linkedin-image/astronaut.jpg"]["caption"]["findings"] = {"a": 1}
        by["pinterest-pin/astronaut.jpg"]["post"] = {"platform": "../x", "type": "post"}
        by["instagram-reel/clip.mp4"]["post"]["time"] = "25:99"
        by["tiktok-video/clip.mp4"]["caption"]["text"] = "lone \ud800 surrogate"
        del by["youtube-thumbnail/astronaut.jpg"]["preset"]
        body["carousels"] = body["carousels"] + body["carousels"] + [5, {"items": 7}]

    tamper(out, change)
    result = export(out, "metricool", base_url="https://cdn.example.com/",
                    start=parse_start(LATER, ZoneInfo("UTC")), tz=ZoneInfo("UTC"))
    skipped = {s.path: s.reason for s in result.skipped}
    assert "damaged (checks)" in skipped["x-image/astronaut.jpg"]
    assert "damaged (post)" in skipped["pinterest-pin/astronaut.jpg"]
    assert "not valid text" in skipped["tiktok-video/clip.mp4"]
    assert "damaged (preset)" in skipped["youtube-thumbnail/astronaut.jpg"]
    ids = [p.id for p in result.posts]
    assert "linkedin-image/astronaut.jpg" in ids
    assert len(ids) == len(set(ids))                         # a carousel listed twice: once
    reel = next(p for p in result.posts if p.id == "instagram-reel/clip.mp4")
    assert reel.at and reel.at.strftime("%H:%M") == "09:00"  # a bad time of day is ignored


@pytest.mark.slow
def test_a_fifo_in_a_variants_place_never_hangs(exported_copy: Path) -> None:
    out = exported_copy
    for name in ("x-image/astronaut.jpg", "linkedin-image/astronaut.caption.txt"):
        os.unlink(out / name)
        os.mkfifo(out / name)
    done = run_cli("export", out, "--to", "json", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "skipped: x-image/astronaut.jpg: its file changed" in done.stderr
    assert "astronaut.caption.txt is not a plain file" in done.stderr


@pytest.mark.slow
def test_a_name_that_is_no_utf8(tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    name = os.fsdecode(b"caf\xe9 #1.jpg")
    shutil.copy(ROOT / "samples" / "shoot" / "astronaut.jpg", shoot / name)
    out = tmp_path / "out"
    done = run_cli("render", shoot, "--out", out, "-p", "x-image", "--events")
    assert done.returncode == 0, done.stderr
    (event,) = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert event["review"] == [f"x-image/{os.fsdecode(b'caf')}\udce9 #1.jpg"]
    decide(out, [f"x-image/{name}"], "approve", by="ana")
    result = export(out, "metricool", base_url="https://cdn.example.com/",
                    start=parse_start(LATER, ZoneInfo("UTC")), tz=ZoneInfo("UTC"))
    (post,) = result.posts
    assert post.media[0].url == "https://cdn.example.com/x-image/caf%E9%20%231.jpg"
    assert b"caf%E9%20%231.jpg" in result.files[0][1]
    plan = json.loads(export(out, "json").files[0][1])
    assert plan["posts"][0]["id"] == f"x-image/{name}"


def test_base_urls_that_would_mislead_are_refused() -> None:
    for bad in ("https://user:pw@cdn.example.com/", "https://cdn\\@evil.example/",
                "https://cdn.example.com:99999/", "https://[::1/", "javascript:alert(1)",
                "https://cdn.example.com/\x01", "https://bücher.example/",
                "https://cdn.example.com/?sig=1"):
        with pytest.raises(ExportError):
            check_base_url(bad)
    assert check_base_url(" https://xn--bcher-kva.example/out ") == \
        "https://xn--bcher-kva.example/out/"


def test_schedules_at_the_edges() -> None:
    zone = ZoneInfo("Europe/Budapest")
    with pytest.raises(ScheduleError):
        parse_every("0m")
    with pytest.raises(ScheduleError):
        parse_start("0001-01-01T00:30", zone)
    from test_export import _post

    first = parse_start("2027-03-27T02:30", zone)
    timed = spread([_post(n, first) for n in range(2)], first, timedelta(days=1), zone)
    # 02:30 on the 28th does not exist there: 03:30, as the clocks show it.
    assert [p.at.astimezone(zone).strftime("%d %H:%M") for p in timed if p.at] == [
        "27 02:30", "28 03:30"]
    late = parse_start("9999-12-31T23:00", zone)
    with pytest.raises(ScheduleError):
        spread([_post(n, late) for n in range(2)], late, timedelta(days=1), zone)


@pytest.mark.slow
def test_drafts_never_go_where_they_would_be_posted(exported: Path) -> None:
    result = export(exported, "hootsuite", start=parse_start(LATER, ZoneInfo("UTC")),
                    tz=ZoneInfo("UTC"), include_drafts=True)
    skipped = {s.path: s.reason for s in result.skipped}
    assert "has no way to mark one" in skipped["x-image/logo.jpg"]
    done = run_cli("export", exported, "--to", "csv", "--start", "9999-12-31T23:58",
                   "--every", "1d")
    assert done.returncode == 2 and "9999" in done.stderr and "Traceback" not in done.stderr


def _garbage_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HELLO\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    return server, server.getsockname()[1]


def test_webhook_answering_garbage_or_nothing_never_fails_the_render(tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(ROOT / "samples" / "shoot" / "astronaut.jpg", shoot)
    server, port = _garbage_server()
    try:
        config = tmp_path / "operator.yaml"
        config.write_text(f"notify: {{url: 'http://127.0.0.1:{port}/services/T0/B0/SECRETTOKEN'"
                          ", timeout: 1, attempts: 2}\n")
        done = run_cli("render", shoot, "--out", tmp_path / "out", "-p", "x-image",
                       "--config", config)
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "gave up after 2 attempts" in done.stderr
    assert "SECRETTOKEN" not in done.stderr and f"127.0.0.1:{port}/..." in done.stderr
