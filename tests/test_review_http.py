"""The review studio over HTTP: the real `repurpose review` on a free port,
asked with raw requests (no client normalises the path for us)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the review extra: pip install 'repurpose[review]'")
pytest.importorskip("uvicorn", reason="the review extra: pip install 'repurpose[review]'")

from reviewserver import studio  # noqa: E402


def raw(address: str, target: str, method: str = "GET", headers: dict[str, str] | None = None,
        body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request with `target` sent exactly as written."""
    host_port = address.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    head = {"Host": host_port, "Connection": "close", **(headers or {})}
    if body:
        head["Content-Length"] = str(len(body))
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items()), "", ""]
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall("\r\n".join(lines).encode() + body)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    header, _, content = data.partition(b"\r\n\r\n")
    status_line, *fields = header.decode("latin-1").split("\r\n")
    found = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    return int(status_line.split()[1]), found, content


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def token_of(page: bytes) -> str:
    match = re.search(rb'name="review-token" content="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1).decode()


def post(address: str, url: str, data: dict, token: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Review-Token"] = token
    status, _, body = raw(address, url, "POST", headers, json.dumps(data).encode())
    return status, json.loads(body or b"{}")


@pytest.fixture
def served(review_sample, tmp_path):
    with studio(review_sample, tmp_path) as (address, out):
        yield address, out


def test_the_overview_lists_every_variant_grouped_by_master(served):
    address, out = served
    status, _, page = raw(address, "/")
    assert status == 200
    paths = [v["path"] for v in manifest(out)["variants"]]
    assert len(paths) == 12
    listed = re.findall(rb'<li class="card [a-z]+" data-path="([^"]+)"', page)
    assert sorted(p.decode() for p in listed) == sorted(paths)
    masters = re.findall(rb"<h2>([^<]+)</h2>", page)
    assert len(masters) == 4          # astronaut, clip, landscape, logo


@pytest.mark.parametrize("target", [
    "/files/../manifest.json", "/files/%2e%2e/manifest.json", "/files/..%2fmanifest.json",
    "/files/%252e%252e/manifest.json", "/files/x-image/..%2f..%2fmanifest.json",
    "/files/manifest.json", "/files/.repurpose/manifest.lock", "/files//etc/passwd",
    "/files/%2fetc%2fpasswd", "/files/x-image/outside.jpg", "/files/linked/astronaut.jpg",
    "/files/x-image\\..\\..\\manifest.json", "/thumbs/../manifest.json",
    "/thumbs/x-image/outside.jpg", "/files/x-image/astronaut.jpg%00.txt",
])
def test_traversal_and_links_out_of_out_get_404(served, tmp_path, target):
    address, out = served
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8\xff secret bytes")
    (out / "x-image" / "outside.jpg").symlink_to(secret)
    (out / "linked").symlink_to(out / "x-image")
    status, _, body = raw(address, target)
    assert status == 404, (target, status, body[:200])
    assert b"secret" not in body and b"schema_version" not in body and b"root:" not in body


def test_a_video_answers_a_range_request_with_206(served):
    address, out = served
    whole = (out / "instagram-reel" / "clip.mp4").read_bytes()
    status, headers, body = raw(address, "/files/instagram-reel/clip.mp4",
                                headers={"Range": "bytes=100-1099"})
    assert status == 206
    assert headers["content-range"] == f"bytes 100-1099/{len(whole)}"
    assert body == whole[100:1100]
    status, headers, body = raw(address, "/files/instagram-reel/clip.mp4")
    assert status == 200 and body == whole and headers.get("accept-ranges") == "bytes"


def test_thumbnails_are_small_jpegs_cached_under_the_state_folder(served):
    from io import BytesIO

    from PIL import Image

    address, out = served
    for path in ("x-image/astronaut.jpg", "instagram-reel/clip.mp4"):
        status, headers, body = raw(address, f"/thumbs/{path}")
        assert status == 200 and headers["content-type"] == "image/jpeg"
        with Image.open(BytesIO(body)) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) <= 960
    assert len(list((out / ".repurpose" / "thumbs").iterdir())) >= 2


def test_every_write_needs_the_token(served):
    address, out = served
    before = manifest(out)
    data = {"paths": ["x-image/astronaut.jpg"], "action": "approve"}
    assert post(address, "/api/decide", data, None)[0] == 403
    assert post(address, "/api/decide", data, "wrong")[0] == 403
    assert manifest(out) == before
    token = token_of(raw(address, "/")[2])
    status, answer = post(address, "/api/decide", data, token)
    assert status == 200, answer
    entry = next(v for v in manifest(out)["variants"] if v["path"] == "x-image/astronaut.jpg")
    assert entry["review"]["status"] == "approved" and entry["review"]["by"] == "tester"


def test_reject_needs_a_reason_and_a_stale_version_is_a_conflict(served):
    address, out = served
    token = token_of(raw(address, "/")[2])
    path = "instagram-feed-square/landscape.jpg"
    status, answer = post(address, "/api/decide", {"paths": [path], "action": "reject",
                                                   "reason": "  "}, token)
    assert status == 400 and "reason" in answer["error"]
    page = raw(address, f"/v/{path}")[2]
    seen = re.search(rb'data-version="([^"]+)"', page).group(1).decode()
    first = post(address, "/api/decide", {"paths": [path], "action": "reject",
                                          "reason": "horizon tilted", "versions": {path: seen}},
                 token)
    assert first[0] == 200
    second = post(address, "/api/decide", {"paths": [path], "action": "approve",
                                           "versions": {path: seen}}, token)
    assert second[0] == 409 and path in second[1]["error"]
    entry = next(v for v in manifest(out)["variants"] if v["path"] == path)
    assert entry["review"]["status"] == "rejected"
    assert entry["review"]["reason"] == "horizon tilted"


def test_a_host_header_that_is_not_ours_is_refused(served):
    address, _ = served
    status, _, _ = raw(address, "/", headers={"Host": "attacker.example"})
    assert status == 421


def test_off_loopback_every_request_needs_the_token(review_sample, tmp_path):
    with studio(review_sample, tmp_path, host="127.0.0.2") as (address, out):
        assert "?token=" in address
        base, token = address.split("?token=")
        assert raw(base, "/")[0] == 403
        assert raw(base, "/files/x-image/astronaut.jpg")[0] == 403
        status, headers, _ = raw(base, f"/?token={token}")
        assert status == 303 and "token" not in headers["location"]
        cookie = headers["set-cookie"].split(";", 1)[0]
        assert "httponly" in headers["set-cookie"].lower()
        status, _, page = raw(base, "/", headers={"Cookie": cookie})
        assert status == 200 and b"x-image/astronaut.jpg" in page
        data = {"paths": ["x-image/astronaut.jpg"], "action": "approve"}
        status, _, _ = raw(base, "/api/decide", "POST",
                           {"Cookie": cookie, "Content-Type": "application/json"},
                           json.dumps(data).encode())
        assert status == 403                     # the cookie alone never writes
        assert post(base, "/api/decide", data, token)[0] == 200


def test_the_master_is_shown_with_the_crop_window_and_kept_ranges(review_sample, tmp_path):
    from io import BytesIO

    from PIL import Image

    with studio(review_sample, tmp_path, "--masters", str(review_sample.parent)) as (address, out):
        entries = {v["path"]: v for v in manifest(out)["variants"]}
        for path in ("x-image/astronaut.jpg", "instagram-reel/clip.mp4"):
            status, headers, body = raw(address, f"/masters/{path}")
            assert status == 200 and headers["content-type"] == "image/jpeg"
            with Image.open(BytesIO(body)) as shown:
                master = review_sample.parent / entries[path]["source"]
                if path.endswith(".jpg"):
                    with Image.open(master) as original:
                        want = original.width / original.height
                else:
                    want = 1280 / 720
                assert abs(shown.width / shown.height - want) < 0.02
            page = raw(address, f"/v/{path}")[2].decode()
            crop = entries[path]["plan"]["crop"]
            rect = re.search(r'<rect id="crop-window" x="([\d.]+)" y="([\d.]+)" '
                             r'width="([\d.]+)" height="([\d.]+)"', page)
            assert rect, page
            assert [float(n) for n in rect.groups()] == pytest.approx(
                [crop["left"], crop["top"], crop["right"] - crop["left"],
                 crop["bottom"] - crop["top"]])
        page = raw(address, "/v/instagram-reel/clip.mp4")[2].decode()
        (start, end), = entries["instagram-reel/clip.mp4"]["plan"]["segments"]
        kept = re.search(r'class="kept" style="left: ([\d.]+)%; width: ([\d.]+)%"', page)
        assert kept and float(kept.group(1)) == pytest.approx(start / 4000 * 100, abs=1)
        assert float(kept.group(2)) == pytest.approx((end - start) / 4000 * 100, abs=1)
        assert raw(address, "/masters/x-image/nothing.jpg")[0] == 404


def test_a_planted_source_outside_the_masters_is_never_shown(served):
    address, out = served
    body = manifest(out)
    body["variants"][0]["source"] = "/etc/passwd"
    (out / "manifest.json").write_text(json.dumps(body), encoding="utf-8")
    status, _, content = raw(address, f"/masters/{body['variants'][0]['path']}")
    assert status == 404 and b"root:" not in content


def test_pages_load_nothing_from_elsewhere(served):
    address, _ = served
    for target in ("/", "/v/instagram-reel/clip.mp4", "/v/x-image/astronaut.jpg"):
        page = raw(address, target)[2].decode()
        refs = re.findall(r'(?:src|href)="([^"]*)"', page)
        assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), refs
        for asset in (r for r in refs if r.startswith("/static/")):
            status, _, body = raw(address, asset)
            assert status == 200 and b"http://" not in body and b"https://" not in body


