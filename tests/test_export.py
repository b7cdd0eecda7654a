"""`repurpose export`: a rendered sample with people's decisions, exported in
every format and checked against the formats' documented columns, the files
behind the URLs, the platforms' API schemas and the captions on disk."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import ROOT, run_cli
from PIL import Image
from reviewserver import free_port

from pipeline.captions.length import x_weighted
from pipeline.export import export, url_of
from pipeline.export.posts import Media, Post
from pipeline.export.schedule import parse_every, parse_start, spread
from pipeline.export.schedulers import HOOTSUITE_ROWS, hootsuite
from pipeline.review.decisions import decide, edit_caption, read_manifest

PRESETS = ("instagram-feed-square", "instagram-carousel", "instagram-story-image", "x-image",
           "instagram-reel", "youtube-short", "youtube-thumbnail", "tiktok-video",
           "pinterest-pin", "linkedin-image")
LATER = "2030-06-03T09:00"      # a Monday, far from any clock change
SCHEMAS = Path(__file__).parent / "api_schemas"

# Metricool's template header as documented (help.metricool.com, "How to schedule
# posts in batch with a CSV file": Annex, the template downloaded in 2026).
METRICOOL_HEADER = (
    "Text,Date,Time,Draft,Facebook,Twitter/X,LinkedIn,GBP,Instagram,Pinterest,TikTok,Youtube,"
    "Threads,Bluesky,Picture Url 1,Picture Url 2,Picture Url 3,Picture Url 4,Picture Url 5,"
    "Picture Url 6,Picture Url 7,Picture Url 8,Picture Url 9,Picture Url 10,Alt text picture 1,"
    "Alt text picture 2,Alt text picture 3,Alt text picture 4,Alt text picture 5,"
    "Alt text picture 6,Alt text picture 7,Alt text picture 8,Alt text picture 9,"
    "Alt text picture 10,Document title,Shortener,Video Thumbnail Url,Video Cover Frame,"
    "Twitter/X Can reply,Twitter/X Type,Twitter/X Poll Duration minutes,Twitter/X Poll Option 1,"
    "Twitter/X Poll Option 2,Twitter/X Poll Option 3,Twitter/X Poll Option 4,Pinterest Board,"
    "Pinterest Pin Title,Pinterest Pin Link,Pinterest Pin New Format,Instagram Post Type,"
    "Instagram Show Reel On Feed,Instagram Trial Reel Share Automatically,Youtube Video Title,"
    "Youtube Video Type,Youtube Video Privacy,Youtube video for kids,"
    "Youtube AI generated content,Youtube notify subscribers,Youtube Video Category,"
    "Youtube Video Tags,Youtube playlist,GBP Post Type,Facebook Post Type,Facebook Title,"
    "First Comment Text,TikTok Title,TikTok disable comments,TikTok disable duet,"
    "TikTok disable stitch,TikTok Post Privacy,TikTok Branded Content,TikTok Your Brand,"
    "TikTok Auto Add Music,TikTok Photo Cover Index,TikTok musicId,TikTok music title,"
    "TikTok music author,TikTok music previewUrl,TikTok music thumbnailUrl,"
    "TikTok music soundVolume,TikTok music originalVolume,TikTok music startMillis,"
    "TikTok music endMillis,TikTok Ai generated content,LinkedIn Type,LinkedIn Poll Question,"
    "LinkedIn Poll Option 1,LinkedIn Poll Option 2,LinkedIn Poll Option 3,LinkedIn Poll Option 4,"
    "LinkedIn Poll Duration,LinkedIn Show link preview,LinkedIn Images as Carousel,"
    "Threads Reply Control,Threads Is Spoiler,Threads Post Type,Brand name").split(",")
PLAN_HEADER = ["schema_version", "id", "status", "platform", "preset", "type", "source",
               "scheduled_at", "files", "urls", "caption", "hashtags", "alt_texts", "title",
               "disclosure", "ai", "ai_label", "ai_label_field", "thumbnail", "decided_by",
               "decided_at", "checks_passed", "warnings"]


def rows(data: bytes, header: bool = True) -> list[dict[str, str]] | list[list[str]]:
    text = data.decode("utf-8")
    if header:
        return list(csv.DictReader(io.StringIO(text, newline="")))
    return list(csv.reader(io.StringIO(text, newline="")))


def caption_on_disk(out: Path, path: str) -> str:
    raw = (out / path).with_suffix(".caption.txt").read_bytes()
    assert raw.endswith(b"\n")
    return raw[:-1].decode("utf-8")


def start() -> datetime:
    return parse_start(LATER, ZoneInfo("Europe/Budapest"))


@pytest.mark.slow
def test_metricool_header_rows_captions_and_types(exported: Path) -> None:
    result = export(exported, "metricool", base_url="https://cdn.example.com/shoot",
                    start=start(), every=timedelta(days=1), tz=ZoneInfo("Europe/Budapest"))
    ((tag, data),) = result.files
    assert tag == ""
    assert data.decode().split("\r\n")[0].split(",") == METRICOOL_HEADER
    table = rows(data)
    manifest = {v["path"]: v for v in read_manifest(exported)["variants"]}
    ids = {p.id for p in result.posts}
    # Only approved variants: never the rejected one, never the pending logo.
    assert "instagram-feed-square/landscape.jpg" not in ids
    assert not any("/logo" in i for i in ids)
    skipped = {s.path: s.reason for s in result.skipped}
    assert "horizon is tilted" in skipped["instagram-feed-square/landscape.jpg"]
    assert "not approved yet" in skipped["x-image/logo.jpg"]
    assert len(table) == len(result.posts)
    for row, post in zip(table, result.posts, strict=True):
        entry = manifest[post.id]
        assert entry["review"]["status"] == "approved"
        if entry.get("caption"):
            assert row["Text"] == caption_on_disk(exported, post.id)
        assert row["Draft"] == "FALSE"
        networks = [n for n in METRICOOL_HEADER[4:14] if row[n] == "TRUE"]
        assert len(networks) == 1
        assert row["Date"] and len(row["Time"]) == 8
    by_id = dict(zip([p.id for p in result.posts], table, strict=True))
    reel = by_id["instagram-reel/clip.mp4"]
    assert reel["Instagram Post Type"] == "REEL"
    assert reel["Picture Url 1"].endswith("/instagram-reel/clip.mp4")
    assert by_id["instagram-story-image/astronaut.jpg"]["Instagram Post Type"] == "STORY"
    assert by_id["instagram-feed-square/astronaut.jpg"]["Instagram Post Type"] == "POST"
    short = by_id["youtube-short/clip.mp4"]
    assert (short["Youtube Video Type"], short["Youtube Video Title"]) == ("SHORT", "Launch day")
    assert short["Video Thumbnail Url"].endswith("/youtube-thumbnail/clip.jpg")
    assert short["Youtube AI generated content"] == "FALSE"
    tiktok = by_id["tiktok-video/clip.mp4"]
    assert tiktok["TikTok Post Privacy"] == "PUBLIC_TO_EVERYONE"
    assert tiktok["TikTok Ai generated content"] == "FALSE"
    # landscape.jpg is declared AI-edited in the sample's shoot.yaml.
    assert by_id["pinterest-pin/landscape.jpg"]["Alt text picture 1"]
    # The shoot's schedule puts Instagram at 18:00 on the master's day.
    assert reel["Time"] == "18:00:00"
    assert by_id["x-image/astronaut.jpg"]["Time"] == "09:00:00"


@pytest.mark.slow
def test_carousel_pages_in_order(exported: Path) -> None:
    result = export(exported, "metricool", base_url="https://cdn.example.com/",
                    start=start(), tz=ZoneInfo("Europe/Budapest"))
    table = rows(result.files[0][1])
    carousel = [(p, r) for p, r in zip(result.posts, table, strict=True)
                if p.type == "carousel" and p.platform == "instagram"]
    assert len(carousel) == 1
    assert any(p.type == "carousel" and p.platform == "x" for p in result.posts)
    post, row = carousel[0]
    order = [m.path for m in post.media]
    manifest = read_manifest(exported)
    (listed,) = [c["items"] for c in manifest["carousels"] if c["preset"] == "instagram-carousel"]
    assert order == listed and len(order) == 3
    assert [row[f"Picture Url {n}"] for n in (1, 2, 3)] == [
        url_of("https://cdn.example.com/", p) for p in order]
    colours = []
    for path in order:
        with Image.open(exported / path) as page:
            colours.append(page.convert("RGB").getpixel((20, 20)))
    assert colours[0][0] > 150 and colours[1][1] > 150 and colours[2][2] > 150


@pytest.mark.slow
def test_urls_fetch_the_files(exported: Path) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                               "127.0.0.1", "--directory", str(exported)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/"
        result = export(exported, "json", base_url=base)
        plan = json.loads(result.files[0][1])
        urls = [(m["url"], m["sha256"]) for p in plan["posts"] for m in p["media"]]
        assert any("Caf%C3%A9%20day%20%231" in u for u, _ in urls)
        deadline = time.monotonic() + 10
        for url, digest in urls:
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=10) as reply:
                        body = reply.read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            assert hashlib.sha256(body).hexdigest() == digest, url
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.slow
def test_plan_json_and_csv(exported: Path) -> None:
    result = export(exported, "csv", include_drafts=True)
    table = rows(result.files[0][1], header=False)
    assert table[0] == PLAN_HEADER
    records = [dict(zip(PLAN_HEADER, r, strict=True)) for r in table[1:]]
    statuses = {r["id"]: r["status"] for r in records}
    assert statuses["x-image/logo.jpg"] == "draft"
    assert statuses["x-image/astronaut.jpg"] == "approved"
    assert "instagram-feed-square/landscape.jpg" not in statuses
    plan = json.loads(export(exported, "json", include_drafts=True).files[0][1])
    assert plan["schema_version"] == 1
    for post in plan["posts"]:
        entry_caption = post["caption"]
        if entry_caption is not None:
            assert entry_caption == caption_on_disk(exported, post["id"])
        assert post["media"][0]["url"] is None
    reasons = {s["path"]: s["reason"] for s in plan["skipped"]}
    assert "horizon is tilted" in reasons["instagram-feed-square/landscape.jpg"]


@pytest.mark.slow
def test_drafts_marked_in_metricool(exported: Path) -> None:
    result = export(exported, "metricool", base_url="https://cdn.example.com/",
                    start=start(), tz=ZoneInfo("UTC"), include_drafts=True)
    table = rows(result.files[0][1])
    draft = {p.id: r["Draft"] for p, r in zip(result.posts, table, strict=True)}
    assert draft["x-image/logo.jpg"] == "TRUE"
    assert draft["x-image/astronaut.jpg"] == "FALSE"


@pytest.mark.slow
def test_api_payloads_match_the_platforms_schemas(exported: Path) -> None:
    import jsonschema

    schemas = {p.stem: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    result = export(exported, "api", base_url="https://cdn.example.com/", start=start(),
                    every=timedelta(hours=4), tz=ZoneInfo("Europe/Budapest"))
    body = json.loads(result.files[0][1])
    seen = set()
    for post in body["posts"]:
        for request in post["requests"]:
            url, payload = request["url"], request["body"]
            name = (
                "instagram-media-publish" if url.endswith("/media_publish") else
                "instagram-media" if "graph.facebook.com" in url else
                "tiktok-video-init" if url.endswith("/video/init/") else
                "tiktok-photo-init" if url.endswith("/content/init/") else
                "youtube-video" if "/youtube/v3/videos" in url else
                "x-tweet" if url.endswith("/2/tweets") else
                "x-media-metadata" if url.endswith("/media/metadata") else
                "linkedin-post" if url.endswith("/rest/posts") else
                "pinterest-pin" if url.endswith("/v5/pins") else None)
            if name is None:        # uploads: the file itself is the body
                assert request.get("file") and (exported / request["file"]).is_file()
                continue
            jsonschema.validate(payload, schemas[name])
            seen.add(name)
            if name == "x-tweet":
                assert x_weighted(payload["text"]) <= 280
            if name == "youtube-video":
                assert len(payload["snippet"]["description"].encode()) <= 5000
                assert payload["status"]["privacyStatus"] == "private"     # scheduled
    assert seen >= {"instagram-media", "instagram-media-publish", "tiktok-video-init",
                    "youtube-video", "x-tweet", "linkedin-post", "pinterest-pin"}
    carousel = [p for p in body["posts"] if p["preset"] == "instagram-carousel"
                and len(p["requests"]) > 2]
    (one,) = carousel
    parent = one["requests"][-2]["body"]
    assert parent["media_type"] == "CAROUSEL" and len(parent["children"]) == 3


def test_schemas_refuse_wrong_payloads() -> None:
    import jsonschema

    schema = json.loads((SCHEMAS / "tiktok-video-init.json").read_text())
    wrong = {"post_info": {"privacy_level": "EVERYONE", "brand_content_toggle": False},
             "source_info": {"source": "PULL_FROM_URL"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, schema)
    reel = json.loads((SCHEMAS / "instagram-media.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"media_type": "REELS", "video_url": "https://a/b.mp4",
                             "alt_text": "no alt text on reels"}, reel)


@pytest.mark.slow
def test_x_caption_over_280_weighted_is_skipped(exported_copy: Path) -> None:
    out = exported_copy
    long = "Launch day " + "🚀" * 140 + " https://example.com/launch"
    edit_caption(out, "x-image/astronaut.jpg", long, by="ana")
    decide(out, ["x-image/astronaut.jpg"], "approve", by="ana")
    result = export(out, "csv")
    skipped = {s.path: s.reason for s in result.skipped}
    assert "of 280 (x_weighted)" in skipped["x-image/astronaut.jpg"]
    for post in result.posts:
        if post.platform == "x":
            assert x_weighted(post.caption or "") <= 280


@pytest.mark.slow
def test_edited_caption_is_exported_and_failed_checks_skipped(exported_copy: Path) -> None:
    out = exported_copy
    edit_caption(out, "linkedin-image/astronaut.jpg", "New words.\n\n#space", by="bo")
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["variants"]:
        if entry["path"] == "pinterest-pin/astronaut.jpg":
            entry["checks"][0].update(ok=False, actual="1000x1500")
    (out / "manifest.json").write_text(json.dumps(manifest))
    with open(out / "x-image" / "astronaut.jpg", "ab") as fh:
        fh.write(b"\0")
    (out / "tiktok-video" / "clip.caption.txt").write_text("typed in a text editor\n")
    result = export(out, "json")
    posts = {p.id: p for p in result.posts}
    skipped = {s.path: s.reason for s in result.skipped}
    # An edited caption counts as a person's decision even after the approval went.
    assert posts["linkedin-image/astronaut.jpg"].status == "edited"
    assert posts["linkedin-image/astronaut.jpg"].caption == "New words.\n\n#space"
    assert "check dimensions failed" in skipped["pinterest-pin/astronaut.jpg"]
    assert "changed since it was rendered" in skipped["x-image/astronaut.jpg"]
    assert "clip.caption.txt was changed" in skipped["tiktok-video/clip.mp4"]


@pytest.mark.slow
def test_cli_refuses_url_formats_without_base_url(exported: Path) -> None:
    for fmt in ("metricool", "vistasocial", "api"):
        done = run_cli("export", exported, "--to", fmt, "--start", LATER)
        assert done.returncode == 2, done.stderr
        assert "--base-url" in done.stderr and "public URLs" in done.stderr
    done = run_cli("export", exported, "--to", "hootsuite")
    assert done.returncode == 2 and "--start" in done.stderr
    done = run_cli("export", exported, "--to", "nosuch")
    assert done.returncode == 2 and "metricool" in done.stderr
    done = run_cli("export", exported, "--to", "csv", "--every", "1d")
    assert done.returncode == 2 and "--start" in done.stderr
    done = run_cli("export", exported, "--to", "csv", "--start", "tomorrow")
    assert done.returncode == 2 and "ISO 8601" in done.stderr
    done = run_cli("export", exported, "--to", "csv", "--start", LATER, "--tz", "Mars/Base")
    assert done.returncode == 2 and "IANA" in done.stderr


@pytest.mark.slow
def test_cli_writes_files_and_lists_skips(exported: Path, tmp_path: Path) -> None:
    target = tmp_path / "plan" / "hootsuite.csv"
    done = run_cli("export", exported, "--to", "hootsuite", "--start", LATER, "--every", "1d",
                   "--tz", "Europe/Budapest", "--out", target)
    assert done.returncode == 0, done.stderr
    assert "skipped: instagram-feed-square/landscape.jpg: rejected by ana" in done.stderr
    files = sorted(p.name for p in target.parent.iterdir())
    assert "hootsuite-x.csv" in files and "hootsuite-instagram.csv" in files
    table = rows((target.parent / "hootsuite-x.csv").read_bytes(), header=False)
    first = table[0]
    assert len(first) == 3
    when = datetime.strptime(first[0], "%d/%m/%Y %H:%M")
    assert when == datetime(2030, 6, 3, 9, 0) and when.minute % 5 == 0
    assert first[1] == caption_on_disk(exported, "x-image/Café day #1.jpg") or \
        first[1] == caption_on_disk(exported, "x-image/astronaut.jpg")
    done = run_cli("export", exported, "--to", "json")
    assert done.returncode == 0 and json.loads(done.stdout)["schema_version"] == 1
    done = run_cli("export", exported, "--to", "vistasocial", "--base-url",
                   "https://cdn.example.com/", "--start", LATER)
    assert done.returncode == 2 and "--out" in done.stderr       # several files


@pytest.mark.slow
def test_vistasocial_columns(exported: Path) -> None:
    result = export(exported, "vistasocial", base_url="https://cdn.example.com/",
                    start=start(), tz=ZoneInfo("Europe/Budapest"))
    files = dict(result.files)
    table = rows(files["instagram"], header=False)
    assert table[0][:4] == ["message", "type", "link", "time"]
    reel = [r for r in table[1:] if r[2].endswith("instagram-reel/clip.mp4")]
    assert reel and reel[0][1] == "video" and reel[0][3] == "2030-06-03 18:00"
    skipped = {s.path: s.reason for s in result.skipped}
    assert "story" in skipped["instagram-story-image/astronaut.jpg"]


def _post(n: int, at: datetime, platform: str = "x") -> Post:
    media = Media(f"x-image/m{n}.jpg", "photo", 1, 1, 1, "0" * 64)
    return Post(id=media.path, platform=platform, preset="x-image", type="post",
                source=f"m{n}.jpg", media=(media,), status="approved", caption=f"post {n}",
                at=at)


def test_hootsuite_splits_at_350_rows_and_keeps_its_rules() -> None:
    from pipeline.export import Options

    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    posts = [_post(n, now + timedelta(hours=1, minutes=n * 5)) for n in range(400)]
    posts.append(_post(400, now + timedelta(minutes=5)))          # under 10 minutes ahead
    posts.append(_post(401, now + timedelta(hours=1, minutes=2)))  # 09:02 -> 09:05, taken
    made = hootsuite(posts, Options(tz=timezone.utc, now=now))
    assert [tag for tag, _ in made.files] == ["x-1", "x-2"]
    sizes = [len(rows(data, header=False)) for _, data in made.files]
    assert sizes == [HOOTSUITE_ROWS, 400 - HOOTSUITE_ROWS]
    reasons = [s.reason for s in made.skipped]
    assert any("10 minutes ahead" in r for r in reasons)
    assert any("one post a time slot" in r for r in reasons)


def test_spread_keeps_wall_time_across_daylight_saving() -> None:
    zone = ZoneInfo("Europe/Budapest")
    first = parse_start("2027-03-27T09:00", zone)     # clocks go forward on the 28th
    posts = [_post(n, first) for n in range(3)]
    timed = spread(posts, first, parse_every("1d"), zone)
    local = [p.at.astimezone(zone).strftime("%d %H:%M %z") for p in timed if p.at]
    assert local == ["27 09:00 +0100", "28 09:00 +0200", "29 09:00 +0200"]
    assert parse_every("PT2H30M") == timedelta(hours=2, minutes=30)
    with_time = [Post(**{**p.__dict__, "time": "02:30"}) for p in posts[1:2]]
    moved = spread(with_time, parse_start("2027-03-28T00:00", zone), None, zone)
    # 02:30 does not exist that night in Budapest: the post goes at 03:30 local.
    assert moved[0].at and moved[0].at.astimezone(zone).strftime("%H:%M") == "03:30"


@pytest.mark.slow
def test_posts_in_the_past_are_skipped(exported: Path) -> None:
    result = export(exported, "csv", start=datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert not result.posts
    assert all("past" in s.reason or "approved" in s.reason or "rejected" in s.reason
               or "not a post" in s.reason for s in result.skipped)


@pytest.mark.slow
def test_third_party_exporter_through_an_entry_point(exported: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "acme_export-1.0.dist-info").mkdir(parents=True)
    (site / "acme_export-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-export\nVersion: 1.0\n")
    (site / "acme_export-1.0.dist-info" / "entry_points.txt").write_text(
        "[repurpose.exporters]\nacme = acme_export:EXPORTER\n")
    (site / "acme_export.py").write_text(textwrap.dedent("""
        from pipeline.export import Exporter, Output

        def write(posts, options):
            return Output(files=[("", "".join(p.id + "\\n" for p in posts).encode())])

        EXPORTER = Exporter("acme", write, "txt", "one line per post")
    """))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{site}"}
    done = subprocess.run([sys.executable, "-m", "pipeline", "export", str(exported), "--to",
                           "acme"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "x-image/astronaut.jpg" in done.stdout.splitlines()
    assert "x-image/logo.jpg" not in done.stdout.splitlines()