def test_a_caption_saved_from_a_stale_view_is_a_conflict(served):
    address, out = served
    token = token_of(raw(address, "/")[2])
    path = "instagram-feed-square/astronaut.jpg"
    page = raw(address, f"/v/{path}")[2]
    seen = re.search(rb'data-version="([^"]+)"', page).group(1).decode()
    first = post(address, "/api/caption", {"path": path, "text": "First tab's words.",
                                           "version": seen}, token)
    assert first[0] == 200 and first[1]["changes"] == []
    second = post(address, "/api/caption", {"path": path, "text": "Second tab's words.",
                                            "version": seen}, token)
    assert second[0] == 409 and path in second[1]["error"]
    entry = next(v for v in manifest(out)["variants"] if v["path"] == path)
    assert entry["caption"]["text"] == "First tab's words."
    assert (out / "instagram-feed-square" / "astronaut.caption.txt").read_text() == \
        "First tab's words.\n"
    status, answer = post(address, "/api/length", {"path": path, "text": "é" * 10}, token)
    assert status == 200 and answer["length"] == 10 and answer["over"] is False


def test_a_planted_source_climbing_out_of_the_masters_folder_shows_nothing(review_sample,
                                                                           tmp_path):
    import shutil

    secret = tmp_path / "private"                 # a photo of the host's, outside --masters
    secret.mkdir()
    shutil.copy(review_sample.parent / "shoot" / "astronaut.jpg", secret / "me.jpg")
    with studio(review_sample, tmp_path / "served", "--masters", str(review_sample.parent)) \
            as (address, out):
        body = manifest(out)
        climb = "../" * len(review_sample.parent.parts)
        for source in (str(secret / "me.jpg"), f"{climb}{secret.relative_to('/')}/me.jpg",
                       f"shoot/../{climb}{secret.relative_to('/')}/me.jpg"):
            body["variants"][0]["source"] = source
            (out / "manifest.json").write_text(json.dumps(body), encoding="utf-8")
            status, _, _ = raw(address, f"/masters/{body['variants'][0]['path']}")
            assert status == 404, source
        body["variants"][0]["source"] = "shoot/astronaut.jpg"          # the real one shows
        (out / "manifest.json").write_text(json.dumps(body), encoding="utf-8")
        assert raw(address, f"/masters/{body['variants'][0]['path']}")[0] == 200


def test_hostile_writes_change_nothing(review_sample, tmp_path):
    shoot_yaml = review_sample.parent / "shoot" / "shoot.yaml"
    before_yaml = shoot_yaml.read_bytes()
    with studio(review_sample, tmp_path, "--masters", str(review_sample.parent)) as (address, out):
        token = token_of(raw(address, "/")[2])
        before = manifest(out)["variants"]
        path = "x-image/astronaut.jpg"
        for data in ({"path": path, "x": True, "y": 0.5}, {"path": path, "x": 2, "y": 0.5},
                     {"path": "../manifest.json", "x": 0.5, "y": 0.5}):
            assert post(address, "/api/focus", data, token)[0] == 400, data
        status, answer = post(address, "/api/caption", {"path": path, "text": "a" * 100_001},
                              token)
        assert status == 400 and "at most 100000" in answer["error"]
        # The sample shoot asks for a Python effect, which an untrusted render refuses:
        # the render fails, and shoot.yaml is put back as it was.
        status, answer = post(address, "/api/focus", {"path": path, "x": 0.9, "y": 0.5}, token)
        assert status == 422 and "is as it was" in answer["error"]
        assert "effect" in answer["error"]
        after = manifest(out)
        assert after["variants"] == before              # every variant and decision kept
        assert "effect" in after["errors"][0]["error"]  # the failed run, recorded as any is
    assert shoot_yaml.read_bytes() == before_yaml
